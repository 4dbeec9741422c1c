"""Lock: one mutual-exclusion lock for coroutines on any loop and for plain threads."""

from __future__ import annotations

import asyncio
import threading
from asyncio import current_task
from typing import final

import attrs

from .._threads.role import thread_role
from .context import AsyncContextMixin, BlockingContextMixin
from .wait_queue import (
    Holder,
    OwnerKind,
    Waiter,
    WaitQueue,
    WouldBlock,
    blocking_thread,
    check_timeout,
    current_holder,
    loop_waiter,
    thread_waiter,
    type_name,
)

__all__ = ["Lock", "LockStatistics"]


@final
@attrs.frozen
class LockStatistics:
    """A snapshot of a :class:`Lock`, from :meth:`Lock.statistics`."""

    #: Whether the lock was held.
    locked: bool
    #: Who acquired it: the ``asyncio.Task`` or the ``threading.Thread``; None when unlocked
    #: (or taken by a coroutine that runs outside any Task).
    owner: Holder | None
    #: How many coroutines and threads were queued for it.
    waiters: int
    #: False for a lock made with ``fair=False``.
    fair: bool

    @property
    def owner_kind(self) -> OwnerKind | None:
        """``"task"`` or ``"thread"``: the kind of :attr:`owner`; None when there is none."""
        if self.owner is None:
            return None
        return "thread" if isinstance(self.owner, threading.Thread) else "task"


