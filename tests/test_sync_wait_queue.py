"""The wait queue's invariants, each provoked on purpose: the claim protocol's races, leaving
waiters skipped, the set of waiting queues, unfair re-queueing, interrupts while parked, tasks
destroyed with their closed loops, and randomized interleavings across loops and threads.

The races are held open deterministically (a loop whose wake-up reports failure only after the
waiter has run, a signal sent once a thread is seen parked), never by sleeping.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import random
import signal
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from aptio import _sync as sync
from aptio._sync.wait_queue import WaitQueue, waiting_queues

from sync_helpers import SITES, LoopThread, Sites, start_thread, until, until_blocking

pytestmark = pytest.mark.timeout(30)

Prim = sync.Lock | sync.Semaphore | sync.Condition


def _queue(p: object) -> WaitQueue:
    queue: WaitQueue = p._queue  # type: ignore[attr-defined]
    return queue


def _registered(p: object) -> bool:
    return any(q.primitive() is p for q in waiting_queues())


def _waiters(p: object) -> int:
    return len(_queue(p))


def _make(kind: str) -> Prim:
    """A Lock held by the caller, a Semaphore with no permit, or a Condition."""
    if kind == "Lock":
        lock = sync.Lock()
        lock.acquire_nowait()
        return lock
    return sync.Semaphore(0) if kind == "Semaphore" else sync.Condition()


def _assert_one_permit(p: sync.Lock | sync.Semaphore) -> None:
    """Free, nobody queued, and exactly one permit left: no permit lost, none duplicated."""
    assert _waiters(p) == 0
    assert not _registered(p)
    p.acquire_nowait()
    with pytest.raises(sync.WouldBlock):
        p.acquire_nowait()
    p.release()


@pytest_asyncio.fixture
async def sites() -> AsyncIterator[Sites]:
    s = Sites()
    try:
        yield s
    finally:
        await asyncio.to_thread(s.close)


# -- invariant 3: what a waiter claimed, a failed wake-up cannot take back ---------------------


class _WakeUpFailsLate(asyncio.SelectorEventLoop):
    """Once armed with a predicate, ``call_soon_threadsafe`` delivers its callback, waits until
    the predicate holds (the waiter has run), then raises as a closed loop does: the waker sees
    its wake-up fail after the waiter already took what it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.after: Callable[[], bool] | None = None

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        after, self.after = self.after, None
        if after is None:
            return handle
        until_blocking(after)
        raise RuntimeError("Event loop is closed")


@pytest.mark.parametrize("kind", ["Lock", "Semaphore"])
def test_a_permit_the_waiter_took_is_not_taken_back_by_its_failed_wake_up(kind: str) -> None:
    p = sync.Lock() if kind == "Lock" else sync.Semaphore(1)
    loop = _WakeUpFailsLate()
    lt = LoopThread(loop=loop)
    try:
        p.acquire_nowait()
        took = threading.Event()

        async def waiter() -> asyncio.Task[Any] | None:
            assert await p.acquire()
            took.set()
            return asyncio.current_task()

        done = lt.submit(waiter())
        until_blocking(lambda: _waiters(p) == 1)
        loop.after = took.is_set
        p.release()  # the hand-off is delivered and kept; then the wake-up "fails"
        task = done.result(10)
        with pytest.raises(sync.WouldBlock):
            p.acquire_nowait()  # still the waiter's: not taken back and counted again
        if isinstance(p, sync.Lock):
            assert p.statistics().owner is task
        p.release()
        _assert_one_permit(p)
    finally:
        lt.close()


def test_a_notification_the_waiter_took_is_not_sent_again_by_its_failed_wake_up() -> None:
    cond = sync.Condition()
    loop = _WakeUpFailsLate()
    lt = LoopThread(loop=loop)
    try:

        async def wait() -> bool:
            async with cond:
                return await cond.wait()

        first = lt.submit(wait())
        until_blocking(lambda: cond.statistics().waiters == 1)
        second: list[bool] = []

        def wait_blocking() -> None:
            with cond:
                second.append(cond.wait_blocking())

        t = start_thread(wait_blocking)
        until_blocking(lambda: cond.statistics().waiters == 2)
        with cond:
            # The first waiter has taken its notification once it queues for the lock.
            loop.after = lambda: cond.statistics().lock.waiters == 1
            cond.notify(1)
            assert cond.statistics().waiters == 1  # one notify woke one waiter, not two
        assert first.result(10) is True
        with cond:
            cond.notify()
        t.join(10)
        assert second == [True]
    finally:
        lt.close()


