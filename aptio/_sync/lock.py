"""Lock: one mutual-exclusion lock for coroutines on any loop and for plain threads."""

from __future__ import annotations

import asyncio
import collections
import threading
from asyncio.events import _get_running_loop
from types import TracebackType
from typing import final

import attrs

from .._threads.role import thread_role
from .waiter import (
    CANCELLED,
    HANDED,
    PENDING,
    OwnerKind,
    WouldBlock,
    _name,
    _Waiter,
    check_blocking,
    check_timeout,
    is_gone,
    loop_waiter,
    park,
    park_thread,
    reclaim,
    thread_waiter,
)

__all__ = ["Lock", "LockStatistics"]


@final
@attrs.frozen
class LockStatistics:
    """A snapshot of a :class:`Lock`, from :meth:`Lock.statistics`."""

    #: Whether the lock was held.
    locked: bool
    #: Who held it: ``"task"`` (a coroutine), ``"thread"`` (the blocking API) or None.
    owner: OwnerKind | None
    #: How many coroutines and threads were queued for it.
    waiters: int
    #: False for a lock made with ``fair=False``.
    fair: bool


@final
class Lock:
    """A mutual-exclusion lock usable at once from any number of event loops and threads.

    Coroutine API as :class:`asyncio.Lock` (``await lock.acquire()``, ``async with lock``); blocking
    API for plain threads (``with lock:``, :meth:`acquire_blocking`), which raises
    :class:`~aptio.WrongApartmentError` on an STA thread.  Any thread may release it.

    ``fair=True`` (the default) hands the lock over in FIFO order: ``release()`` with waiters
    queued makes the first of them the owner at once, so no one can barge in between; every
    contended acquisition then costs a wake-up of the next waiter.

    ``fair=False`` trades fairness for throughput: ``release()`` frees the lock and wakes one queued
    coroutine, which competes again with anyone arriving meanwhile; plain threads block on the
    lock natively.  A thread or task that releases and re-acquires in a loop then usually keeps
    the lock without a context switch, at the cost of possible starvation of the others.
    """

    __slots__ = ("__weakref__", "_fair", "_held", "_mutex", "_native", "_owner", "_waiters")

    def __init__(self, *, fair: bool = True) -> None:
        # _held is the lock proper: acquired exactly while someone owns the Lock.  A FIFO
        # hand-off keeps it acquired and changes only who the owner is.
        self._held = threading.Lock()
        self._mutex = threading.Lock()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._owner: OwnerKind | None = None
        self._fair = fair
        self._native = 0  # threads blocked natively on _held (fair=False only)

    def __repr__(self) -> str:
        extra = "locked" if self._held.locked() else "unlocked"
        if self._waiters:
            extra = f"{extra}, waiters:{len(self._waiters)}"
        return f"<{_name(self)} object at {id(self):#x} [{extra}]>"

    def locked(self) -> bool:
        """Return True if the lock is held."""
        return self._held.locked()

    def statistics(self) -> LockStatistics:
        """Return a snapshot of the lock's state."""
        held = self._held.locked()
        return LockStatistics(
            locked=held,
            owner=self._owner if held else None,
            waiters=len(self._waiters) + self._native,
            fair=self._fair,
        )

    # -- acquiring ----------------------------------------------------------------------------

    def acquire_nowait(self) -> None:
        """Acquire the lock at once, or raise :class:`WouldBlock`."""
        # A fair lock with queued waiters is not free even if _held is momentarily unlocked.
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            self._owner = "thread" if _get_running_loop() is None else "task"
            return
        raise WouldBlock("the lock is held")

    async def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock and take it; return False if ``timeout`` seconds passed first.

        Cancelled while waiting, it raises CancelledError and holds nothing: a hand-off that
        raced the cancellation is passed on to the next waiter.
        """
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            self._owner = "task"
            return True
        if self._fair:
            return await self._acquire_fair(timeout)
        return await self._acquire_unfair(timeout)

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling thread until it holds the lock; False if ``timeout`` passed first.

        Raises WrongApartmentError on an STA thread: use ``await lock.acquire()`` there.
        """
        check_blocking("Lock.acquire_blocking()", "'await lock.acquire()' or 'async with lock:'")
        check_timeout(timeout)
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            self._owner = "thread"
            return True
        if timeout == 0:
            return False
        if not self._fair:
            return self._acquire_unfair_blocking(timeout)
        w = thread_waiter()
        self._enqueue(w)
        try:
            park_thread(w, timeout)
        except BaseException:  # KeyboardInterrupt while parked
            self._give_up(w)
            raise
        return self._settle(w)

    async def _acquire_fair(self, timeout: float | None) -> bool:
        w = loop_waiter()
        self._enqueue(w)
        try:
            await park(w, timeout)
        except BaseException:  # CancelledError, or GeneratorExit from a closed loop's task
            self._give_up(w)
            raise
        return self._settle(w)

    def _enqueue(self, w: _Waiter) -> None:
        with self._mutex:
            self._waiters.append(w)
        # Append-then-recheck: a releaser that saw no waiters has freed _held (or is about to,
        # and then rechecks the deque).  Whoever gets _held now serves the queue head in FIFO
        # order, which may be w itself: either way no queued waiter is left behind a free lock.
        if self._held.acquire(False):
            self._hand_off()

    def _settle(self, w: _Waiter) -> bool:
        """After parking: True if w was handed the lock, else dequeue w (timed out)."""
        with self._mutex:
            state = w.state
            if state == PENDING:
                self._waiters.remove(w)
                w.state = CANCELLED
        if state == HANDED:
            self._owner = w.kind
            return True
        return False  # CANCELLED (skipped as gone) or PENDING (timed out)

    def _give_up(self, w: _Waiter) -> None:
        """w is leaving by an exception: it must hold nothing and stay in no queue."""
        with self._mutex:
            state = w.state
            if state == PENDING:
                self._waiters.remove(w)
                w.state = CANCELLED
            elif state == HANDED:
                w.state = CANCELLED  # claimed: this waiter, not a waker, passes the lock on
        if state == HANDED:
            # The loser passes it on: the lock was handed over just as w was cancelled.
            self._hand_off()

    def _hand_off(self) -> None:
        """The caller owns _held: pass it to the first live waiter, or free it."""
        while True:
            with self._mutex:
                w = None
                waiters = self._waiters
                while waiters:
                    head = waiters.popleft()
                    if is_gone(head):
                        head.state = CANCELLED
                        continue
                    head.state = HANDED  # FIFO: the lock belongs to head from this moment
                    w = head
                    break
            if w is not None:
                self._owner = w.kind
                if w.wake() or not reclaim(self._mutex, w):
                    return
                continue  # w's loop is closed: we own the lock again; serve the next one
            self._owner = None
            self._held.release()
            # Release-then-recheck, the mirror of _enqueue: a waiter queued after our look at
            # the deque may have failed its own recheck before we freed _held.
            if not self._waiters or not self._held.acquire(False):
                return

    async def _acquire_unfair(self, timeout: float | None) -> bool:
        loop_time = asyncio.get_running_loop().time
        deadline = None if timeout is None else loop_time() + timeout
        front = False
        while True:
            w = loop_waiter()
            with self._mutex:
                if front:
                    self._waiters.appendleft(w)  # woken but beaten: keep its place
                else:
                    self._waiters.append(w)
            if self._held.acquire(False):  # append-then-recheck
                self._forget(w)
                self._owner = "task"
                return True
            remaining = None if deadline is None else deadline - loop_time()
            try:
                await park(w, remaining)
            except BaseException:
                if self._forget(w):
                    self._pass_wake()  # a wake-up reached us as we left: pass it on
                raise
            woken = self._forget(w)
            if self._held.acquire(False):
                self._owner = "task"
                return True
            if not woken:
                return False  # timed out
            front = True

    def _acquire_unfair_blocking(self, timeout: float | None) -> bool:
        with self._mutex:
            self._native += 1
        try:
            ok = self._held.acquire(True, -1 if timeout is None else timeout)
        finally:
            with self._mutex:
                self._native -= 1
        if ok:
            self._owner = "thread"
        return ok

    def _forget(self, w: _Waiter) -> bool:
        """Unfair mode: dequeue w if still queued; True if it had been woken."""
        with self._mutex:
            if w.state == PENDING:
                self._waiters.remove(w)
                w.state = CANCELLED
                return False
        return w.state == HANDED

    def _pass_wake(self) -> None:
        # If the lock is held, its holder wakes someone on release; else we must.
        if not self._held.locked():
            self._wake_one()

    def _wake_one(self) -> None:
        while True:
            with self._mutex:
                w = None
                while self._waiters:
                    head = self._waiters.popleft()
                    if is_gone(head):
                        head.state = CANCELLED
                        continue
                    head.state = HANDED  # a wake-up only: it competes again for _held
                    w = head
                    break
            if w is None or w.wake():
                return

    # -- releasing ----------------------------------------------------------------------------

    def release(self) -> None:
        """Release the lock (from any thread or loop); RuntimeError if it is not held."""
        if self._fair and self._waiters:
            if not self._held.locked():
                raise RuntimeError("Lock is not acquired.")
            self._hand_off()
            return
        self._owner = None
        try:
            self._held.release()
        except RuntimeError:
            raise RuntimeError("Lock is not acquired.") from None
        if self._waiters:
            if not self._fair:
                self._wake_one()
            elif self._held.acquire(False):  # release-then-recheck, see _hand_off
                self._hand_off()

    async def __aenter__(self) -> None:
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            self._owner = "task"  # the fast path of acquire(), inlined: one coroutine less
            return
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __enter__(self) -> None:
        # The fast path of acquire_blocking(), inlined; on an STA thread (apartment set) it
        # always takes the slow path, which raises WrongApartmentError.
        if not thread_role.loop_owner and not self._waiters and self._held.acquire(False):
            self._owner = "thread"
            return
        self.acquire_blocking()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
