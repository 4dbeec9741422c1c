"""Condition: a condition variable over an aptio Lock, for coroutines and plain threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar, final

import attrs

from .context import AsyncContextMixin, BlockingContextMixin
from .lock import Lock, LockStatistics
from .wait_queue import (
    Waiter,
    WaitQueue,
    blocking_thread,
    check_timeout,
    loop_waiter,
    thread_waiter,
    type_name,
)

__all__ = ["Condition", "ConditionStatistics"]

T = TypeVar("T")


@final
@attrs.frozen
class ConditionStatistics:
    """A snapshot of a :class:`Condition`, from :meth:`Condition.statistics`."""

    #: How many coroutines and threads were waiting to be notified.
    waiters: int
    #: The underlying lock's statistics.
    lock: LockStatistics


@final
class Condition(AsyncContextMixin, BlockingContextMixin):
    """A condition variable usable at once from any number of event loops and threads.

    Coroutine API as :class:`asyncio.Condition`; blocking API for plain threads (``with cond:``,
    :meth:`wait_blocking`, :meth:`wait_for_blocking`), which raises WrongApartmentError on an STA
    thread.  ``lock`` must be an :class:`aptio.Lock` (a new fair one by default), and may be
    shared by several conditions.

    Notifications go to waiters in FIFO order.  A waiter cancelled (or timed out) after it was
    notified passes the notification on to the next waiter (gh-112202), and every ``wait``
    re-acquires the lock before it returns or raises, even when cancelled (bpo-32841).
    """

    __slots__ = ("__weakref__", "_lock", "_queue", "_waiters")

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is None:
            lock = Lock()
        elif not isinstance(lock, Lock):
            raise TypeError(f"Condition needs an aptio.Lock, not {type(lock).__name__}")
        self._lock = lock
        self._queue = WaitQueue(self)
        self._waiters = self._queue.waiters

    def __repr__(self) -> str:
        extra = "locked" if self.locked() else "unlocked"
        if self._waiters:
            extra = f"{extra}, waiters:{len(self._waiters)}"
        return f"<{type_name(self)} object at {id(self):#x} [{extra}]>"

    # -- the lock -----------------------------------------------------------------------------

    def locked(self) -> bool:
        """Return True if the underlying lock is held."""
        return self._lock.locked()

    async def acquire(self, timeout: float | None = None) -> bool:
        """Acquire the underlying lock (see :meth:`Lock.acquire`)."""
        return await self._lock.acquire(timeout)

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        """Acquire the underlying lock from a thread (see :meth:`Lock.acquire_blocking`)."""
        return self._lock.acquire_blocking(timeout)

    def acquire_nowait(self) -> None:
        """Acquire the underlying lock at once, or raise WouldBlock."""
        self._lock.acquire_nowait()

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    def statistics(self) -> ConditionStatistics:
        """Return a snapshot of the condition's state."""
        return ConditionStatistics(waiters=len(self._waiters), lock=self._lock.statistics())

    # -- notifying ----------------------------------------------------------------------------

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters, oldest first; RuntimeError unless the lock is held."""
        if not self._lock.locked():
            raise RuntimeError("cannot notify on un-acquired lock")
        self._notify(n)

    def notify_all(self) -> None:
        """Wake every waiter; RuntimeError unless the lock is held."""
        self.notify(len(self._waiters))

    def _notify(self, n: int) -> None:
        queue = self._queue
        woken: list[Waiter] = []
        while n > 0:
            with queue.mutex:
                # Waiters leaving (cancelled or timed out) are skipped: they would not count
                # as notified.
                while len(woken) < n and (w := queue.pop_live()) is not None:
                    woken.append(w)
            n = 0
            for w in woken:
                if not queue.deliver(w):
                    n += 1  # its loop is closed: the notification goes to the next waiter
            woken.clear()

    def _pass_on(self) -> None:
        """A waiter notified as it gave up passes the notification on (gh-112202)."""
        self._notify(1)

    # -- waiting ------------------------------------------------------------------------------

    def _queue_and_release(self, w: Waiter) -> None:
        if not self._lock.locked():
            raise RuntimeError("cannot wait on un-acquired lock")
        with self._queue.mutex:
            self._queue.append(w)  # queued before the lock is released: no lost notify
        self._lock.release()

    async def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait to be notified, re-acquire the lock.

        Return True when notified, False if ``timeout`` passed first.  The lock is held again
        whenever this returns or raises; a CancelledError is raised after re-acquiring it, and a
        notification that raced the cancellation is passed on to the next waiter.
        """
        w = loop_waiter()
        self._queue_and_release(w)
        try:
            notified = await self._queue.park(w, timeout, self._pass_on)
        except GeneratorExit:  # the task is being destroyed: it can never hold the lock again
            raise
        except BaseException:
            await self._reacquire()
            raise
        try:
            await self._reacquire()
        except BaseException:
            # Cancelled while re-acquiring: the caller never sees this notification, so it
            # goes to the next waiter (at worst a spurious wake-up, which conditions allow).
            if notified:
                self._pass_on()
            raise
        return notified

    async def _reacquire(self) -> None:
        # Re-acquire even when cancelled meanwhile, then re-raise the latest CancelledError
        # (the caller's code assumes it holds the lock in its `async with` block).
        err: asyncio.CancelledError | None = None
        while True:
            try:
                await self._lock.acquire()
                break
            except asyncio.CancelledError as e:
                err = e
        if err is not None:
            try:
                raise err
            finally:
                err = None  # break the reference cycle

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float | None = None,
    ) -> T:
        """Wait until ``predicate()`` is true and return its last value (falsy on timeout)."""
        result = predicate()
        if timeout is None:
            while not result:
                await self.wait()
                result = predicate()
            return result
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not result:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self.wait(remaining)
            result = predicate()
        return result

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """Blocking :meth:`wait` for plain threads; WrongApartmentError on an STA thread."""
        thread = blocking_thread(self, "wait_blocking", "'await cond.wait()'")
        check_timeout(timeout)
        w = thread_waiter(thread)
        self._queue_and_release(w)
        notified = False
        try:
            notified = self._queue.park_thread(w, timeout, self._pass_on)
        finally:
            try:
                self._lock.acquire_blocking()
            except BaseException:  # KeyboardInterrupt while re-acquiring
                if notified:
                    self._pass_on()
                raise
        return notified

    def wait_for_blocking(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Blocking :meth:`wait_for` for plain threads; WrongApartmentError on an STA thread."""
        blocking_thread(self, "wait_for_blocking", "'await cond.wait_for(predicate)'")
        result = predicate()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not result:
            if deadline is None:
                self.wait_blocking()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.wait_blocking(remaining)
            result = predicate()
        return result