# -- invariant 4: a waiter that is leaving is skipped ------------------------------------------


@pytest.mark.parametrize("kind", ["Lock", "Semaphore", "Condition"])
@pytest.mark.asyncio
async def test_a_release_skips_a_waiter_whose_cancellation_is_pending(kind: str) -> None:
    """The cancelled task has not run yet, but its future is done: the hand-off goes straight
    to the thread queued behind it, and the cancelled task passes nothing on."""
    p = _make(kind)

    async def coro_wait() -> bool:
        if isinstance(p, sync.Condition):
            async with p:
                return await p.wait()
        return await p.acquire()

    def blocking_wait() -> bool:
        if isinstance(p, sync.Condition):
            with p:
                return p.wait_blocking()
        return p.acquire_blocking()

    leaving = asyncio.ensure_future(coro_wait())
    await until(lambda: _waiters(p) == 1)
    got: list[bool] = []
    t = start_thread(lambda: got.append(blocking_wait()))
    await until(lambda: _waiters(p) == 2)
    leaving.cancel()  # its future is cancelled now; the task itself runs later
    if isinstance(p, sync.Condition):
        async with p:
            p.notify(1)
    else:
        p.release()
    assert _waiters(p) == 0  # the leaving waiter was skipped, the thread was handed it
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await asyncio.to_thread(t.join, 10)
    assert got == [True]
    if isinstance(p, sync.Lock):
        assert p.statistics().owner is t
    if isinstance(p, sync.Lock):
        p.release()
    elif isinstance(p, sync.Semaphore):
        p.release()  # the thread's permit, back
        p.acquire_nowait()
        with pytest.raises(sync.WouldBlock):
            p.acquire_nowait()
    assert not _registered(p)


# -- invariant 5: the set of queues with waiters -----------------------------------------------


@pytest.mark.asyncio
async def test_a_queue_is_listed_exactly_while_it_has_waiters() -> None:
    lock = sync.Lock()
    ev = sync.Event()
    sem = sync.Semaphore(0)
    for _ in range(3):
        async with lock:
            pass  # uncontended: never listed
    assert not any(map(_registered, (lock, ev, sem)))
    await lock.acquire()
    waiting = [asyncio.ensure_future(w) for w in (lock.acquire(), ev.wait(), sem.acquire())]
    await until(lambda: all(map(_registered, (lock, ev, sem))))
    lock.release()  # hand-off
    ev.set()  # drain
    waiting[2].cancel()  # cancellation
    await asyncio.gather(*waiting, return_exceptions=True)
    assert not any(map(_registered, (lock, ev, sem)))
    assert await sem.acquire(timeout=0.001) is False  # timeout
    assert not _registered(sem)
    lock.release()


def test_the_list_of_waiting_queues_keeps_nothing_alive() -> None:
    """A primitive dropped while a task of a closed loop still waits on it is collected with
    that task: being listed as waiting keeps neither alive."""

    def strand() -> weakref.ref[sync.Event]:
        ev = sync.Event()
        lt = LoopThread()
        lt.submit(ev.wait())
        until_blocking(lambda: _waiters(ev) == 1)
        lt.loop.call_soon_threadsafe(lt.loop.stop)
        lt._thread.join(10)
        lt.loop.close()
        assert _registered(ev)
        return weakref.ref(ev)

    alive = strand()
    gc.collect()
    assert alive() is None
    assert all(q.primitive() is not None for q in waiting_queues())


# -- unfair mode: woken but beaten keeps its place ---------------------------------------------


