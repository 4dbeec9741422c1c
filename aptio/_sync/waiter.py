"""The waiter: one parked coroutine or thread, and the claim protocol every primitive shares.

A waiter is either a *loop waiter* (a coroutine parked on an ``asyncio.Future`` of its own event
loop) or a *thread waiter* (a plain thread parked on a ``threading.Lock`` it acquired once).
Whoever wakes it does not care which: :meth:`_Waiter.wake` resolves the future directly when the
waker runs on the waiter's loop, through ``loop.call_soon_threadsafe`` from any other thread (this
writes the loop's self-pipe, so an idle loop wakes at once, not at its next timer), or releases the
thread lock.

The claim protocol (the invariants every primitive keeps):

* ``_Waiter.state`` is only read-modify-written while the owning primitive's ``_mutex`` is held.
  The mutex guards O(1) bookkeeping only; nobody blocks, awaits or wakes anyone while holding it.
* A waiter is in its primitive's ``_waiters`` deque exactly while its state is ``PENDING``.
* Whoever moves a waiter out of ``PENDING`` owns that transition: the waker (to ``HANDED``: the
  permit or notification now belongs to the waiter) or the waiter itself (to ``CANCELLED``, on
  timeout or cancellation).  Exactly one of them wins, because both test-and-set under the mutex.
* A waiter that finds itself ``HANDED`` when it gives up passes what it was handed on; a waker whose
  wake-up cannot be delivered (the waiter's loop is closed) takes it back with :func:`reclaim`.
  Both claim with a test-and-set under the mutex, so a permit is never lost nor duplicated.
* A loop waiter whose future is already done while still ``PENDING`` is going away (its task was
  cancelled or its timeout fired) and will remove itself: a waker may skip it and mark it
  ``CANCELLED`` instead, which is what the waiter would have done (see :func:`is_gone`).
"""

from __future__ import annotations

import asyncio
import threading
from asyncio.events import _get_running_loop
from typing import Final, Literal, TypeAlias

from .._threads.role import forbids_blocking
from .._values.errors import WouldBlock, WrongApartmentError
from .park_hook import park_hook

__all__ = ["WouldBlock"]

PENDING: Final = 0  # queued, nothing handed yet
HANDED: Final = 1  # woken: a permit / notification / event now belongs to the waiter
CANCELLED: Final = 2  # removed: timed out, cancelled, or skipped as gone
ABANDONED: Final = 3  # handed, but undeliverable (loop closed); the waker took it back

OwnerKind: TypeAlias = Literal["task", "thread"]


class _Waiter:
    """One parked coroutine (``fut`` set) or thread (``tlock`` set)."""

    __slots__ = ("fut", "kind", "loop", "state", "tlock")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        fut: asyncio.Future[None] | None,
        tlock: threading.Lock | None,
    ) -> None:
        self.state: int = PENDING
        self.loop = loop
        self.fut = fut
        self.tlock = tlock
        self.kind: OwnerKind = "task" if fut is not None else "thread"

    def wake(self) -> bool:
        """Deliver the wake-up; False when it never can be (the waiter's loop is closed).

        Called after the state moved to HANDED, never while holding a primitive's mutex.
        """
        tlock = self.tlock
        if tlock is not None:
            tlock.release()
            return True
        loop = self.loop
        fut = self.fut
        assert loop is not None
        assert fut is not None
        if _get_running_loop() is loop:
            if not fut.done():
                fut.set_result(None)
            return True
        try:
            loop.call_soon_threadsafe(_resolve, fut)
        except RuntimeError:  # the loop is closed: nobody will ever run this waiter
            return False
        return True


def loop_waiter() -> _Waiter:
    loop = asyncio.get_running_loop()
    return _Waiter(loop, loop.create_future(), None)


def thread_waiter() -> _Waiter:
    tlock = threading.Lock()
    tlock.acquire()
    return _Waiter(None, None, tlock)


def is_gone(waiter: _Waiter) -> bool:
    """True for a PENDING loop waiter whose future is done: it is leaving and holds nothing."""
    fut = waiter.fut
    return fut is not None and fut.done()


def reclaim(mutex: threading.Lock, waiter: _Waiter) -> bool:
    """After a failed :meth:`_Waiter.wake`: take back what was handed, unless the waiter did."""
    with mutex:
        if waiter.state == HANDED:
            waiter.state = ABANDONED
            return True
    return False


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def park(waiter: _Waiter, timeout: float | None) -> None:
    """Await a loop waiter's wake-up, or its timeout; the caller then reads ``waiter.state``.

    A timeout resolves the future rather than cancelling the task, so the claim under the mutex
    decides alone whether the waiter was handed something (it keeps it) or not (it leaves).
    """
    fut = waiter.fut
    assert fut is not None
    assert waiter.loop is not None
    watch = park_hook.on_park  # a call recording notes the wait
    ended = watch(None, False) if watch is not None else None
    handle = None if timeout is None else waiter.loop.call_later(max(timeout, 0.0), _resolve,
                                                                  fut)
    try:
        await fut
    finally:
        if handle is not None:
            handle.cancel()
        if ended is not None:
            ended()


def park_thread(waiter: _Waiter, timeout: float | None) -> None:
    """Block a thread waiter until it is woken or ``timeout`` passes."""
    tlock = waiter.tlock
    assert tlock is not None
    if timeout is not None and timeout <= 0:
        return
    watch = park_hook.on_park  # a call recording notes the wait
    ended = watch(None, True) if watch is not None else None
    try:
        if timeout is None:
            tlock.acquire()
        else:
            tlock.acquire(True, timeout)
    finally:
        if ended is not None:
            ended()


def check_blocking(what: str, instead: str) -> None:
    """Raise WrongApartmentError on an STA thread, where a blocking wait would stall it."""
    if forbids_blocking():
        raise WrongApartmentError(
            f"{what} would block an STA thread and stall every object in its apartment; "
            f"use {instead} instead"
        )


def check_timeout(timeout: float | None) -> None:
    """Validate a blocking ``timeout`` the way ``threading.Lock.acquire`` does."""
    if timeout is None:
        return
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number or None")
    if timeout > threading.TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")


def _name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
