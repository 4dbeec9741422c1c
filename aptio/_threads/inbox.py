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

Idle spin (opt-in, :mod:`aptio._threads.idle_spin`): a drain that served a lone item and left
the deque empty, with no drain due, keeps ``_wake_due`` set and schedules ``_idle`` instead
(it runs after the callbacks the batch made ready: a Task the batch woke takes its step
first). ``_idle`` sets ``_spinning`` (producers now poke the waiter), polls without the GIL
until poked or out of budget, clears both flags and re-reads the deque: an item appended
before that re-read is drained, one appended after it finds ``_wake_due`` False and
schedules a drain. A poke only ends the poll early; a missed or late one delays an item by
at most the budget, never loses it. While ``_idle`` is scheduled but not running, an item
waits for it (``_wake_due``).

On 3.11 the inboxes of apartment loops are :class:`aptio._threads.ordering_311.OrderedInbox`,
which also keeps calls in order behind Tasks that have not taken their first step.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import threading
from collections.abc import Sequence
from typing import Final, Protocol, TypeVar

from mypy_extensions import mypyc_attr

from .role import set_thread_loop
from .thread_table import bind_to_thread, thread_id, unbind_from_thread

__all__ = ["BATCH_LIMIT", "IdleWaiter", "Inbox", "Item", "fail_all", "install_loop_inbox",
           "loop_inbox"]

#: Fairness: one drain runs at most this many items, then yields to the loop's other callbacks
#: (I/O, timers, tasks) and continues in the next iteration.
BATCH_LIMIT: Final = 256


class Item(Protocol):
    """Something an inbox delivers on its loop's thread."""

    def _deliver(self) -> bool:
        """Run on the loop's thread. True (3.11 only) says a Task was made that has not taken
        its first step: see :mod:`aptio._threads.ordering_311`."""
        ...

    def _starts_as_task(self) -> bool:
        """True if delivering this item only makes a Task, whose code runs in a later step."""
        ...

    def _fail_undelivered(self) -> None:
        """The inbox closed before the item was delivered: fail it (any thread)."""
        ...


_ItemT = TypeVar("_ItemT", bound=Item)


class IdleWaiter(Protocol):
    """An idle spin's native half (``aptio/_threads/idle_spin.c``)."""

    def wait(self) -> bool:
        """Poll without the GIL until poked (True) or out of budget (False)."""
        ...

    def poke(self) -> None:
        """End the current ``wait`` early (any thread)."""
        ...


