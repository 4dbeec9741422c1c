"""Semaphore and BoundedSemaphore for coroutines on any loop and for plain threads."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from types import TracebackType
from typing import final

import attrs

from .waiter import (
    CANCELLED,
    HANDED,
    PENDING,
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

__all__ = ["Semaphore", "BoundedSemaphore", "SemaphoreStatistics"]


@final
@attrs.frozen
class SemaphoreStatistics:
    """A snapshot of a :class:`Semaphore` or :class:`BoundedSemaphore`."""

    #: Permits free to take at once.
    value: int
    #: The bound of a BoundedSemaphore, None for a Semaphore.
    max_value: int | None
    #: How many coroutines and threads were queued for a permit.
    waiters: int
    #: False for a semaphore made with ``fair=False``.
    fair: bool


class _SemaphoreBase:
    """The shared implementation; the public classes differ only in the bound."""

    __slots__ = ("__weakref__", "_bound", "_fair", "_mutex", "_value", "_waiters")

    def __init__(self, value: int = 1, *, fair: bool = True) -> None:
        if value < 0:
            raise ValueError("Semaphore initial value must be >= 0")
        self._mutex = threading.Lock()
        # Invariant (fair mode): _value > 0 only while _waiters is empty, because release()
        # hands a permit straight to the first waiter instead of counting it.
        self._value = value
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._fair = fair
        self._bound: int | None = None

    def __repr__(self) -> str:
        extra = "locked" if self.locked() else f"unlocked, value:{self._value}"
        if self._waiters:
            extra = f"{extra}, waiters:{len(self._waiters)}"
        return f"<{_name(self)} object at {id(self):#x} [{extra}]>"

    def locked(self) -> bool:
        """Return True if an ``acquire()`` now would have to wait."""
        return self._value == 0 or (self._fair and bool(self._waiters))

    def statistics(self) -> SemaphoreStatistics:
        """Return a snapshot of the semaphore's state."""
        return SemaphoreStatistics(
            value=self._value, max_value=self._bound, waiters=len(self._waiters), fair=self._fair
        )

    def _try_take(self) -> bool:
        with self._mutex:
            if self._value > 0 and (not self._fair or not self._waiters):
                self._value -= 1
                return True
        return False

    def acquire_nowait(self) -> None:
        """Take a permit at once, or raise :class:`WouldBlock`."""
        if not self._try_take():
            raise WouldBlock("no permit is free")

    async def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a permit and take it; return False if ``timeout`` seconds passed first.

        Cancelled while waiting, it raises CancelledError and holds nothing: a permit handed
        over as the cancellation arrived goes on to the next waiter.
        """
        if self._value > 0 and self._try_take():  # unlocked read: only a hint, rechecked
            return True
        if not self._fair:
            return await self._acquire_unfair(timeout)
        w = loop_waiter()
        if self._enqueue(w):
            return True
        try:
            await park(w, timeout)
        except BaseException:  # CancelledError, or GeneratorExit from a closed loop's task
            self._give_up(w)
            raise
        return self._settle(w)

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling thread until it takes a permit; False if ``timeout`` passed first.

        Raises WrongApartmentError on an STA thread: use ``await sem.acquire()`` there.
        """
        check_blocking(
            f"{type(self).__name__}.acquire_blocking()",
            "'await sem.acquire()' or 'async with sem:'",
        )
        check_timeout(timeout)
        if timeout == 0:
            return self._try_take()
        if not self._fair:
            return self._acquire_unfair_blocking(timeout)
        w = thread_waiter()  # _enqueue takes a free permit instead of queueing, if there is one
        if self._enqueue(w):
            return True
        try:
            park_thread(w, timeout)
        except BaseException:  # KeyboardInterrupt while parked
            self._give_up(w)
            raise
        return self._settle(w)

    def _enqueue(self, w: _Waiter) -> bool:
        """Queue w, unless a permit is free (then take it and return True).

        The check and the append are one step under the mutex, so a release() either sees w
        queued or left the permit in _value for w to see: no lost wake-up.
        """
        with self._mutex:
            if self._value > 0 and (not self._fair or not self._waiters):
                self._value -= 1
                return True
            self._waiters.append(w)
        return False

    def _settle(self, w: _Waiter) -> bool:
        with self._mutex:
            state = w.state
            if state == PENDING:
                self._waiters.remove(w)
                w.state = CANCELLED
        return state == HANDED  # a permit handed just as the timeout fired is kept, not lost

    def _give_up(self, w: _Waiter) -> None:
        with self._mutex:
            state = w.state
            if state == PENDING:
                self._waiters.remove(w)
            w.state = CANCELLED  # claimed: from here only this waiter passes the permit on
        if state == HANDED:
            self._put_back()

    def _pop_live(self) -> _Waiter | None:
        """With the mutex held: the first waiter that is not leaving, now HANDED."""
        waiters = self._waiters
        while waiters:
            head = waiters.popleft()
            if is_gone(head):
                head.state = CANCELLED
                continue
            head.state = HANDED
            return head
        return None

    def _put_back(self) -> None:
        """Return one permit: hand it to the first waiter (fair) or count it and wake one."""
        while True:
            with self._mutex:
                if self._fair:
                    w = self._pop_live()  # FIFO: the permit belongs to w from this moment
                    if w is None:
                        self._value += 1
                        return
                else:
                    self._value += 1  # the woken waiter competes for it with newcomers
                    w = self._pop_live()
                    if w is None:
                        return
            if w.wake():
                return
            if self._fair and not reclaim(self._mutex, w):
                return  # the waiter claimed it first and passes it on itself
            # The waiter's loop is closed: give the permit (or wake-up) to the next one.
            if not self._fair:
                with self._mutex:
                    self._value -= 1  # undo; the loop above counts it again

    def release(self) -> None:
        """Return a permit (from any thread or loop); ValueError past a BoundedSemaphore's bound."""
        if self._bound is not None:
            with self._mutex:
                if self._value >= self._bound:
                    raise ValueError("BoundedSemaphore released too many times")
        self._put_back()

    async def _acquire_unfair(self, timeout: float | None) -> bool:
        loop_time = asyncio.get_running_loop().time
        deadline = None if timeout is None else loop_time() + timeout
        front = False
        while True:
            w = loop_waiter()
            with self._mutex:
                if self._value > 0:
                    self._value -= 1
                    return True
                if front:
                    self._waiters.appendleft(w)  # woken but beaten: keep its place
                else:
                    self._waiters.append(w)
            remaining = None if deadline is None else deadline - loop_time()
            try:
                await park(w, remaining)
            except BaseException:
                with self._mutex:
                    state = w.state
                    if state == PENDING:
                        self._waiters.remove(w)
                    w.state = CANCELLED
                    # A wake-up that reached us as we left goes to the next waiter.
                    w2 = self._pop_live() if state == HANDED and self._value > 0 else None
                if w2 is not None:
                    w2.wake()
                raise
            with self._mutex:
                state = w.state
                if state == PENDING:
                    self._waiters.remove(w)
                    w.state = CANCELLED
                if self._value > 0:
                    self._value -= 1
                    return True
            if state != HANDED:
                return False  # timed out
            front = True

    def _acquire_unfair_blocking(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            w = thread_waiter()
            with self._mutex:
                if self._value > 0:
                    self._value -= 1
                    return True
                self._waiters.append(w)
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                park_thread(w, remaining)
            finally:
                with self._mutex:
                    state = w.state
                    if state == PENDING:
                        self._waiters.remove(w)
                        w.state = CANCELLED
            with self._mutex:
                if self._value > 0:
                    self._value -= 1
                    return True
            if state != HANDED:
                return False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __enter__(self) -> None:
        self.acquire_blocking()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@final
class Semaphore(_SemaphoreBase):
    """A counter of permits usable at once from any number of event loops and threads.

    Coroutine API as :class:`asyncio.Semaphore`; blocking API for plain threads (``with sem:``,
    :meth:`acquire_blocking`), which raises WrongApartmentError on an STA thread.
    ``release()`` may be called any number of times, from any thread.

    ``fair=True`` (the default) hands each released permit straight to the first waiter (FIFO,
    no barging).  ``fair=False`` counts the permit and wakes one waiter, which competes with
    newcomers for it: more throughput under contention, possible starvation.
    """

    __slots__ = ()

    def __init__(self, value: int = 1, *, fair: bool = True) -> None:
        super().__init__(value, fair=fair)


@final
class BoundedSemaphore(_SemaphoreBase):
    """A :class:`Semaphore` whose ``release()`` raises ValueError past the initial value."""

    __slots__ = ()

    def __init__(self, value: int = 1, *, fair: bool = True) -> None:
        super().__init__(value, fair=fair)
        self._bound = value
