"""Event: a flag that coroutines on any loop and plain threads can wait for."""

from __future__ import annotations

from typing import final

import attrs

from .wait_queue import (
    Waiter,
    WaitQueue,
    blocking_thread,
    check_timeout,
    loop_waiter,
    thread_waiter,
    type_name,
)

__all__ = ["Event", "EventStatistics"]


@final
@attrs.frozen
class EventStatistics:
    """A snapshot of an :class:`Event`, from :meth:`Event.statistics`."""

    #: Whether the flag was set.
    is_set: bool
    #: How many coroutines and threads were waiting for it.
    waiters: int


@final
class Event:
    """A flag usable at once from any number of event loops and threads.

    Coroutine API as :class:`asyncio.Event` (``await ev.wait()``); blocking API for plain
    threads (:meth:`wait_blocking`), which raises WrongApartmentError on an STA thread.
    ``set()`` wakes every waiter on every loop and thread; a waiter woken by ``set()`` returns
    True even if ``clear()`` ran before it resumed (gh-57711).  Waiting on a set event returns
    at once, without yielding to the event loop, as asyncio's does.
    """

    __slots__ = ("__weakref__", "_queue", "_value", "_waiters")

    def __init__(self) -> None:
        self._queue = WaitQueue(self)
        self._waiters = self._queue.waiters
        self._value = False

    def __repr__(self) -> str:
        extra = "set" if self._value else "unset"
        if self._waiters:
            extra = f"{extra}, waiters:{len(self._waiters)}"
        return f"<{type_name(self)} object at {id(self):#x} [{extra}]>"

    def is_set(self) -> bool:
        """Return True if the flag is set."""
        return self._value

    def statistics(self) -> EventStatistics:
        """Return a snapshot of the event's state."""
        return EventStatistics(is_set=self._value, waiters=len(self._waiters))

    def set(self) -> None:
        """Set the flag and wake every waiter (from any thread or loop)."""
        if self._value:
            return
        with self._queue.mutex:
            self._value = True
            woken = self._queue.drain()
        for w in woken:
            w.wake()  # a closed loop's waiter holds no permit: nothing to take back

    def clear(self) -> None:
        """Reset the flag; later waits block until the next ``set()``."""
        self._value = False

    def _set_or_queue(self, w: Waiter) -> bool:
        # Check-and-append is one step under the mutex, as is set()'s flag-and-drain: a waiter
        # either sees the flag or is in the queue set() drains.  No lost wake-up.
        with self._queue.mutex:
            if self._value:
                return True
            self._queue.append(w)
        return False

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set and return True; False if ``timeout`` passed first."""
        if self._value:
            return True
        w = loop_waiter()
        if self._set_or_queue(w):
            return True
        return await self._queue.park(w, timeout, None)  # a set() woke all: nothing to pass on

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling thread until the flag is set; False if ``timeout`` passed first.

        Raises WrongApartmentError on an STA thread: use ``await ev.wait()`` there.
        """
        thread = blocking_thread(self, "wait_blocking", "'await event.wait()'")
        check_timeout(timeout)
        if self._value:
            return True
        if timeout == 0:
            return False
        w = thread_waiter(thread)
        if self._set_or_queue(w):
            return True
        return self._queue.park_thread(w, timeout, None)
