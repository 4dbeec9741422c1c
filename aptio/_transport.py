"""The cross-thread hot path: one inbox per event loop, one wake-up per batch.

Any thread posts work items (call requests, replies) to a loop's inbox; the loop drains them in
one callback. A post wakes the loop only when no drain is already due, so a burst of N posts
costs one ``call_soon_threadsafe`` (one self-pipe write) instead of N.

Lock-free under the GIL; the wake-up invariant:
  producer: (A) append item, (B) read ``_wake_due``; if False, set it and schedule a drain.
  consumer: (C) clear ``_wake_due``, (D) pop every item.
  If B reads True, B happened before C, so A happened before D and D sees the item. If B reads
  False, the producer schedules a drain itself. Two producers may both schedule one: a drain of
  an empty deque is harmless, so a wake-up is never lost, only occasionally doubled.
Close invariant: ``close()`` sets ``_closed`` and then sweeps; a producer re-reads ``_closed``
after appending and sweeps too, so an item posted during close is failed, never stranded.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import os
import threading
from typing import Protocol, TypeVar

__all__ = [
    "BATCHED",
    "REFERENCE",
    "Inbox",
    "Item",
    "fail_all",
    "install_loop_inbox",
    "loop_inbox",
    "transport_mode",
]

BATCHED = "batched"
REFERENCE = "reference"


def transport_mode() -> str:
    """``batched`` (default) or ``reference`` (plain ``run_coroutine_threadsafe``, per call),
    chosen by the ``APTIO_TRANSPORT`` environment variable or ``aptio.run(transport=...)``."""
    mode = os.environ.get("APTIO_TRANSPORT", BATCHED)
    if mode not in (BATCHED, REFERENCE):
        raise ValueError(f"APTIO_TRANSPORT must be {BATCHED!r} or {REFERENCE!r}, not {mode!r}")
    return mode


class Item(Protocol):
    """Something an inbox delivers on its loop's thread."""

    def _deliver(self) -> bool:
        """Run on the loop's thread. True asks the drain to stop the batch here, so the next
        item starts after a loop iteration (a Task that must take its first step first)."""
        ...

    def _starts_as_task(self) -> bool:
        """True if delivering this item only makes a Task, whose code runs in a later step:
        it may follow a Task that has not taken its first step yet (their steps keep order)."""
        ...

    def _fail_undelivered(self) -> None: ...


_ItemT = TypeVar("_ItemT", bound=Item)


class Inbox:
    """The queue of work for one event loop, drained in batches on that loop's thread."""

    __slots__ = ("_batch_limit", "_closed", "_context", "_queue", "_resume_due", "_wake_due",
                 "loop", "thread_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int | None = None) -> None:
        self.loop = loop
        self.thread_id = threading.get_ident() if thread_id is None else thread_id
        self._queue: collections.deque[Item] = collections.deque()
        self._wake_due = False
        self._closed = False
        self._resume_due = False
        # Drains run in the inbox's own context. (call_soon_threadsafe would otherwise copy the
        # *poster's* context, leaking its context variables -- the current call, the neutral
        # apartment marker -- into the target thread.)
        self._context = contextvars.Context()
        # Fairness: one drain runs at most this many items, then yields to the loop's other
        # callbacks (I/O, timers, tasks) and continues in the next iteration.
        self._batch_limit = 256

    @property
    def closed(self) -> bool:
        return self._closed

    def post(self, item: Item) -> None:
        """Queue ``item`` for the loop's thread. Any thread; never blocks."""
        self._queue.append(item)
        if not self._wake_due:
            self._wake_due = True
            try:
                self.loop.call_soon_threadsafe(self._drain, context=self._context)
            except RuntimeError:  # the loop is closed: nobody will ever drain
                self._closed = True
        if self._closed:
            self._sweep()

    def post_local(self, item: Item) -> None:
        """Queue ``item`` from the loop's own thread (no self-pipe write needed)."""
        self._queue.append(item)
        if not self._wake_due:
            self._wake_due = True
            self.loop.call_soon(self._drain, context=self._context)
        if self._closed:
            self._sweep()

    def _drain(self) -> None:
        if self._resume_due:
            return  # a drain is scheduled behind a new Task's first step; items wait for it
        self._wake_due = False
        queue = self._queue
        budget = self._batch_limit
        while queue and budget:
            budget -= 1
            if queue.popleft()._deliver():
                # An async call started a Task that has not taken its first step (3.11). Calls
                # that also start as Tasks may follow at once (their first steps run after it,
                # in order); anything that would run code now must wait for those steps.
                self._start_tasks(queue, budget)
                # A drain already in the ready queue may run before those steps, so it is
                # disarmed (``_resume_due``) until ``_resume`` runs behind them.
                self._resume_due = True
                self.loop.call_soon(self._resume, context=self._context)
                return
        if queue and not self._wake_due:
            self._wake_due = True
            self.loop.call_soon(self._drain, context=self._context)

    def _start_tasks(self, queue: collections.deque[Item], budget: int) -> None:
        """Deliver the items at the head of the queue that only start Tasks (3.11)."""
        while queue and budget:
            item = queue.popleft()
            if not item._starts_as_task():
                queue.appendleft(item)  # it stays first; a sweep during close still fails it
                if self._closed:
                    self._sweep()
                return
            budget -= 1
            item._deliver()

    def _resume(self) -> None:
        self._resume_due = False
        self._drain()

    def waiting(self) -> list[Item]:
        """A snapshot of the items not delivered yet (for diagnostics; any thread)."""
        return list(self._queue)

    def close(self) -> None:
        """Refuse further items and fail the queued ones (on the loop's thread, at shutdown)."""
        self._closed = True
        self._sweep()

    def _sweep(self) -> None:
        fail_all(self._queue)


def fail_all(queue: collections.deque[_ItemT]) -> None:
    """Pop and fail every item of ``queue``, also those other threads append meanwhile (popleft
    is atomic, so each item is failed exactly once, by whichever thread pops it)."""
    while True:
        try:
            item = queue.popleft()
        except IndexError:
            return
        item._fail_undelivered()


class _ThreadInbox(threading.local):
    inbox: Inbox | None = None


_thread_inbox = _ThreadInbox()


def loop_inbox(loop: asyncio.AbstractEventLoop) -> Inbox:
    """The inbox of ``loop``, the loop running on the calling thread (made on first use).

    An STA installs its own inbox with :func:`install_loop_inbox`; any other loop (a plain
    thread's ``asyncio.run``, an MTA worker's private loop) gets one when it first awaits a call.
    """
    inbox = _thread_inbox.inbox
    if inbox is None or inbox.loop is not loop:
        inbox = Inbox(loop)
        _thread_inbox.inbox = inbox
    return inbox


def install_loop_inbox(inbox: Inbox | None) -> None:
    _thread_inbox.inbox = inbox
