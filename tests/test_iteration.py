"""Generators across apartments (COM: IEnumXXX): a generator method, or a generator crossing as
a value, is iterated from anywhere while its body, and its ``finally``, run in its home
apartment; with a call's ordering, cancellation, exceptions and shutdown errors."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest

import aptio
from aptio.testing import apartment_barrier


class Boom(Exception):
    pass


@aptio.coclass
class Item:
    def __init__(self, n: int) -> None:
        self.n = n

    def where(self) -> str:
        return threading.current_thread().name


@aptio.coclass
class Rows:
    """Generators whose bodies record the thread they run on."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.closed: list[str] = []
        self.produced = 0
        self.release = aptio.Event()
        self.finished = aptio.Event()

    def rows(self, n: int) -> Iterator[int]:
        try:
            for i in range(n):
                self.threads.append(threading.current_thread().name)
                self.produced += 1
                yield i
        finally:
            self.closed.append(threading.current_thread().name)
            self.finished.set()

    async def arows(self, n: int) -> AsyncIterator[int]:
        try:
            for i in range(n):
                await asyncio.sleep(0)
                self.threads.append(threading.current_thread().name)
                self.produced += 1
                yield i
        finally:
            self.closed.append(threading.current_thread().name)
            self.finished.set()

    async def stuck_after(self, n: int) -> AsyncIterator[int]:
        try:
            for i in range(n):
                yield i
            await self.release.wait()  # never set: the consumer is cancelled here
            yield n
        finally:
            self.closed.append(threading.current_thread().name)
            self.finished.set()

    def failing(self, n: int) -> Iterator[int]:
        yield from range(n)
        raise Boom(f"after {n}")

    async def afailing(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
        raise Boom(f"after {n}")

    def items(self, n: int) -> Iterator[Item]:
        for i in range(n):
            yield Item(i)

    def returns_a_generator(self, n: int) -> Iterator[int]:
        return (i * 10 for i in range(n))  # a plain method handing back a generator object

    def get_threads(self) -> list[str]:
        return list(self.threads)

    def get_closed(self) -> list[str]:
        return list(self.closed)

    def get_produced(self) -> int:
        return self.produced

    async def wait_finished(self) -> None:
        await self.finished.wait()


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["rows", "arows"])
async def test_the_body_runs_in_the_home_apartment_and_items_keep_their_order(
    main: aptio.Apartment, method: str
) -> None:
    sta = await aptio.start_sta("home")
    rows = await sta.create(Rows)
    got = [item async for item in getattr(rows, method)(300)]
    assert got == list(range(300))
    assert set(await rows.get_threads()) == {"aptio home"}
    assert await rows.get_closed() == ["aptio home"]


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["rows", "arows"])
async def test_leaving_early_closes_the_generator_at_home(
    main: aptio.Apartment, method: str
) -> None:
    sta = await aptio.start_sta("home")
    rows = await sta.create(Rows)
    async for item in getattr(rows, method)(1000):
        if item == 5:
            break  # the iterator is dropped here: its generator is closed where it lives
    gc.collect()
    await rows.wait_finished()
    assert await rows.get_closed() == ["aptio home"]


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["rows", "arows"])
async def test_aclose_runs_the_finally_at_home_before_it_returns(
    main: aptio.Apartment, method: str
) -> None:
    sta = await aptio.start_sta("home")
    rows = await sta.create(Rows)
    async with getattr(rows, method)(1000) as iterator:
        assert await iterator.__anext__() == 0
    assert await rows.get_closed() == ["aptio home"]
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


