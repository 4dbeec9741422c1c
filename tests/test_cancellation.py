"""Cancellation (COM: ICancelMethodCalls) and anyio interop: cancelling the awaiting task, a
timeout, or an anyio cancel scope cancels the call in the target apartment."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest

import aptio
from aptio.testing import wait_idle


@aptio.coclass
class Sleeper:
    """Records what its coroutine saw: started, cancelled, finished."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def sleep(self) -> str:
        self.events.append("started")
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append("cancelled")
            self.cancelled.set()
            raise
        return "finished"  # pragma: no cover

    async def anyio_sleep(self) -> None:
        self.events.append("started")
        self.started.set()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.sleep, 3600)
        except anyio.get_cancelled_exc_class():
            self.events.append("cancelled")
            self.cancelled.set()
            raise

    async def wait_started(self) -> None:
        await self.started.wait()

    async def wait_cancelled(self) -> list[str]:
        await self.cancelled.wait()
        return list(self.events)


@pytest.mark.asyncio
async def test_asyncio_timeout_cancels_the_remote_coroutine(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    sleeper = await sta.create(Sleeper)
    call = sleeper.sleep()
    await sleeper.wait_started()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await call
    assert call.cancelled()
    assert await sleeper.wait_cancelled() == ["started", "cancelled"]


@pytest.mark.asyncio
async def test_anyio_fail_after_cancels_the_remote_call(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    sleeper = await sta.create(Sleeper)
    started = sleeper.wait_started()
    call = sleeper.anyio_sleep()
    await started
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0):
            await call
    assert await sleeper.wait_cancelled() == ["started", "cancelled"]


@pytest.mark.asyncio
async def test_anyio_cancel_scope_cancels_the_remote_call(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    sleeper = await sta.create(Sleeper)
    with anyio.CancelScope() as scope:
        call = sleeper.sleep()
        await sleeper.wait_started()
        scope.cancel()
        await call
    assert scope.cancelled_caught
    assert await sleeper.wait_cancelled() == ["started", "cancelled"]


@pytest.mark.asyncio
async def test_proxy_calls_inside_an_anyio_task_group(main: aptio.Apartment) -> None:
    stas = [await aptio.start_sta() for _ in range(3)]

    @aptio.coclass
    class Worker:
        async def double(self, value: int) -> int:
            await anyio.sleep(0)
            return value * 2

    workers = [await sta.create(Worker) for sta in stas]
    results: dict[int, int] = {}

    async def run(index: int) -> None:
        results[index] = await workers[index % 3].double(index)

    async with anyio.create_task_group() as group:
        for index in range(30):
            group.start_soon(run, index)
    assert results == {index: index * 2 for index in range(30)}


@pytest.mark.asyncio
async def test_a_task_group_failure_cancels_sibling_proxy_calls(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    sleeper = await sta.create(Sleeper)

    async def fail_when_started() -> None:
        await sleeper.wait_started()
        raise LookupError("sibling failed")

    async def sleep() -> None:
        await sleeper.sleep()  # anyio starts coroutine functions; a Call is awaited inside

    with pytest.raises(ExceptionGroup) as info:
        async with anyio.create_task_group() as group:
            group.start_soon(sleep)
            group.start_soon(fail_when_started)
    assert info.group_contains(LookupError)
    assert await sleeper.wait_cancelled() == ["started", "cancelled"]


@pytest.mark.asyncio
async def test_methods_may_use_anyio_inside_their_apartment(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Fanout:
        async def gather(self, n: int) -> list[int]:
            out: list[int] = []

            async def one(i: int) -> None:
                await anyio.sleep(0)
                out.append(i)

            async with anyio.create_task_group() as group:
                for i in range(n):
                    group.start_soon(one, i)
            return sorted(out)

    fanout = await sta.create(Fanout)
    assert await fanout.gather(10) == list(range(10))


@pytest.mark.asyncio
async def test_a_sync_mta_method_polls_for_cancellation(main: aptio.Apartment) -> None:
    entered = threading.Event()
    observed = threading.Event()

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class Cruncher:
        def crunch(self) -> str:
            info = aptio.current_call()
            assert info is not None
            entered.set()
            while not info.cancelled:  # COM: CoTestCancel
                threading.Event().wait(0.001)
            observed.set()
            return "stopped early"

    cruncher = await aptio.create(Cruncher)
    call = cruncher.crunch()
    await asyncio.to_thread(entered.wait, 30)
    call.cancel()  # the caller is unblocked at once, the result discarded
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await asyncio.to_thread(observed.wait, 30)


@pytest.mark.asyncio
async def test_cancelling_a_gathered_call_cancels_only_that_one(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Quick:
        def hold(self, gate: threading.Event) -> None:
            gate.wait(10)

        async def value(self, v: int) -> int:
            await asyncio.sleep(0)
            return v

    quick = await sta.create(Quick)
    gate = threading.Event()
    held = quick.hold(gate)  # the STA is busy until the cancel is made: none has started
    calls = [quick.value(i) for i in range(10)]
    calls[3].cancel()
    gate.set()
    await held
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [i for i in range(10) if i != 3]


@pytest.mark.asyncio
async def test_random_cancellations_resolve_every_call_exactly_once(
    main: aptio.Apartment,
) -> None:
    import random

    stas = [await aptio.start_sta() for _ in range(3)]

    @aptio.coclass
    class Step:
        def __init__(self) -> None:
            self.runs = 0

        async def step(self, hops: int, peers: list[Any]) -> int:
            self.runs += 1
            await asyncio.sleep(0)
            if hops:
                return 1 + await peers[hops % len(peers)].step(hops - 1, peers)
            return 1

        def total(self) -> int:
            return self.runs

    steps = [await sta.create(Step) for sta in stas]
    rng = random.Random(7)
    outcomes = {"ok": 0, "cancelled": 0}
    for _ in range(60):
        calls = [steps[rng.randrange(3)].step(rng.randrange(4), steps) for _ in range(10)]
        for call in calls:
            if rng.random() < 0.3:
                call.cancel()
        for call in calls:
            try:
                await call
                outcomes["ok"] += 1
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
    assert outcomes["ok"] + outcomes["cancelled"] == 600
    assert outcomes["ok"] > 0
    assert outcomes["cancelled"] > 0
    # A cancelled call's awaiter hears of it at once; the calls it had made itself unwind in
    # their apartments after that (each is cancelled in turn). They all end: wait for them.
    for sta in stas:
        assert await wait_idle(sta)


@pytest.mark.asyncio
async def test_a_task_cancelled_while_awaiting_a_call_gets_the_message(
    main: aptio.Apartment,
) -> None:
    """``task.cancel(msg)`` reaches a Task waiting on a call with its message, as it would a
    Task waiting on a future, and cancels the call in its apartment."""
    sta = await aptio.start_sta()
    sleeper = await sta.create(Sleeper)
    seen: list[Any] = []

    async def waiter() -> None:
        try:
            await sleeper.sleep()
        except asyncio.CancelledError as error:
            seen.append(error.args)
            raise

    task = asyncio.get_running_loop().create_task(waiter())
    await sleeper.wait_started()
    task.cancel("stop waiting")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [("stop waiting",)]
    assert await sleeper.wait_cancelled() == ["started", "cancelled"]


@pytest.mark.asyncio
async def test_cancel_after_the_reply_arrived_still_wins(main: aptio.Apartment) -> None:
    """A Task cancelled after its call finished but before it resumed raises CancelledError,
    as with a future whose result came too late; the call itself stays done."""

    @aptio.coclass
    class Relay:
        def __init__(self) -> None:
            self.release = asyncio.Event()

        async def wait_release(self) -> int:
            await self.release.wait()
            self.release.clear()  # the next round waits again
            return 42

        def open(self) -> None:
            self.release.set()

    relay = await aptio.create(Relay)  # this apartment: the call finishes on this thread
    for _ in range(20):
        call = relay.wait_release()
        resumed: list[str] = []

        async def waiter(call: aptio.Call[int] = call, resumed: list[str] = resumed) -> None:
            await call
            resumed.append("resumed")

        task = asyncio.get_running_loop().create_task(waiter())
        # Registered before the task waits: it runs first when the call finishes, and
        # cancels the task after its wake-up is already on its way.
        call.add_done_callback(lambda _call, task=task: task.cancel())
        await asyncio.sleep(0)  # the task now waits on the call
        await relay.open()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert resumed == []
        assert call.done() and not call.cancelled() and await call == 42