@pytest.mark.parametrize("kind", ["Lock", "Semaphore"])
@pytest.mark.asyncio
async def test_unfair_a_woken_waiter_beaten_to_it_keeps_its_place_at_the_head(kind: str) -> None:
    p = sync.Lock(fair=False) if kind == "Lock" else sync.Semaphore(1, fair=False)
    p.acquire_nowait()
    order: list[str] = []

    async def take(name: str) -> None:
        await p.acquire()
        order.append(name)
        p.release()

    a = asyncio.ensure_future(take("a"))
    await until(lambda: _waiters(p) == 1)
    b = asyncio.ensure_future(take("b"))
    await until(lambda: _waiters(p) == 2)
    p.release()  # wakes a, which runs later...
    p.acquire_nowait()  # ...and a newcomer barges in first
    await until(lambda: _waiters(p) == 2 and _queue(p).who_waits()[0] is a)
    p.release()  # wakes the head of the queue: a again, not b
    await asyncio.gather(a, b)
    assert order == ["a", "b"]
    _assert_one_permit(p)


# -- interrupted while parked (KeyboardInterrupt or any exception a signal handler raises) ------


class _Interrupt(Exception):
    pass


def _parked_lines(fn: Callable[..., Any], call: str) -> tuple[Any, set[int]]:
    lines, first = inspect.getsourcelines(fn)
    return fn.__code__, {first + i for i, line in enumerate(lines) if call in line}


def _interrupt_when_parked(ident: int, where: tuple[Any, set[int]], fired: threading.Event) -> None:
    """Send SIGUSR1 to thread ``ident`` once it is blocked in the parking call (its top frame
    is on that line), until its handler has run.  A signal that lands just before the thread
    enters the blocking call is only acted on at the next one, hence the repeats."""
    code, lines = where

    def parked() -> bool:
        frame = sys._current_frames().get(ident)
        return frame is not None and frame.f_code is code and frame.f_lineno in lines

    until_blocking(parked)
    while not fired.is_set():
        signal.pthread_kill(ident, signal.SIGUSR1)
        fired.wait(0.005)


PARK = _parked_lines(WaitQueue.park_thread, "tlock.acquire(")
NATIVE = _parked_lines(sync.Lock._acquire_unfair_blocking, "self._held.acquire(")


@pytest.mark.parametrize("handed", [False, True], ids=["pending", "handed"])
@pytest.mark.parametrize("kind", ["Lock", "Lock-unfair", "Semaphore", "Semaphore-unfair"])
def test_an_interrupt_while_parked_never_loses_or_duplicates_a_permit(
    kind: str, handed: bool
) -> None:
    """The main thread holds the permit and waits for another (a self-wait).  A signal arrives
    while it is parked; with ``handed`` its handler first releases the held permit, which is
    handed to the parked thread itself, so the interrupted waiter must pass it on."""
    fair = not kind.endswith("unfair")
    p = sync.Lock(fair=fair) if kind.startswith("Lock") else sync.Semaphore(1, fair=fair)
    where = NATIVE if kind == "Lock-unfair" else PARK

    fired = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if fired.is_set():
            return  # a repeat that arrived late: the interrupt was delivered already
        fired.set()
        if handed:
            p.release()
        raise _Interrupt

    main = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        for _ in range(20):
            fired.clear()
            p.acquire_nowait()
            t = start_thread(lambda: _interrupt_when_parked(main, where, fired))
            with pytest.raises(_Interrupt):
                p.acquire_blocking()
            t.join(10)
            if not handed:
                p.release()
            _assert_one_permit(p)
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("notified", [False, True], ids=["pending", "notified"])
def test_a_condition_wait_interrupted_while_parked_holds_the_lock_and_passes_on(
    notified: bool,
) -> None:
    """The main thread waits on a condition, a second thread waits behind it, and a signal
    interrupts the main thread while it is parked. With ``notified``, the handler first
    notifies the main thread (the oldest waiter): the interrupted waiter must pass that
    notification on to the second. Without, it must pass nothing on: the second waiter is
    still waiting once the interrupt has propagated. Both waits have no timeout, so every
    state the test waits for lasts until the test itself moves on."""
    cond = sync.Condition()
    behind: list[bool] = []
    fired = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if fired.is_set():
            return
        fired.set()
        if notified:
            cond.acquire_nowait()  # wait_blocking released the lock
            cond.notify(1)  # the main thread is the oldest waiter: it gets the notification
            cond.release()
        raise _Interrupt

    def second_waiter() -> None:
        with cond:
            behind.append(cond.wait_blocking())

    main = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        with cond:
            # Blocks on the lock until the main thread's wait releases it, so it queues second.
            second = start_thread(second_waiter)

            def interrupt() -> None:
                # Both queued, the lock released by the second (the handler may take it).
                until_blocking(lambda: cond.statistics().waiters == 2 and not cond.locked())
                _interrupt_when_parked(main, PARK, fired)

            t = start_thread(interrupt)
            with pytest.raises(_Interrupt):
                cond.wait_blocking()
            assert cond.locked()  # re-acquired before the interrupt propagated
            t.join(10)
            # Passed on, the notification took the second waiter off the queue at once; with
            # none to pass on, it still waits (it returns once it has the lock, after this).
            assert cond.statistics().waiters == (0 if notified else 1) and behind == []
            if not notified:
                cond.notify(1)
        second.join(10)
        assert behind == [True]
        assert cond.statistics().waiters == 0
        assert not cond.locked()
    finally:
        signal.signal(signal.SIGUSR1, previous)