@final
class Lock(AsyncContextMixin, BlockingContextMixin):
    """A mutual-exclusion lock usable at once from any number of event loops and threads.

    Coroutine API as :class:`asyncio.Lock` (``await lock.acquire()``, ``async with lock``); blocking
    API for plain threads (``with lock:``, :meth:`acquire_blocking`), which raises
    :class:`~aptio.WrongApartmentError` on an STA thread.

    The lock is not owned, like :class:`threading.Lock` and :class:`asyncio.Lock`: any task or
    thread may release it, and it is not re-entrant: a task or thread that acquires it again
    while holding it waits until someone else releases it.  Such a self-wait is listed by
    :func:`aptio.self_waits` and :func:`aptio.format_calls`; :meth:`statistics` names the holder.

    ``fair=True`` (the default) hands the lock over in FIFO order: ``release()`` with waiters
    queued makes the first of them the owner at once, so no one can barge in between; every
    contended acquisition then costs a wake-up of the next waiter.

    ``fair=False`` trades fairness for throughput: ``release()`` frees the lock and wakes one queued
    coroutine, which competes again with anyone arriving meanwhile (keeping its place at the head
    of the queue if it loses); plain threads block on the lock natively.  A thread or task that
    releases and re-acquires in a loop then usually keeps the lock without a context switch, at
    the cost of possible starvation of the others.
    """

    __slots__ = ("__weakref__", "_fair", "_held", "_owner", "_queue", "_waiters")

    def __init__(self, *, fair: bool = True) -> None:
        # _held is the lock proper: acquired exactly while someone owns the Lock.  A FIFO
        # hand-off keeps it acquired and changes only who the owner is.
        self._held = threading.Lock()
        self._queue = WaitQueue(self)
        self._waiters = self._queue.waiters  # read without the mutex on the fast paths: a hint
        # Written only by whoever holds _held (acquirer, releaser, or a waker handing it over).
        self._owner: Holder | None = None
        self._fair = fair

    def __repr__(self) -> str:
        extra = "locked" if self._held.locked() else "unlocked"
        if self._queue:
            extra = f"{extra}, waiters:{len(self._queue)}"
        return f"<{type_name(self)} object at {id(self):#x} [{extra}]>"

    def locked(self) -> bool:
        """Return True if the lock is held."""
        return self._held.locked()

    def statistics(self) -> LockStatistics:
        """Return a snapshot of the lock's state."""
        held = self._held.locked()
        return LockStatistics(
            locked=held,
            owner=self._owner if held else None,
            waiters=len(self._queue),
            fair=self._fair,
        )

    # -- acquiring ----------------------------------------------------------------------------

    def acquire_nowait(self) -> None:
        """Acquire the lock at once, or raise :class:`WouldBlock`."""
        # A fair lock with queued waiters is not free even if _held is momentarily unlocked.
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            self._owner = current_holder()
            return
        raise WouldBlock("the lock is held")

    async def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock and take it; return False if ``timeout`` seconds passed first.

        A free lock is taken without yielding to the event loop, as asyncio's is.  Cancelled
        while waiting, it raises CancelledError and holds nothing: a hand-off that raced the
        cancellation is passed on to the next waiter.
        """
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            loop = thread_role.loop  # running_task(), inlined (a hot path)
            self._owner = current_task(loop) if loop is not None else current_task()
            return True
        if not self._fair:
            return await self._acquire_unfair(timeout)
        w = loop_waiter()
        self._enqueue(w)
        if await self._queue.park(w, timeout, self._hand_off):
            self._owner = w.who  # only now: see _hand_off
            return True
        return False

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling thread until it holds the lock; False if ``timeout`` passed first.

        Raises WrongApartmentError on an STA thread: use ``await lock.acquire()`` there.
        """
        thread = blocking_thread(
            self, "acquire_blocking", "'await lock.acquire()' or 'async with lock:'"
        )
        check_timeout(timeout)
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            self._owner = thread
            return True
        if timeout == 0:
            return False
        if not self._fair:
            return self._acquire_unfair_blocking(thread, timeout)
        w = thread_waiter(thread)
        self._enqueue(w)
        if self._queue.park_thread(w, timeout, self._hand_off):
            self._owner = thread
            return True
        return False

    # -- fair: FIFO hand-off ------------------------------------------------------------------

    def _enqueue(self, w: Waiter) -> None:
        queue = self._queue
        with queue.mutex:
            queue.append(w)
        # Append-then-recheck: a releaser that saw no waiters has freed _held (or is about to,
        # and then rechecks the deque).  Whoever gets _held now serves the queue head in FIFO
        # order, which may be w itself: either way no queued waiter is left behind a free lock.
        if self._held.acquire(False):
            self._hand_off()

    def _hand_off(self) -> None:
        """The caller owns _held: pass it to the first live waiter, or free it.

        Also what a waiter that was handed the lock as it gave up calls to pass it on.
        """
        queue = self._queue
        # The waiter records itself as the owner once it has the lock, not here: a Task whose
        # loop closes before it runs must stay collectable, so that its GeneratorExit passes
        # the lock on.
        self._owner = None
        while True:
            with queue.mutex:
                w = queue.pop_live()  # FIFO: the lock belongs to w from this moment
            if w is not None:
                if queue.deliver(w):
                    return
                continue  # w's loop is closed: we own the lock again; serve the next one
            self._held.release()
            # Release-then-recheck, the mirror of _enqueue: a waiter queued after our look at
            # the deque may have failed its own recheck before we freed _held.
            if not self._waiters or not self._held.acquire(False):
                return

    # -- unfair: wake one, let it compete -----------------------------------------------------

    async def _acquire_unfair(self, timeout: float | None) -> bool:
        loop_time = asyncio.get_running_loop().time
        deadline = None if timeout is None else loop_time() + timeout
        front = False
        while True:
            w = loop_waiter()
            with self._queue.mutex:
                self._queue.append(w, front)  # woken but beaten: it keeps its place
            if self._held.acquire(False):  # append-then-recheck
                self._queue.leave(w)  # a wake-up it got meanwhile is ours: our release wakes
                self._owner = w.who
                return True
            remaining = None if deadline is None else deadline - loop_time()
            woken = await self._queue.park(w, remaining, self._pass_wake)
            if self._held.acquire(False):
                self._owner = w.who
                return True
            if not woken:
                return False  # timed out
            front = True

    def _acquire_unfair_blocking(self, who: threading.Thread, timeout: float | None) -> bool:
        self._queue.enter_blocked(who)
        try:
            ok = self._held.acquire(True, -1 if timeout is None else timeout)
        finally:
            self._queue.exit_blocked(who)
        if ok:
            self._owner = who
        return ok

    def _pass_wake(self) -> None:
        """A coroutine woken just as it gave up: if the lock is held, its holder wakes someone
        when it releases; if not, the wake-up goes to the next waiter now."""
        if not self._held.locked():
            self._wake_one()

    def _wake_one(self) -> None:
        queue = self._queue
        while True:
            with queue.mutex:
                w = queue.pop_live()  # a wake-up only: it competes again for _held
            if w is None or queue.deliver(w):
                return

    # -- releasing ----------------------------------------------------------------------------

    def release(self) -> None:
        """Release the lock (from any task or thread, not only the one that acquired it).

        RuntimeError if it is not held.
        """
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

    # The fast paths of acquire() and acquire_blocking(), inlined: one coroutine or call less.

    async def __aenter__(self) -> None:
        if (not self._fair or not self._waiters) and self._held.acquire(False):
            loop = thread_role.loop  # running_task(), inlined (a hot path)
            self._owner = current_task(loop) if loop is not None else current_task()
            return
        await self.acquire()

    def __enter__(self) -> None:
        # On an STA thread (no blocking_thread) it always takes the slow path, which raises
        # WrongApartmentError.
        thread = thread_role.blocking_thread
        if thread is not None and not self._waiters and self._held.acquire(False):
            self._owner = thread
            return
        self.acquire_blocking()
