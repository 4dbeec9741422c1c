"""Semaphore and BoundedSemaphore for coroutines on any loop and for plain threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import final

import attrs

from .context import AsyncContextMixin, BlockingContextMixin
from .wait_queue import (
    Waiter,
    WaitQueue,
    WouldBlock,
    blocking_thread,
    check_timeout,
    loop_waiter,
    thread_waiter,
    type_name,
)

__all__ = ["Semaphore", "BoundedSemaphore", "SemaphoreStatistics"]


@final
@attrs.frozen
class SemaphoreStatistics:
    """A snapshot of a :class:`Semaphore` or :class:`BoundedSemaphore`."""

    #: Permits free to take at once.
    value: int
    #: The bound ``release()`` may not raise the value past; None when unbounded.
    max_value: int | None
    #: How many coroutines and threads were queued for a permit.
    waiters: int
    #: False for a semaphore made with ``fair=False``.
    fair: bool


class _SemaphoreBase(AsyncContextMixin, BlockingContextMixin):
    """The shared implementation; the public classes differ only in how the bound is given."""

    __slots__ = ("__weakref__", "_bound", "_fair", "_mutex", "_queue", "_value", "_waiters")

    def __init__(self, value: int, max_value: int | None, fair: bool) -> None:
        if value < 0:
            raise ValueError("Semaphore initial value must be >= 0")
        if max_value is not None and max_value < value:
            raise ValueError(
                f"Semaphore max_value ({max_value}) must be >= its initial value ({value})"
            )
        self._queue = WaitQueue(self)
        self._mutex = self._queue.mutex  # also guards _value
        self._waiters = self._queue.waiters  # read without the mutex: a hint
        # Invariant (fair mode): _value > 0 only while _waiters is empty, because a release
        # hands its permit straight to the first waiter instead of counting it.
        self._value = value
        self._bound = max_value
        self._fair = fair

    def __repr__(self) -> str:
        extra = "locked" if self.locked() else f"unlocked, value:{self._value}"
        if self._waiters:
            extra = f"{extra}, waiters:{len(self._waiters)}"
        return f"<{type_name(self)} object at {id(self):#x} [{extra}]>"

    @property
    def value(self) -> int:
        """Permits free to take at once."""
        return self._value

    @property
    def max_value(self) -> int | None:
        """The bound ``release()`` may not raise :attr:`value` past; None when unbounded."""
        return self._bound

    def locked(self) -> bool:
        """Return True if an ``acquire()`` now would have to wait."""
        return self._value == 0 or (self._fair and bool(self._waiters))

    def statistics(self) -> SemaphoreStatistics:
        """Return a snapshot of the semaphore's state."""
        return SemaphoreStatistics(
            value=self._value, max_value=self._bound, waiters=len(self._waiters), fair=self._fair
        )

    # -- acquiring ----------------------------------------------------------------------------

    def _try_take(self) -> bool:
        with self._mutex:
            if self._value > 0 and (not self._fair or not self._waiters):
                self._value -= 1
                return True
        return False

    def _take_or_queue(self, w: Waiter, front: bool = False) -> bool:
        """Take a free permit (True), or queue ``w`` (last, or first with ``front``).

        The check and the append are one step under the mutex, so a release either sees w
        queued or leaves the permit in _value for w to see: no lost wake-up.
        """
        with self._mutex:
            if self._value > 0 and (not self._fair or not self._waiters):
                self._value -= 1
                return True
            self._queue.append(w, front)
        return False

    def acquire_nowait(self) -> None:
        """Take a permit at once, or raise :class:`WouldBlock`."""
        if not self._try_take():
            raise WouldBlock("no permit is free")

    async def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a permit and take it; return False if ``timeout`` seconds passed first.

        A free permit is taken without yielding to the event loop, as asyncio's is.  Cancelled
        while waiting, it raises CancelledError and holds nothing: a permit handed over as the
        cancellation arrived goes on to the next waiter.
        """
        if self._value > 0 and self._try_take():  # unlocked read: only a hint, rechecked
            return True
        if not self._fair:
            return await self._acquire_unfair(timeout)
        w = loop_waiter()
        if self._take_or_queue(w):
            return True
        return await self._queue.park(w, timeout, self._put_back)

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling thread until it takes a permit; False if ``timeout`` passed first.

        Raises WrongApartmentError on an STA thread: use ``await sem.acquire()`` there.
        """
        thread = blocking_thread(
            self, "acquire_blocking", "'await sem.acquire()' or 'async with sem:'"
        )
        check_timeout(timeout)
        if self._value > 0 and self._try_take():  # unlocked read: only a hint, rechecked
            return True
        if timeout == 0:
            return False
        if not self._fair:
            return self._acquire_unfair_blocking(thread, timeout)
        w = thread_waiter(thread)
        if self._take_or_queue(w):
            return True
        return self._queue.park_thread(w, timeout, self._put_back)

    # fair=False: a release counts its permit and wakes one waiter, which competes for it with
    # newcomers; one that loses keeps its place at the head of the queue.

    async def _acquire_unfair(self, timeout: float | None) -> bool:
        clock = asyncio.get_running_loop().time
        deadline = None if timeout is None else clock() + timeout
        front = False
        while not self._take_or_queue(w := loop_waiter(), front):
            woken = await self._queue.park(w, _remaining(deadline, clock), self._pass_wake)
            if self._try_take():
                return True
            if not woken:
                return False  # timed out
            front = True
        return True

    def _acquire_unfair_blocking(self, thread: threading.Thread, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        front = False
        while not self._take_or_queue(w := thread_waiter(thread), front):
            woken = self._queue.park_thread(
                w, _remaining(deadline, time.monotonic), self._pass_wake
            )
            if self._try_take():
                return True
            if not woken:
                return False  # timed out
            front = True
        return True

    # -- releasing ----------------------------------------------------------------------------

    def release(self) -> None:
        """Return a permit (from any task or thread); ValueError past :attr:`max_value`."""
        with self._mutex:
            full = self._bound is not None and self._value >= self._bound
            if not full:
                if not self._waiters:  # nobody to hand it to or to wake: the common case
                    self._value += 1
                    return
                w = self._return_permit()
        if full:
            raise ValueError(
                f"{type(self).__name__} released too many times: its value would pass "
                f"max_value={self._bound}; release only permits that were acquired"
            )
        self._wake(w)

    def _return_permit(self) -> Waiter | None:
        """With the mutex held: fair, hand the permit to the first live waiter (returned) or
        count it; unfair, count it and return a waiter to wake, which competes for it."""
        if self._fair:
            w = self._queue.pop_live()  # FIFO: the permit belongs to w from this moment
            if w is None:
                self._value += 1
            return w
        self._value += 1
        return self._queue.pop_live()

    def _wake(self, w: Waiter | None) -> None:
        """Deliver w's hand-off; when its loop is closed, serve the next waiter instead."""
        while w is not None and not self._queue.deliver(w):
            with self._mutex:
                # Fair: we took the permit back, so it goes to the next waiter or is counted.
                # Unfair: the permit is counted already; only the wake-up goes to the next.
                w = self._return_permit() if self._fair else self._queue.pop_live()

    def _put_back(self) -> None:
        """A waiter handed a permit as it gave up passes it on (fair mode)."""
        with self._mutex:
            w = self._return_permit()
        self._wake(w)

    def _pass_wake(self) -> None:
        """A waiter woken as it gave up passes the wake-up on, if a permit is still free."""
        with self._mutex:
            w = self._queue.pop_live() if self._value > 0 else None
        self._wake(w)


def _remaining(deadline: float | None, clock: Callable[[], float]) -> float | None:
    return None if deadline is None else deadline - clock()


@final
class Semaphore(_SemaphoreBase):
    """A counter of permits usable at once from any number of event loops and threads.

    Coroutine API as :class:`asyncio.Semaphore`; blocking API for plain threads (``with sem:``,
    :meth:`acquire_blocking`), which raises WrongApartmentError on an STA thread.
    ``release()`` may be called from any task or thread, any number of times unless
    ``max_value`` is given: then a ``release()`` that would raise the value past it raises
    ValueError (``BoundedSemaphore(n)`` is ``Semaphore(n, max_value=n)``).

    ``fair=True`` (the default) hands each released permit straight to the first waiter (FIFO,
    no barging).  ``fair=False`` counts the permit and wakes one waiter, which competes with
    newcomers for it: more throughput under contention, possible starvation.
    """

    __slots__ = ()

    def __init__(
        self, value: int = 1, *, max_value: int | None = None, fair: bool = True
    ) -> None:
        super().__init__(value, max_value, fair)


@final
class BoundedSemaphore(_SemaphoreBase):
    """A :class:`Semaphore` whose ``release()`` raises ValueError past the initial value."""

    __slots__ = ()

    def __init__(self, value: int = 1, *, fair: bool = True) -> None:
        super().__init__(value, value, fair)
