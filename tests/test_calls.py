"""Proxies and calls: results, exceptions, ordering, inline calls, blocking waits, marshaling."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import traceback
from typing import Any

import pytest

import aptio

from apt_classes import ApartmentObj, Counter, FreeObj


@aptio.coclass
class Gate:
    """A call to wait_open() cannot finish before open(): no timing in the tests."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()

    async def wait_open(self) -> str:
        await self.opened.wait()
        return "opened"

    def open(self) -> None:
        self.opened.set()


@aptio.coclass
class Thrower:
    def fail(self, message: str) -> None:
        raise LookupError(message)

    async def afail(self, message: str) -> None:
        await asyncio.sleep(0)
        raise KeyError(message)


@pytest.mark.asyncio
async def test_sync_and_async_methods_return_their_results(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    counter = await sta.create(Counter, 10)
    assert await counter.inc() == 11
    assert await counter.ainc(5) == 16
    assert await counter.inc(by=2) == 18


@pytest.mark.asyncio
async def test_create_is_typed_and_returns_a_proxy(main: aptio.Apartment) -> None:
    counter: aptio.Proxy[Counter] = await aptio.create(Counter)
    assert aptio.is_proxy(counter)
    assert isinstance(counter, aptio.Proxy)
    assert not aptio.is_proxy(Counter())
    assert "inc" in dir(counter)
    assert "Counter" in repr(counter)


@pytest.mark.asyncio
async def test_exceptions_keep_their_type_and_remote_frames(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    thrower = await sta.create(Thrower)
    with pytest.raises(LookupError, match="sync boom") as info:
        await thrower.fail("sync boom")
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "fail" in frames
    with pytest.raises(KeyError, match="async boom") as info2:
        await thrower.afail("async boom")
    frames = [frame.name for frame in traceback.extract_tb(info2.value.__traceback__)]
    assert "afail" in frames


@aptio.coclass
class _Keywords:
    def take(self, proxy: object, value: int = 0) -> tuple[object, int]:
        return proxy, value

    def items(self, proxy: object) -> Any:
        yield proxy


@pytest.mark.asyncio
async def test_a_method_may_take_an_argument_named_proxy(main: aptio.Apartment) -> None:
    # The proxy method's own first parameter is positional-only (both builds).
    sta = await aptio.start_sta()
    target = await sta.create(_Keywords)
    assert await target.take(proxy="p", value=2) == ("p", 2)
    assert await target.take("p") == ("p", 0)
    assert [item async for item in target.items(proxy="q")] == ["q"]


@pytest.mark.asyncio
async def test_a_missing_method_raises_attribute_error_naming_the_class(
    main: aptio.Apartment,
) -> None:
    counter = await aptio.create(Counter)
    with pytest.raises(AttributeError, match=r"'Counter' has no method 'nope'"):
        counter.nope()
    with pytest.raises(AttributeError, match=r"^Counter\.value is an instance attribute, and "
                       r"aptio proxies carry method calls only: add a method that returns it "
                       r"\(for example `def get_value\(self\): return self\.value`\)"):
        counter.value  # noqa: B018 - instance attributes do not cross

    @aptio.coclass
    class WithProperty:
        limit = 3

        @property
        def size(self) -> int:
            return 1  # pragma: no cover

    obj = await aptio.create(WithProperty)
    with pytest.raises(AttributeError, match=r"WithProperty.size is not a method"):
        obj.size  # noqa: B018
    with pytest.raises(AttributeError, match=r"WithProperty.limit is not a method"):
        obj.limit  # noqa: B018


@pytest.mark.asyncio
async def test_calls_start_in_the_order_sent_mixing_sync_and_async(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    rng = random.Random(1234)
    targets = [await sta.create(Counter), await aptio.create(Counter)]
    for round_ in range(40):
        target = targets[round_ % 2]
        before = len(await target.get_log())
        calls = []
        for i in range(100):
            if rng.random() < 0.5:
                calls.append(target.record(i))
            else:
                calls.append(target.arecord(i))
        await asyncio.gather(*calls)
        assert (await target.get_log())[before:] == list(range(100))


@pytest.mark.asyncio
async def test_calls_from_several_callers_keep_per_caller_order(main: aptio.Apartment) -> None:
    target_sta = await aptio.start_sta()
    log = await target_sta.create(Counter)

    @aptio.coclass
    class Sender:
        async def send(self, log: Any, tag: str, n: int) -> None:
            calls = [log.record((tag, i)) if i % 2 else log.arecord((tag, i)) for i in range(n)]
            await asyncio.gather(*calls)

    senders = [await (await aptio.start_sta()).create(Sender) for _ in range(3)]
    await asyncio.gather(*(s.send(log, f"s{k}", 200) for k, s in enumerate(senders)))
    entries = await log.get_log()
    for k in range(3):
        assert [i for tag, i in entries if tag == f"s{k}"] == list(range(200))


@pytest.mark.asyncio
async def test_same_apartment_calls_run_inline_without_a_thread_switch(
    main: aptio.Apartment,
) -> None:
    obj = await aptio.create(ApartmentObj)
    assert aptio.apartment_of(obj) is main
    call = obj.thread_id()
    assert call.done()  # a sync method ran at once, on this thread
    assert await call == threading.get_ident()


@pytest.mark.asyncio
async def test_dispatch_is_eager(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    counter = await sta.create(Counter)
    counter.inc()  # never awaited: it runs anyway
    counter.inc()
    assert await counter.get() == 2


@pytest.mark.asyncio
async def test_call_result_blocks_on_plain_and_mta_threads(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    counter = await sta.create(Counter)
    results: list[int] = []

    def plain() -> None:
        results.append(counter.inc().result(timeout=30))

    thread = threading.Thread(target=plain)
    thread.start()
    await asyncio.to_thread(thread.join)

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class Blocker:
        def bump(self, counter: Any) -> int:
            assert aptio.current_apartment() is aptio.mta()
            return counter.inc().result()  # type: ignore[no-any-return]

    blocker = await aptio.create(Blocker)
    results.append(await blocker.bump(counter))
    assert results == [1, 2]


@pytest.mark.asyncio
async def test_call_result_on_an_sta_thread_is_refused(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    gate = await sta.create(Gate)
    call = gate.wait_open()  # cannot finish before open(): result() would have to block
    with pytest.raises(aptio.WrongApartmentError, match=r"use `await call`"):
        call.result()
    await gate.open()
    await call
    assert call.result() == "opened"  # done: nothing to block on, so it is returned anywhere


@pytest.mark.asyncio
async def test_call_result_timeout_cancels_the_call(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Waiter:
        def __init__(self) -> None:
            self.cancelled = asyncio.Event()

        async def wait_forever(self) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise

        async def was_cancelled(self) -> bool:
            await self.cancelled.wait()
            return True

    waiter = await sta.create(Waiter)
    call = waiter.wait_forever()

    def block() -> None:
        with pytest.raises(TimeoutError, match="was cancelled"):
            call.result(timeout=0.01)

    await asyncio.to_thread(block)
    assert call.cancelled()
    assert await waiter.was_cancelled()


@pytest.mark.asyncio
async def test_cancelling_the_awaiting_task_cancels_the_call(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Slow:
        def __init__(self) -> None:
            self.started = asyncio.Event()
            self.cancelled = asyncio.Event()

        async def run(self) -> None:
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise

        async def wait_started(self) -> None:
            await self.started.wait()

        async def wait_cancelled(self) -> None:
            await self.cancelled.wait()

    slow = await sta.create(Slow)
    task = asyncio.ensure_future(slow.run())
    await slow.wait_started()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await slow.wait_cancelled()


@pytest.mark.asyncio
async def test_call_cancel_before_start_means_it_never_runs(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    gate = threading.Event()

    @aptio.coclass
    class Gate:
        def block(self) -> None:
            gate.wait(30)

    blocker = await sta.create(Gate)
    counter = await sta.create(Counter)
    first = blocker.block()  # holds the STA thread
    queued = counter.inc()
    assert queued.cancel()
    assert queued.done() and queued.cancelled()
    assert not queued.cancel()
    gate.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert await counter.get() == 0


@pytest.mark.asyncio
async def test_coclass_arguments_and_results_cross_as_proxies(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Factory:
        def make(self) -> Counter:
            return Counter(5)

        def inspect(self, value: Any) -> tuple[bool, Any]:
            return aptio.is_proxy(value), value

    factory = await sta.create(Factory)
    made = await factory.make()
    assert aptio.is_proxy(made)
    assert aptio.apartment_of(made) is sta
    assert await made.inc() == 6

    local = Counter()
    is_proxy, value = await factory.inspect(local)
    assert is_proxy  # a raw coclass instance crosses as a proxy to its home (here: main)
    assert aptio.apartment_of(value) is main
    is_proxy, value = await factory.inspect(made)
    assert is_proxy and value is made  # a proxy stays the same proxy
    plain = {"a": 1}
    is_proxy, value = await factory.inspect(plain)
    assert not is_proxy and value is plain  # other values pass by reference


@pytest.mark.asyncio
async def test_unwrap_only_in_the_home_apartment(main: aptio.Apartment) -> None:
    local = await aptio.create(Counter)
    raw = aptio.unwrap(local)
    assert isinstance(raw, Counter)
    sta = await aptio.start_sta("far")
    far = await sta.create(Counter)
    with pytest.raises(aptio.WrongApartmentError, match=r"lives in 'far'"):
        aptio.unwrap(far)
    with pytest.raises(TypeError):
        aptio.unwrap(raw)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_free_objects_run_on_pool_threads_and_directly_on_mta_threads(
    main: aptio.Apartment,
) -> None:
    free = await aptio.create(FreeObj)
    apartment, thread = await free.where()
    assert apartment is aptio.mta() and thread.startswith("aptio MTA worker")
    apartment, thread = await free.awhere()  # coroutine methods: on the MTA's loop thread
    assert apartment is aptio.mta() and thread == "aptio MTA loop"

    def plain() -> tuple[Any, str]:
        return free.where().result()  # type: ignore[no-any-return]

    apartment, thread = await asyncio.to_thread(plain)
    assert apartment is aptio.mta()
    assert not thread.startswith("aptio")  # an implicit MTA member calls directly


@pytest.mark.asyncio
async def test_mta_runs_calls_concurrently(main: aptio.Apartment) -> None:
    barrier = threading.Barrier(3, timeout=30)

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class Meet:
        def meet(self) -> int:
            return barrier.wait()

    meet = await aptio.create(Meet)
    assert sorted(await asyncio.gather(*(meet.meet() for _ in range(3)))) == [0, 1, 2]


@pytest.mark.asyncio
async def test_plain_threads_and_many_loops_call_one_sta(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    counter = await sta.create(Counter)

    def plain() -> None:
        for _ in range(200):
            counter.inc().result()

    def looped() -> None:
        async def body() -> None:
            await asyncio.gather(*(counter.ainc() for _ in range(200)))

        asyncio.run(body())

    threads = [threading.Thread(target=t) for t in (plain, plain, looped, looped)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    assert await counter.get() == 800


@pytest.mark.asyncio
async def test_calls_are_futures_to_asyncio(main: aptio.Apartment) -> None:
    """gather, wait_for, shield and as_completed take a Call as it is (no Task wrapped around
    it). asyncio.wait refuses coroutines, and a Call is one too (so that create_task and task
    groups take it): it takes Tasks made from calls."""
    sta = await aptio.start_sta()
    counter = await sta.create(Counter)
    call = counter.inc()
    assert asyncio.isfuture(call)
    assert asyncio.ensure_future(call) is call
    assert await asyncio.gather(counter.inc(), counter.inc(), counter.inc()) == [2, 3, 4]
    refused = counter.inc()
    with pytest.raises(TypeError, match="coroutines is forbidden"):
        await asyncio.wait([refused])
    assert await refused == 5
    done, pending = await asyncio.wait([asyncio.create_task(counter.inc()) for _ in range(2)])
    assert not pending
    assert sorted(c.result() for c in done) == [6, 7]
    assert sorted([await c for c in asyncio.as_completed([counter.inc(), counter.inc()])]) \
        == [8, 9]
    assert await asyncio.wait_for(counter.inc(), timeout=30) == 10
    assert await asyncio.shield(counter.inc()) == 11
    assert await call == 1

    gate = await sta.create(Gate)
    fired: list[Any] = []
    later = gate.wait_open()
    later.add_done_callback(fired.append)
    later.add_done_callback(fired.append)
    removed = gate.wait_open()
    removed.add_done_callback(fired.append)
    assert removed.remove_done_callback(fired.append) == 1
    await gate.open()
    await later
    await removed
    await asyncio.sleep(0)
    assert fired == [later, later]
    done_already = counter.inc()
    await done_already
    done_already.add_done_callback(fired.append)
    assert fired[-1] is not done_already  # scheduled, never run inside add_done_callback
    seen: list[str] = []
    token = _adder_var.set("the adder's context")
    done_already.add_done_callback(lambda call: seen.append(_adder_var.get()))
    _adder_var.reset(token)
    await asyncio.sleep(0)
    assert fired[-1] is done_already
    assert seen == ["the adder's context"]


_adder_var: contextvars.ContextVar[str] = contextvars.ContextVar("adder_var", default="unset")


@pytest.mark.asyncio
async def test_gather_propagates_errors_and_cancellation(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Mixed:
        def ok(self) -> str:
            return "ok"

        def bad(self) -> None:
            raise ValueError("bad")

        async def forever(self) -> None:
            await asyncio.Event().wait()

    mixed = await sta.create(Mixed)
    results = await asyncio.gather(mixed.ok(), mixed.bad(), return_exceptions=True)
    assert results[0] == "ok"
    assert isinstance(results[1], ValueError)
    with pytest.raises(ValueError, match="bad"):
        await asyncio.gather(mixed.ok(), mixed.bad())
    forever = mixed.forever()
    outer = asyncio.gather(forever)
    await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert forever.cancelled()


@pytest.mark.asyncio
async def test_a_failing_done_callback_goes_to_the_exception_handler(
    main: aptio.Apartment,
) -> None:
    """Callbacks of calls that finish in another apartment run in their adder's context; one
    that raises is reported to the loop's exception handler and the others still run."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        sta = await aptio.start_sta()
        gate = await sta.create(Gate)
        calls = [gate.wait_open() for _ in range(10)]
        seen: list[str] = []

        def failing(call: aptio.Call[str]) -> None:
            raise RuntimeError("callback failed")

        token = _adder_var.set("adder")
        for index, call in enumerate(calls):
            call.add_done_callback(failing if index % 2 else
                                   (lambda c: seen.append(_adder_var.get())))
        _adder_var.reset(token)
        await gate.open()
        assert await asyncio.gather(*calls) == ["opened"] * 10
        for _ in range(3):  # callbacks are posted to this loop, or scheduled on it
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert seen == ["adder"] * 5
    assert len(reported) == 5
    assert all(isinstance(r["exception"], RuntimeError) for r in reported)


@pytest.mark.asyncio
async def test_a_failing_wake_up_of_an_awaiting_task_spares_the_rest_of_the_batch(
    main: aptio.Apartment,
) -> None:
    """What ``await call`` yields runs the Task's wake-up inside the inbox's drain; if one
    raises, the loop's exception handler gets it and the replies behind it still wake their
    Tasks (without the handling the drain would stop there, and the Task below would hang)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    handled = asyncio.Event()

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(context)
        handled.set()

    previous = loop.get_exception_handler()
    loop.set_exception_handler(handler)
    sta = await aptio.start_sta()
    try:
        gate = await sta.create(Gate)
        first, second = gate.wait_open(), gate.wait_open()
        driven = first.__await__()  # what a Task does, by hand
        waiter = next(driven)

        def failing(_waiter: object) -> None:
            raise RuntimeError("wake-up failed")

        waiter.add_done_callback(failing)

        async def await_second() -> str:
            return await second

        task = asyncio.ensure_future(await_second())
        await asyncio.sleep(0)  # its first step: it waits on ``second`` now
        await gate.open()  # first's reply is posted before second's
        assert await task == "opened"
        await handled.wait()
        assert await first == "opened"  # awaited again, by a Task this time
        driven.close()
    finally:
        loop.set_exception_handler(previous)
        await sta.shutdown()
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], RuntimeError)


@aptio.coclass(reentrancy=aptio.Reentrancy.CALL_CHAIN)
class Serial:
    async def work(self, tag: str) -> str:
        await asyncio.sleep(0)
        return tag


@pytest.mark.asyncio
async def test_a_call_cancelled_before_its_first_step_lets_the_next_one_in(
    main: aptio.Apartment,
) -> None:
    """An async call cancelled at once (on 3.11 its Task has not taken its first step) still
    finishes: its object's reentrancy gate lets the next call in."""
    serial = await aptio.create(Serial)  # this apartment: the call starts inline
    for _ in range(20):
        call = serial.work("cancelled")
        assert call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await serial.work("next") == "next"