# -- GeneratorExit: a task destroyed with its closed loop ---------------------------------------


@pytest.mark.parametrize("kind", ["Lock", "Semaphore", "Condition"])
def test_a_task_destroyed_with_its_closed_loop_takes_nothing_and_holds_nothing(
    kind: str,
) -> None:
    """The hand-off to a closed loop's waiter fails and goes to the next waiter; when that task
    is then garbage-collected, the GeneratorExit thrown into its wait passes nothing on a second
    time, and a Condition's wait does not try to re-acquire the lock."""
    p = _make(kind)

    async def wait() -> bool:
        if isinstance(p, sync.Condition):
            # No `async with`: its exit would release a lock the destroyed task cannot hold.
            await p.acquire()
            return await p.wait()
        return await p.acquire()

    lt = LoopThread()
    stranded = lt.submit(wait())
    until_blocking(lambda: _waiters(p) == 1)
    lt.loop.call_soon_threadsafe(lt.loop.stop)
    lt._thread.join(10)
    lt.loop.close()  # its task never runs again
    behind = LoopThread()
    try:
        second = behind.submit(wait())
        until_blocking(lambda: _waiters(p) == 2)
        if isinstance(p, sync.Condition):
            with p:
                p.notify(1)  # undeliverable to the first: the second is notified instead
        else:
            p.release()
        assert second.result(10) is True
        del stranded
        gc.collect()  # the stranded task and its coroutine go: GeneratorExit in its wait
        assert _waiters(p) == 0
        assert not _registered(p)
        if isinstance(p, sync.Condition):
            p.release()  # the second waiter's
            assert not p.locked()
        else:
            p.release()  # the second waiter's
            _assert_one_permit(p)
    finally:
        behind.close()


@pytest.mark.parametrize("kind", ["Lock", "Semaphore", "Condition"])
def test_a_task_collected_inside_a_critical_section_of_its_queue_passes_on_without_deadlock(
    kind: str,
) -> None:
    """A hand-off whose wake-up was queued on a loop that then closed without running it stays
    with the dead task until the task is collected.  That collection may run on a thread that
    is inside one of the same queue's critical sections (here: the test holds the mutex): the
    task leaves through a helper thread, and the hand-off goes on to the next waiter."""
    p = _make(kind)

    async def wait() -> bool:
        if isinstance(p, sync.Condition):
            await p.acquire()
            return await p.wait()
        return await p.acquire()

    def blocking_wait() -> bool:
        if isinstance(p, sync.Condition):
            with p:
                return p.wait_blocking()
        return p.acquire_blocking()

    lt = LoopThread()
    stranded = lt.submit(wait())
    until_blocking(lambda: _waiters(p) == 1)
    lt.loop.call_soon_threadsafe(lt.loop.stop)
    lt._thread.join(10)  # stopped, not closed: a wake-up can still be queued on it
    if isinstance(p, sync.Condition):
        with p:
            p.notify(1)
    else:
        p.release()
    lt.loop.close()  # drops the queued wake-up: the task holds the hand-off, never to run
    got: list[bool] = []
    t = start_thread(lambda: got.append(blocking_wait()))
    until_blocking(lambda: _waiters(p) == 1)
    del stranded
    with _queue(p).mutex:  # as if the collection ran inside one of the queue's sections
        gc.collect()  # the stranded task is destroyed here, on this thread
    t.join(10)
    assert got == [True]
    if not isinstance(p, sync.Condition):
        p.release()  # the thread's
        _assert_one_permit(p)
    assert not p.locked() if isinstance(p, sync.Condition) else True
    assert not _registered(p)


