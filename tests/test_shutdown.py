"""Apartment shutdown: new, queued and overrunning calls fail with DisconnectedError; threads
are joined; shutdown is idempotent and safe from inside; nothing hangs."""

from __future__ import annotations

import asyncio
import threading

import pytest

import aptio
from aptio.testing import live_apartment_threads

from apt_classes import Counter, FreeObj


@aptio.coclass
class Gate:
    """Blocks its STA's thread until released: makes 'queued behind' deterministic."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        self.entered = entered
        self.release = release

    def hold(self) -> str:
        self.entered.set()
        assert self.release.wait(30)
        return "held"


@aptio.coclass
class Forever:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self) -> None:
        self.started.set()
        await asyncio.Event().wait()

    async def wait_started(self) -> None:
        await self.started.wait()

    async def shut_own_apartment(self) -> str:
        here = aptio.current_apartment()
        assert here is not None
        await here.shutdown()
        return "returned"


@pytest.mark.asyncio
async def test_new_calls_into_a_closed_apartment_fail_at_once(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("doomed")
    counter = await sta.create(Counter)
    await sta.shutdown()
    assert sta.is_closed
    with pytest.raises(aptio.DisconnectedError, match=r"'doomed' is shut down"):
        counter.inc()
    with pytest.raises(aptio.DisconnectedError):
        await sta.create(Counter)


@pytest.mark.asyncio
async def test_queued_calls_fail_and_the_running_one_finishes(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    entered, release = threading.Event(), threading.Event()
    gate = await sta.create(Gate, entered, release)
    counter = await sta.create(Counter)
    held = gate.hold()
    await asyncio.to_thread(entered.wait, 30)  # the STA thread is now busy
    queued = [counter.inc() for _ in range(5)]
    stopping = asyncio.ensure_future(sta.shutdown())
    while not sta.is_closed:
        await asyncio.sleep(0)
    release.set()
    await stopping
    assert await held == "held"
    for call in queued:
        with pytest.raises(aptio.DisconnectedError):
            await call


@pytest.mark.asyncio
async def test_calls_overrunning_the_drain_timeout_fail_with_disconnected(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    forever = await sta.create(Forever)
    call = forever.run()
    await forever.wait_started()
    await sta.shutdown(timeout=0.01)
    with pytest.raises(aptio.DisconnectedError, match=r"still running"):
        await call


@pytest.mark.asyncio
async def test_running_calls_finish_within_the_drain_timeout(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    started, release = threading.Event(), threading.Event()

    @aptio.coclass
    class Finisher:
        async def work(self) -> str:
            started.set()
            await asyncio.to_thread(release.wait, 30)
            return "finished"

    finisher = await sta.create(Finisher)
    work = finisher.work()
    await asyncio.to_thread(started.wait, 30)
    stopping = asyncio.ensure_future(sta.shutdown(timeout=30))
    while not sta.is_closed:
        await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await stopping
    assert await work == "finished"


@pytest.mark.asyncio
async def test_shutdown_is_idempotent_and_concurrent(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    await asyncio.gather(sta.shutdown(), sta.shutdown(), sta.shutdown())
    await sta.shutdown()
    assert sta.is_closed


@pytest.mark.asyncio
async def test_shutdown_from_inside_does_not_deadlock(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("self-stopping")
    forever = await sta.create(Forever)
    assert await forever.shut_own_apartment() == "returned"
    assert sta.is_closed
    await sta.shutdown()  # joins the thread
    assert not [t for t in live_apartment_threads() if t.name == "aptio self-stopping"]


@pytest.mark.asyncio
async def test_mta_shutdown_fails_new_and_overrunning_calls(main: aptio.Apartment) -> None:
    release = threading.Event()

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class Stuck:
        def block(self) -> None:
            release.wait(30)

    stuck = await aptio.create(Stuck)
    call = stuck.block()
    await asyncio.sleep(0)
    await aptio.mta().shutdown(timeout=0.01)
    with pytest.raises(aptio.DisconnectedError, match=r"MTA"):
        await call
    with pytest.raises(aptio.DisconnectedError):
        stuck.block()
    release.set()


@pytest.mark.asyncio
async def test_every_thread_is_joined_after_the_runtime_exits() -> None:
    async with aptio.main_sta():
        stas = [await aptio.start_sta() for _ in range(4)]
        for sta in stas:
            await (await sta.create(Counter)).inc()
        free = await aptio.create(FreeObj)
        await free.where()
        assert live_apartment_threads()
    assert live_apartment_threads() == []


@pytest.mark.asyncio
async def test_calls_in_flight_at_runtime_exit_are_failed_not_lost() -> None:
    async with aptio.main_sta(shutdown_timeout=0.01):
        sta = await aptio.start_sta()
        forever = await sta.create(Forever)
        call = forever.run()
        await forever.wait_started()
    with pytest.raises(aptio.DisconnectedError):
        await call


@pytest.mark.asyncio
async def test_primitive_waiters_in_a_stopping_sta_pass_their_permits_on(
    main: aptio.Apartment,
) -> None:
    """A coroutine parked on an aptio primitive inside an STA is cancelled when the STA stops,
    and the permit it was about to be handed goes to the next waiter, never stranded."""
    lock = aptio.Lock()
    semaphore = aptio.Semaphore(1)
    await lock.acquire()
    await semaphore.acquire()
    sta = await aptio.start_sta()

    @aptio.coclass
    class Waiter:
        async def park(self, lock: aptio.Lock, semaphore: aptio.Semaphore) -> None:
            async with lock, semaphore:
                pass  # pragma: no cover - the STA stops first

    waiter = await sta.create(Waiter)
    parked = waiter.park(lock, semaphore)
    while lock.statistics().waiters == 0:  # the STA's coroutine is queued on the lock
        await asyncio.sleep(0)
    await sta.shutdown(timeout=0)
    with pytest.raises(aptio.DisconnectedError):
        await parked
    lock.release()
    semaphore.release()
    assert await lock.acquire(timeout=30)  # handed to us, not stranded with the dead waiter
    assert await semaphore.acquire(timeout=30)
    lock.release()
    semaphore.release()
