"""What the primitives tell about themselves: the Lock's holder, the Semaphore's bound, an
unowned Lock's semantics, and the waits (self-waits above all) that diagnostics list."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import pytest
import pytest_asyncio

import aptio
from aptio import _sync as sync

from sync_helpers import LoopThread, start_thread, until, until_blocking

pytestmark = pytest.mark.timeout(30)


@pytest_asyncio.fixture
async def other_loop() -> AsyncIterator[LoopThread]:
    lt = LoopThread()
    try:
        yield lt
    finally:
        await asyncio.to_thread(lt.close)


@pytest.fixture
def thread_pool() -> Iterator[Callable[[Callable[[], object]], threading.Thread]]:
    threads: list[threading.Thread] = []

    def start(fn: Callable[[], object]) -> threading.Thread:
        threads.append(start_thread(fn))
        return threads[-1]

    yield start
    for t in threads:
        t.join(10)


# -- the holder -------------------------------------------------------------------------------


@pytest.mark.parametrize("fair", [True, False])
@pytest.mark.asyncio
async def test_statistics_name_the_task_that_holds_the_lock(fair: bool) -> None:
    lock = sync.Lock(fair=fair)
    me = asyncio.current_task()
    assert lock.statistics() == sync.LockStatistics(
        locked=False, owner=None, waiters=0, fair=fair
    )
    assert lock.statistics().owner_kind is None
    async with lock:
        assert lock.statistics().owner is me
        assert lock.statistics().owner_kind == "task"
    assert await lock.acquire()
    assert lock.statistics().owner is me
    lock.release()
    lock.acquire_nowait()
    assert lock.statistics().owner is me  # acquire_nowait inside a Task names the Task
    lock.release()
    assert lock.statistics().owner is None


@pytest.mark.parametrize("fair", [True, False])
def test_statistics_name_the_thread_that_holds_the_lock(fair: bool) -> None:
    lock = sync.Lock(fair=fair)
    me = threading.current_thread()
    with lock:
        assert lock.statistics().owner is me
        assert lock.statistics().owner_kind == "thread"
    assert lock.acquire_blocking()
    assert lock.statistics().owner is me
    lock.release()
    lock.acquire_nowait()
    assert lock.statistics().owner is me
    lock.release()


@pytest.mark.parametrize("fair", [True, False])
@pytest.mark.asyncio
async def test_the_holder_after_a_hand_off_is_the_waiter_that_got_it(
    fair: bool, other_loop: LoopThread
) -> None:
    """From a thread to a Task of another loop, and from there to a thread."""
    lock = sync.Lock(fair=fair)
    seen: list[object] = []
    got_it = threading.Event()
    go_on = threading.Event()

    def thread_holder() -> None:
        with lock:
            seen.append(lock.statistics().owner is threading.current_thread())

    async def task_holder() -> None:
        async with lock:
            seen.append(lock.statistics().owner is asyncio.current_task())
            got_it.set()
            await asyncio.to_thread(go_on.wait, 10)

    lock.acquire_nowait()
    held = other_loop.submit(task_holder())
    await until(lambda: lock.statistics().waiters == 1)
    lock.release()
    await asyncio.to_thread(got_it.wait, 10)
    t = start_thread(thread_holder)
    await until(lambda: lock.statistics().waiters == 1)
    go_on.set()
    await asyncio.wrap_future(held)
    await asyncio.to_thread(t.join, 10)
    assert seen == [True, True]
    assert lock.statistics().owner is None


def test_statistics_are_frozen_values() -> None:
    stats = sync.Lock().statistics()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.locked = True  # type: ignore[misc]
    sem_stats = sync.Semaphore(1).statistics()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        sem_stats.value = 3  # type: ignore[misc]


# -- the Semaphore's bound --------------------------------------------------------------------


@pytest.mark.parametrize("fair", [True, False])
def test_a_semaphore_bound_above_its_initial_value(fair: bool) -> None:
    sem = sync.Semaphore(1, max_value=3, fair=fair)
    assert (sem.value, sem.max_value) == (1, 3)
    assert sem.statistics() == sync.SemaphoreStatistics(
        value=1, max_value=3, waiters=0, fair=fair
    )
    sem.release()
    sem.release()
    assert sem.value == 3
    with pytest.raises(
        ValueError,
        match=r"^Semaphore released too many times: its value would pass max_value=3; "
        r"release only permits that were acquired$",
    ):
        sem.release()
    assert sem.value == 3
    sem.acquire_nowait()
    sem.release()
    assert sync.Semaphore(2).max_value is None
    bounded = sync.BoundedSemaphore(2)
    assert (bounded.value, bounded.max_value) == (2, 2)
    with pytest.raises(ValueError, match=r"^BoundedSemaphore released too many times"):
        bounded.release()


def test_a_bound_below_the_initial_value_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"^Semaphore max_value \(1\) must be >= its initial value \(2\)$"
    ):
        sync.Semaphore(2, max_value=1)


def test_a_permit_handed_to_a_waiter_does_not_count_against_the_bound() -> None:
    sem = sync.Semaphore(0, max_value=1)
    got: list[bool] = []
    t = start_thread(lambda: got.append(sem.acquire_blocking()))
    until_blocking(lambda: sem.statistics().waiters == 1)
    sem.release()  # to the waiter
    t.join(10)
    sem.release()  # the waiter's permit back: value 1, the bound
    with pytest.raises(ValueError, match=r"released too many times"):
        sem.release()
    assert got == [True]
    assert sem.value == 1


@pytest.mark.parametrize("fair", [True, False])
def test_concurrent_releases_never_pass_the_bound(fair: bool) -> None:
    """The bound check and the release are one step: of ten simultaneous releases into room
    for five, exactly five succeed."""

    def release(sem: sync.Semaphore, start: threading.Barrier, outcomes: list[str]) -> None:
        start.wait()
        try:
            sem.release()
            outcomes.append("ok")
        except ValueError:
            outcomes.append("refused")

    for _ in range(30):
        sem = sync.Semaphore(0, max_value=5, fair=fair)
        start = threading.Barrier(10)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=release, args=(sem, start, outcomes)) for _ in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 5
        assert sem.value == 5


# -- an unowned lock --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_any_thread_may_release_a_lock_a_task_of_another_loop_holds(
    other_loop: LoopThread,
) -> None:
    lock = sync.Lock()

    async def take() -> None:
        await lock.acquire()

    await asyncio.wrap_future(other_loop.submit(take()))
    assert lock.locked()
    await asyncio.to_thread(lock.release)
    assert not lock.locked()


def test_a_thread_that_acquires_twice_waits_until_another_releases() -> None:
    lock = sync.Lock()
    second: list[bool] = []

    def twice() -> None:
        lock.acquire_blocking()
        second.append(lock.acquire_blocking())

    t = start_thread(twice)
    until_blocking(lambda: lock.statistics().waiters == 1)
    assert second == []  # blocked on itself
    lock.release()  # the first acquisition, released by another thread
    t.join(10)
    assert second == [True]
    lock.release()


# -- waits and self-waits ---------------------------------------------------------------------

_SELF_WAIT = (
    r"^self-wait: {who} waits on the Lock at 0x[0-9a-f]+, which it holds itself; aptio's Lock "
    r"is not re-entrant, so release it first \(or restructure the code so the holder does not "
    r"acquire it again\)$"
)


def _ours(waits: tuple[aptio.PrimitiveWait, ...], p: object) -> list[aptio.PrimitiveWait]:
    return [w for w in waits if w.primitive is p]


@pytest.mark.parametrize("fair", [True, False])
def test_a_thread_waiting_on_a_lock_it_holds_is_a_self_wait(fair: bool) -> None:
    lock = sync.Lock(fair=fair)
    ready = threading.Event()

    def twice() -> None:
        lock.acquire_blocking()
        ready.set()
        lock.acquire_blocking()  # waits for itself

    t = start_thread(twice)
    ready.wait(10)
    until_blocking(lambda: bool(_ours(aptio.self_waits(), lock)))
    (wait,) = _ours(aptio.self_waits(), lock)
    assert wait == aptio.PrimitiveWait(primitive=lock, waiter=t, holder=t)
    assert wait.is_self_wait
    assert re.match(_SELF_WAIT.format(who=f"thread '{t.name}'"), str(wait))
    assert str(wait) in aptio.format_calls().splitlines()
    lock.release()  # another thread releases the first hold: the second one gets it
    t.join(10)
    lock.release()
    assert not _ours(aptio.dump_waits(), lock)
    assert aptio.format_calls() == "no aptio calls in flight"


@pytest.mark.asyncio
async def test_a_task_waiting_on_a_lock_it_holds_is_a_self_wait(other_loop: LoopThread) -> None:
    lock = sync.Lock()
    tasks: list[asyncio.Task[Any] | None] = []

    async def twice() -> None:
        tasks.append(asyncio.current_task())
        async with lock, lock:
            pass  # pragma: no cover - never gets here

    stuck = other_loop.submit(twice())
    await until(lambda: bool(_ours(aptio.self_waits(), lock)))
    (wait,) = _ours(aptio.self_waits(), lock)
    task = tasks[0]
    assert task is not None
    assert (wait.waiter, wait.holder) == (task, task)
    assert re.match(_SELF_WAIT.format(who=f"Task '{task.get_name()}'"), str(wait))
    assert str(wait) in aptio.format_calls().splitlines()
    stuck.cancel()
    await until(lambda: not _ours(aptio.dump_waits(), lock))
    assert not lock.locked()


def test_a_condition_entered_again_by_its_holder_is_a_self_wait_on_its_lock() -> None:
    cond = sync.Condition()
    ready = threading.Event()

    def twice() -> None:
        with cond:
            ready.set()
            cond.acquire_blocking()

    t = start_thread(twice)
    ready.wait(10)
    lock = cond.statistics().lock
    until_blocking(lambda: cond.statistics().lock.waiters == 1)
    assert lock is not None
    (wait,) = [w for w in aptio.self_waits() if w.waiter is t]
    assert isinstance(wait.primitive, sync.Lock)
    assert wait.holder is t
    cond.release()  # the first hold: the second gets it, and `with` releases it
    t.join(10)
    assert not cond.locked()
    assert not [w for w in aptio.dump_waits() if w.waiter is t]


@pytest.mark.asyncio
async def test_other_waits_are_listed_with_their_holder_but_are_not_self_waits(
    thread_pool: Callable[[Callable[[], object]], threading.Thread],
) -> None:
    lock = sync.Lock()
    ev = sync.Event()
    sem = sync.Semaphore(0)
    cond = sync.Condition()
    await lock.acquire()
    me = asyncio.current_task()

    def wait_on_cond() -> None:
        with cond:
            cond.wait_blocking()

    threads = [
        thread_pool(lock.acquire_blocking),
        thread_pool(ev.wait_blocking),
        thread_pool(sem.acquire_blocking),
        thread_pool(wait_on_cond),
    ]
    prims: list[object] = [lock, ev, sem, cond]
    await until(lambda: all(_ours(aptio.dump_waits(), p) for p in prims))
    waits = aptio.dump_waits()
    for p, t in zip(prims, threads, strict=True):
        (wait,) = _ours(waits, p)
        assert wait.waiter is t
        assert wait.holder is (me if p is lock else None)
        assert not wait.is_self_wait
    (lock_wait,) = _ours(waits, lock)
    assert re.match(
        rf"^thread '{threads[0].name}' waits on the Lock at 0x[0-9a-f]+, "
        rf"held by Task '{me.get_name() if me else ''}'$",
        str(lock_wait),
    )
    assert re.match(r"^thread '.*' waits on the Event at 0x[0-9a-f]+$", str(_ours(waits, ev)[0]))
    assert not [w for w in aptio.self_waits() if w.primitive in prims]
    lock.release()
    ev.set()
    sem.release()
    async with cond:
        cond.notify()
    await until(lambda: not any(_ours(aptio.dump_waits(), p) for p in prims))
    await asyncio.to_thread(threads[0].join, 10)
    lock.release()


def test_a_self_wait_shows_in_format_calls_without_a_runtime() -> None:
    assert aptio.format_calls() == "no aptio calls in flight"
    lock = sync.Lock()
    t = start_thread(lambda: (lock.acquire_blocking(), lock.acquire_blocking()))
    until_blocking(lambda: bool(_ours(aptio.self_waits(), lock)))
    assert re.match(_SELF_WAIT.format(who=f"thread '{t.name}'"), aptio.format_calls())
    lock.release()
    t.join(10)
    lock.release()
    assert aptio.format_calls() == "no aptio calls in flight"


@aptio.coclass
class LockUser:
    """Lives in a worker STA: takes a lock there, by every coroutine path."""

    async def holders(self, lock: Any) -> list[bool]:
        task = asyncio.current_task()
        seen = []
        async with lock:
            seen.append(lock.statistics().owner is task)
        await lock.acquire()
        seen.append(lock.statistics().owner is task)
        lock.release()
        return seen


@pytest.mark.asyncio
async def test_the_holder_is_the_task_on_apartment_threads_too(main: aptio.Apartment) -> None:
    # An apartment's thread looks the Task up through the loop it is bound to (no system call
    # on 3.11): the main STA, a worker STA and the host STA name the right Task.
    lock = sync.Lock()
    async with lock:
        assert lock.statistics().owner is asyncio.current_task()
    worker = await (await aptio.start_sta("lock user")).create(LockUser)
    assert await worker.holders(lock) == [True, True]
    hosted = await aptio.mta().create(LockUser)  # APARTMENT from the MTA: the host STA
    assert await hosted.holders(lock) == [True, True]

    async def in_a_task() -> bool:
        async with lock:
            return lock.statistics().owner is asyncio.current_task()

    assert await asyncio.gather(*(in_a_task() for _ in range(5))) == [True] * 5