# -- randomized interleavings across loops and threads ------------------------------------------


@pytest.mark.asyncio
async def test_condition_no_notification_is_lost_under_random_cancellation_and_timeouts(
    sites: Sites,
) -> None:
    """Consumers on every kind of site take items as producers add them, while random
    timeouts and cancellations hit the waits; a notification lost to a waiter that left would
    leave an item unconsumed and its consumer waiting forever."""
    cond = sync.Condition()
    items = [0]
    per_consumer = 150
    consumers = SITES + SITES

    async def take_one() -> int:
        async with cond:
            await cond.wait_for(lambda: items[0] > 0)
            items[0] -= 1
            return 1

    async def coro_consumer(seed: int) -> int:
        rnd = random.Random(seed)
        taken = 0
        while taken < per_consumer:
            once = asyncio.ensure_future(take_one())
            if rnd.random() < 0.3:
                for _ in range(rnd.randrange(3)):
                    await asyncio.sleep(0)
                once.cancel()
            (outcome,) = await asyncio.gather(once, return_exceptions=True)
            taken += outcome == 1
        return taken

    def thread_consumer(seed: int) -> int:
        rnd = random.Random(seed)
        taken = 0
        while taken < per_consumer:
            with cond:
                if cond.wait_for_blocking(lambda: items[0] > 0, rnd.choice([None, 0.0005])):
                    items[0] -= 1
                    taken += 1
        return taken

    handles = [
        sites.spawn(site, lambda i=i: coro_consumer(i), lambda i=i: thread_consumer(i))  # type: ignore[misc]
        for i, site in enumerate(consumers)
    ]
    rnd = random.Random(0)
    for _ in range(per_consumer * len(consumers)):
        async with cond:
            items[0] += 1
            cond.notify(rnd.choice([1, 1, 2]))
        if rnd.random() < 0.5:
            await asyncio.sleep(0)
    for h in handles:
        assert await h == ("ok", per_consumer)
    assert items[0] == 0
    assert cond.statistics().waiters == 0
    assert not cond.locked()
    assert not _registered(cond)


@pytest.mark.asyncio
async def test_event_every_waiter_returns_under_random_set_clear_cancel_and_timeouts(
    sites: Sites,
) -> None:
    ev = sync.Event()
    rounds = 150

    async def coro_waiter(seed: int) -> int:
        rnd = random.Random(seed)
        for _ in range(rounds):
            wait = asyncio.ensure_future(ev.wait(rnd.choice([None, None, 0.0005])))
            if rnd.random() < 0.3:
                await asyncio.sleep(0)
                wait.cancel()
            await asyncio.gather(wait, return_exceptions=True)
        return rounds

    def thread_waiter(seed: int) -> int:
        rnd = random.Random(seed)
        for _ in range(rounds):
            ev.wait_blocking(rnd.choice([None, None, 0.0005]))
        return rounds

    handles = [
        sites.spawn(site, lambda i=i: coro_waiter(i), lambda i=i: thread_waiter(i))  # type: ignore[misc]
        for i, site in enumerate(SITES + SITES)
    ]
    rnd = random.Random(1)
    pending = set(range(len(handles)))
    while pending:
        ev.set()
        if rnd.random() < 0.7:
            ev.clear()
        await asyncio.sleep(0)
        pending = {i for i in pending if not handles[i].fut.done()}
    for h in handles:
        assert await h == ("ok", rounds)
    assert ev.statistics().waiters == 0
    assert not _registered(ev)
