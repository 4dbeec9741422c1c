"""A mailbox: items for one reader that takes them with long polls (Ray actor calls that wait
at the actor), on one event loop.

``put`` (any thread) adds items; ``take`` (a coroutine on the mailbox's loop) returns every
item waiting, as one batch numbered 0, 1, 2... in the order batches are handed out, or, after
``keepalive`` seconds with nothing to hand out, an empty batch numbered ``NOTHING`` (the
reader then takes again: that is how it says it is alive). Several takes may wait at once (Ray
does not keep their order): the newest one gets the next batch, and beyond ``MAX_WAITING`` the
oldest is let go empty. Once ``close``\\ d, every take answers ``GONE`` with the reason.

Hand-out invariant: items only ever leave the outbox together with the next batch number,
under the lock, so batches are numbered in the order their items were put.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
from typing import Final, Generic, TypeVar

__all__ = ["GONE", "MAX_WAITING", "NOTHING", "OK", "Answer", "Mailbox"]

T = TypeVar("T")

#: The number of a batch that carries nothing (not ordered).
NOTHING: Final = -1
#: A take's status: OK (a batch follows), GONE (the mailbox is closed: the reason follows).
OK: Final = 0
GONE: Final = 1
#: How many takes of one mailbox wait at once (older ones return empty).
MAX_WAITING: Final = 2

#: What a take returns: status, batch number, and the items (or, GONE, the reason).
Answer = tuple[int, int, list[T] | str]


class Mailbox(Generic[T]):
    """See the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, keepalive: float) -> None:
        self._loop = loop
        self._keepalive = keepalive
        self._lock = threading.Lock()
        self._outbox: list[T] = []
        self._waiting: collections.deque[asyncio.Future[Answer[T]]] = collections.deque()
        self._wake_due = False
        self._numbers = itertools.count()
        self._closed: str | None = None

    def put(self, items: list[T]) -> None:
        """Add ``items`` for the reader (any thread)."""
        with self._lock:
            if self._closed is not None:
                return
            self._outbox.extend(items)
            if self._wake_due:
                return
            self._wake_due = True
        try:
            self._loop.call_soon_threadsafe(self._give)
        except RuntimeError:  # the loop is closed: the process is ending
            pass

    def _give(self) -> None:
        """Hand the outbox to the newest waiting take (on the loop)."""
        with self._lock:
            self._wake_due = False
            while self._waiting and self._waiting[-1].done():  # cancelled by Ray
                self._waiting.pop()
            if not self._outbox or not self._waiting:
                return
            waiter = self._waiting.pop()
            items, self._outbox = self._outbox, []
            number = next(self._numbers)
        waiter.set_result((OK, number, items))

    async def take(self) -> Answer[T]:
        """The next batch for the reader, or nothing after ``keepalive`` (on the loop)."""
        closed = self._closed
        if closed is not None:
            return GONE, NOTHING, closed
        waiter: asyncio.Future[Answer[T]] = self._loop.create_future()
        self._waiting.append(waiter)
        if len(self._waiting) > MAX_WAITING:
            oldest = self._waiting.popleft()
            if not oldest.done():
                oldest.set_result((OK, NOTHING, []))
        timer = self._loop.call_later(self._keepalive, self._release, waiter)
        self._give()
        try:
            return await waiter
        finally:
            timer.cancel()

    def _release(self, waiter: asyncio.Future[Answer[T]]) -> None:
        if not waiter.done():
            try:
                self._waiting.remove(waiter)
            except ValueError:
                pass
            waiter.set_result((OK, NOTHING, []))

    def close(self, reason: str) -> None:
        """Every take from now on (and every waiting one) answers GONE (any thread)."""
        with self._lock:
            if self._closed is not None:
                return
            self._closed = reason
            self._outbox = []
        try:
            self._loop.call_soon_threadsafe(self._release_all)
        except RuntimeError:  # the loop is closed: nobody waits
            pass

    def _release_all(self) -> None:
        waiting, self._waiting = self._waiting, collections.deque()
        reason = self._closed or ""
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result((GONE, NOTHING, reason))