# Compiled, Python subclasses need leave (the benchmark's reference transport is one).
@mypyc_attr(allow_interpreted_subclasses=True)
class Inbox:
    """The queue of work for one event loop, drained in batches on that loop's thread."""

    __slots__ = ("_closed", "_context", "_idle_waiter", "_queue", "_spinning", "_wake_due",
                 "loop", "thread_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int | None = None) -> None:
        self.loop = loop
        self.thread_id = threading.get_ident() if thread_id is None else thread_id
        self._queue: collections.deque[Item] = collections.deque()
        self._wake_due = False
        self._closed = False
        # Drains run in the inbox's own context. (call_soon_threadsafe would otherwise copy the
        # *poster's* context, leaking its context variables -- the current call, the neutral
        # apartment marker -- into the target thread.)
        self._context = contextvars.Context()
        #: The idle spin's waiter (None: off), and whether the consumer is polling it now.
        self._idle_waiter: IdleWaiter | None = None
        self._spinning = False

    def spin_when_idle(self, waiter: IdleWaiter | None) -> None:
        """Poll ``waiter`` after each drain that served a lone item and emptied the deque
        (None: never); call it before the loop runs."""
        self._idle_waiter = waiter

    @property
    def closed(self) -> bool:
        return self._closed

    def post(self, item: Item) -> None:
        """Queue ``item`` for the loop's thread. Any thread; never blocks."""
        self._queue.append(item)
        self._wake_threadsafe()

    def post_local(self, item: Item) -> None:
        """Queue ``item`` from the loop's own thread (no self-pipe write needed)."""
        self._queue.append(item)
        self._wake_local()

    def post_first_local(self, items: Sequence[Item]) -> None:
        """Queue ``items``, in order, ahead of everything queued (from the loop's own thread:
        calls held back that arrived before the ones waiting now)."""
        if not items:
            return
        self._queue.extendleft(reversed(items))
        self._wake_local()

    def post_first(self, items: Sequence[Item]) -> None:
        """Queue ``items``, in order, ahead of everything queued (any thread: calls a test's
        hold released, which must go before anything sent after the release; a drain running
        meanwhile takes them first, as the deque's ends are atomic)."""
        if not items:
            return
        self._queue.extendleft(reversed(items))
        self._wake_threadsafe()

    def _wake_threadsafe(self) -> None:
        """After queueing from any thread: one drain scheduled per batch (``_wake_due``)."""
        if not self._wake_due:
            self._wake_due = True
            try:
                self.loop.call_soon_threadsafe(self._drain, context=self._context)
            except RuntimeError:  # the loop is closed: nobody will ever drain
                self._closed = True
        elif self._spinning:
            waiter = self._idle_waiter
            if waiter is not None:
                waiter.poke()
        if self._closed:
            self._sweep()

    def _wake_local(self) -> None:
        """After queueing from the loop's own thread (no self-pipe write needed)."""
        if not self._wake_due:
            self._wake_due = True
            self.loop.call_soon(self._drain, context=self._context)
        if self._closed:
            self._sweep()

    def _drain(self) -> None:
        self._wake_due = False
        queue = self._queue
        budget = BATCH_LIMIT
        while queue and budget:
            budget -= 1
            queue.popleft()._deliver()
        self._continue_later(BATCH_LIMIT - budget)

    def _continue_later(self, delivered: int) -> None:
        """After a drain that delivered ``delivered`` items: schedule the next drain if items
        are left over (the batch limit was reached); with nothing left and no drain due, the
        idle spin if one is asked for and the drain served a lone item. (Items that come
        several at a time gather while the loop sleeps: a spin, ending at the first of them,
        would only split them into smaller batches, each paying for the interpreter lock.)"""
        if self._wake_due:
            return
        if self._queue:
            self._wake_due = True
            self.loop.call_soon(self._drain, context=self._context)
        elif delivered == 1 and self._idle_waiter is not None and not self._closed:
            self._wake_due = True
            self.loop.call_soon(self._idle, context=self._context)

    def _idle(self) -> None:
        """The idle spin (see the module docstring), then a drain of what arrived."""
        waiter = self._idle_waiter
        self._spinning = True
        try:
            if waiter is not None and not self._queue and not self._closed:
                waiter.wait()
        finally:
            self._spinning = False
            self._wake_due = False
        if self._queue:
            self._drain()

    def idle(self) -> bool:
        """True (on the loop's thread) if no item waits: work arriving on this thread may run
        at once without overtaking one."""
        return not self._queue

    def hold_until_next_iteration(self) -> None:
        """3.11 only (see :class:`~aptio._threads.ordering_311.OrderedInbox`); on 3.12+ no
        item's delivery leaves a Task waiting for its first step."""

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


#: The inbox of the loop each thread runs (or last ran), by thread id: a table of
#: :mod:`aptio._threads.thread_table` (an entry only for a live thread, set by that thread).
_thread_inboxes: Final[dict[object, Inbox]] = {}
_thread_inbox_end: Final = threading.local()


def loop_inbox(loop: asyncio.AbstractEventLoop) -> Inbox:
    """The inbox of ``loop``, the loop running on the calling thread (made on first use).

    An STA installs its own inbox with :func:`install_loop_inbox`; any other loop (a plain
    thread's ``asyncio.run``, an MTA worker's private loop) gets one when it first awaits a call.
    """
    inbox = _thread_inboxes.get(thread_id())
    if inbox is None or inbox.loop is not loop:
        inbox = Inbox(loop)
        bind_to_thread(_thread_inboxes, inbox, _thread_inbox_end)
    return inbox


def install_loop_inbox(inbox: Inbox | None) -> None:
    """Bind the calling thread to an apartment's loop and its inbox (None: unbind). Only
    apartments do this, for a loop that stays the thread's until they unbind it, so the thread
    also counts as bound to that loop (:func:`aptio._threads.role.set_thread_loop`)."""
    if inbox is not None:
        bind_to_thread(_thread_inboxes, inbox, _thread_inbox_end)
    else:
        unbind_from_thread(_thread_inboxes, _thread_inbox_end)
    set_thread_loop(inbox.loop if inbox is not None else None)