@pytest.mark.asyncio
async def test_aclose_before_the_first_step_never_needs_the_generator(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta("home")
    rows = await sta.create(Rows)
    iterator = rows.rows(10)
    await iterator.aclose()
    await apartment_barrier(sta)
    assert await rows.get_threads() == []


@pytest.mark.asyncio
async def test_cancelling_the_consumer_cancels_the_step_and_closes_at_home(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta("home")
    rows = await sta.create(Rows)
    got: list[int] = []
    started = asyncio.Event()

    async def consume() -> None:
        async for item in rows.stuck_after(3):
            got.append(item)
            if item == 2:
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await rows.wait_finished()
    assert got == [0, 1, 2]
    assert await rows.get_closed() == ["aptio home"]


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["failing", "afailing"])
async def test_an_error_arrives_after_the_items_made_before_it(
    main: aptio.Apartment, method: str
) -> None:
    sta = await aptio.start_sta()
    rows = await sta.create(Rows)
    got: list[int] = []
    with pytest.raises(Boom, match="after 37"):
        async for item in getattr(rows, method)(37):
            got.append(item)
    assert got == list(range(37))


@pytest.mark.asyncio
async def test_the_apartment_shutting_down_mid_iteration_gives_disconnected_error(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    rows = await sta.create(Rows)
    iterator = rows.arows(10).prefetch(1)
    assert await iterator.__anext__() == 0
    await sta.shutdown()
    with pytest.raises(aptio.DisconnectedError):
        await iterator.__anext__()
    with pytest.raises(StopAsyncIteration):  # finished once an error escaped
        await iterator.__anext__()


@pytest.mark.asyncio
async def test_a_plain_thread_iterates_with_a_blocking_for(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("home")
    rows = await sta.create(Rows)

    def consume() -> list[int]:
        with rows.arows(50) as iterator:
            return [item for item in iterator]

    assert await asyncio.to_thread(consume) == list(range(50))
    assert set(await rows.get_threads()) == {"aptio home"}


@pytest.mark.asyncio
async def test_a_blocking_for_on_an_sta_thread_is_refused(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    rows = await sta.create(Rows)
    for _ in range(20):  # refused whether or not the step happens to be done already
        with pytest.raises(aptio.WrongApartmentError, match="use `async for` in an STA"):
            next(iter(rows.rows(3)))
    local = await aptio.create(Rows)  # a generator of this very apartment steps inline
    assert list(local.rows(3)) == [0, 1, 2]


@pytest.mark.asyncio
async def test_iterating_in_the_same_apartment_stays_on_this_thread(
    main: aptio.Apartment,
) -> None:
    rows = await aptio.create(Rows)  # lives in the main STA, like the caller
    assert [item async for item in rows.arows(20)] == list(range(20))
    assert set(await rows.get_threads()) == {threading.current_thread().name}


@pytest.mark.asyncio
async def test_a_method_returning_a_generator_object_hands_back_an_iterator(
    main: aptio.Apartment,
) -> None:
    """3.11 used to fail here (it takes a generator for a coroutine), and 3.12+ returned the
    raw generator, whose body then ran on the caller's thread."""
    sta = await aptio.start_sta()
    rows = await sta.create(Rows)
    iterator = await rows.returns_a_generator(4)
    assert isinstance(iterator, aptio.CallIterator)
    assert [item async for item in iterator] == [0, 10, 20, 30]


@pytest.mark.asyncio
async def test_coclass_instances_yielded_cross_as_proxies(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("home")
    rows = await sta.create(Rows)
    async for item in rows.items(3):
        assert aptio.is_proxy(item)
        assert await item.where() == "aptio home"


@pytest.mark.asyncio
async def test_a_call_iterator_is_not_awaitable(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    rows = await sta.create(Rows)
    iterator = rows.rows(3)
    with pytest.raises(TypeError, match="CallIterator"):
        await iterator  # type: ignore[misc]
    await iterator.aclose()


@pytest.mark.asyncio
async def test_prefetch_one_keeps_the_body_in_lockstep(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    rows = await sta.create(Rows)
    iterator = rows.rows(100).prefetch(1)
    for expected in range(20):
        assert await iterator.__anext__() == expected
        assert await rows.get_produced() == expected + 1  # never ahead of the caller
    await iterator.aclose()
    with pytest.raises(ValueError, match="positive int"):
        rows.rows(1).prefetch(0)


@pytest.mark.asyncio
async def test_a_sync_generators_batches_grow_so_long_runs_take_few_calls(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    rows = await sta.create(Rows)
    iterator = rows.rows(10_000)
    first = await iterator.__anext__()
    assert first == 0 and await rows.get_produced() == 1  # the first step fetches one item
    rest = [item async for item in iterator]
    assert rest == list(range(1, 10_000))


@aptio.coclass(aptio.ThreadingModel.FREE)
class FreeRows:
    closed: ClassVar[list[str]] = []

    def rows(self, n: int) -> Iterator[int]:
        try:
            yield from range(n)
        finally:
            FreeRows.closed.append(threading.current_thread().name)


def test_a_free_objects_generator_closes_on_an_mta_thread() -> None:
    """An MTA object's last reference goes on an MTA thread too: with one pool worker, a call
    sent after the release runs after it."""

    async def body() -> list[str]:
        FreeRows.closed.clear()
        rows = await aptio.create(FreeRows)
        async for item in rows.rows(100):
            if item == 3:
                break
        gc.collect()  # the iterator is gone: the release of its enumerator is queued
        await asyncio.to_thread(lambda: list(rows.rows(0)))  # queued behind it, FIFO
        return list(FreeRows.closed)

    closed = aptio.run(body, mta_workers=1)
    # The released one first, on the worker; the second ran inline on the plain thread (an
    # implicit MTA member), where calls to MTA objects run directly.
    assert len(closed) == 2 and closed[0] == "aptio MTA worker 1"


def test_iterating_from_a_thread_in_no_apartment_after_the_runtime_is_gone() -> None:
    async def body() -> Any:
        sta = await aptio.start_sta()
        rows = await sta.create(Rows)
        return rows.rows(3)

    iterator = aptio.run(body)
    with pytest.raises(aptio.DisconnectedError):
        next(iterator)


@pytest.mark.asyncio
async def test_an_iterator_dropped_before_its_first_step_is_abandoned(
    main: aptio.Apartment, caplog: pytest.LogCaptureFixture
) -> None:
    """Its opening call, if it has not started yet, never does (a held one is dropped when
    the hold lets it go), and nothing is reported as an unretrieved error, also when the
    apartment shuts down meanwhile."""
    import gc

    from aptio.testing import hold_calls

    sta = await aptio.start_sta("dropped")
    rows = await sta.create(Rows)
    async with hold_calls(sta) as hold:
        rows.rows(3)  # dropped at once, unopened
        gc.collect()
        probe = rows.get_produced()  # behind the opening call in the queue
        await hold.wait_held(1)
        assert "get_produced" in hold.held_calls()[-1]
    assert await probe == 0
    rows.rows(3)  # dropped too; whether or not it ran when the STA stops, nothing is lost
    await sta.shutdown()
    gc.collect()
    assert "never retrieved" not in caplog.text
