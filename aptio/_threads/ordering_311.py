"""Python 3.11 only: keeping calls in order without eager Tasks. Delete this module (and the
branches that pick it, each marked ``3.11``) the day 3.11 support ends.

On 3.12+ a coroutine call's Task takes its first step inside its constructor, so calls start in
the order they arrive. On 3.11 a new Task takes its first step only in a later loop iteration;
a sync call delivered meanwhile would run before it. Three pieces restore the order:

* :class:`OrderedInbox`: after delivering an item that made a Task still waiting for its first
  step, the drain delivers only further items that also just make Tasks (their first steps then
  run after it, in order), and resumes the rest of the batch behind those steps.
* :class:`InlineOrder`: the same for calls an STA runs inline on its own thread: while a Task's
  first step is pending, other inline calls wait in a deque that one pump starts in order.
* :class:`StartGuard`: a Task cancelled before its first step never runs its coroutine; the
  guard then finishes the call (and closes the method's coroutine, so it is not reported as
  never awaited). The call disarms it as its Task starts.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

from .inbox import BATCH_LIMIT, Inbox, Item

__all__ = ["InlineOrder", "OrderedInbox", "StartGuard"]


class OrderedInbox(Inbox):
    """An apartment loop's inbox on 3.11 (see the module docstring)."""

    __slots__ = ("_held", "_resume_due")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int | None = None) -> None:
        super().__init__(loop, thread_id)
        #: A drain is scheduled behind new Tasks' first steps; drains before it do nothing.
        self._resume_due = False
        #: Work delivered outside the inbox left a Task waiting for its first step: until the
        #: loop's next iteration, later work must queue here (behind that step).
        self._held = False

    def idle(self) -> bool:
        return not self._queue and not self._resume_due and not self._held

    def hold_until_next_iteration(self) -> None:
        if not self._held:
            self._held = True
            self.loop.call_soon(self._release_hold, context=self._context)

    def _release_hold(self) -> None:
        self._held = False

    def _drain(self) -> None:
        if self._resume_due:
            return  # a drain is scheduled behind a new Task's first step; items wait for it
        self._wake_due = False
        queue = self._queue
        budget = BATCH_LIMIT
        while queue and budget:
            budget -= 1
            if queue.popleft()._deliver():
                # An async call started a Task that has not taken its first step. Calls that
                # also start as Tasks may follow at once (their first steps run after it, in
                # order); anything that would run code now must wait for those steps.
                self._start_tasks(queue, budget)
                # A drain already in the ready queue may run before those steps, so it is
                # disarmed (``_resume_due``) until ``_resume`` runs behind them.
                self._resume_due = True
                self.loop.call_soon(self._resume, context=self._context)
                return
        self._continue_later(BATCH_LIMIT - budget)

    def _start_tasks(self, queue: collections.deque[Item], budget: int) -> None:
        """Deliver the items at the head of the queue that only start Tasks."""
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


class InlineOrder:
    """An STA's inline calls on 3.11 (see the module docstring).

    Invariant: while ``_deferred`` is non-empty or ``_task_pending`` is set, exactly one
    ``_pump`` is scheduled (``_pump_handle``), and it runs after the newest Task's first step.
    """

    __slots__ = ("_deferred", "_loop", "_pump_handle", "_task_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._deferred: collections.deque[Item] = collections.deque()
        self._task_pending = False
        self._pump_handle: asyncio.Handle | None = None

    def defers(self, call: Item) -> bool:
        """Whether ``call``, about to run inline, must wait for the first steps of the Tasks
        started before it: if so it is queued here (the pump starts it in order) and True is
        returned. If not, the owner starts it at once (its type known to the owner, so no
        lookup by name here) and calls ``task_started`` if that made a Task."""
        if self._deferred or (self._task_pending and not call._starts_as_task()):
            self._deferred.append(call)
            return True
        return False

    def task_started(self) -> None:
        """A call the owner started made a Task that has not taken its first step."""
        self._schedule_pump()

    def waiting(self) -> list[Item]:
        """The calls deferred right now (a snapshot, for diagnostics)."""
        return list(self._deferred)

    def _schedule_pump(self) -> None:
        """Schedule the one ``_pump`` behind the newest Task's first step (replacing one that
        would run before it)."""
        handle = self._pump_handle
        if handle is not None:
            handle.cancel()
        self._task_pending = True
        self._pump_handle = self._loop.call_soon(self._pump, context=contextvars.Context())

    def _pump(self) -> None:
        self._task_pending = False
        self._pump_handle = None
        deferred = self._deferred
        while deferred:
            if deferred.popleft()._deliver():  # fails the call instead if shutdown began
                while deferred and deferred[0]._starts_as_task():  # may start right behind it
                    deferred.popleft()._deliver()
                self._schedule_pump()
                return


class StartGuard:
    """Finishes a call whose Task was cancelled before its first step (see the module)."""

    __slots__ = ("_coro", "_on_unstarted", "_task")

    def __init__(self, coro: Coroutine[Any, Any, Any], on_unstarted: Callable[[], None]) -> None:
        self._coro = coro
        self._on_unstarted = on_unstarted
        self._task: asyncio.Task[None] | None = None

    def arm(self, task: asyncio.Task[None]) -> None:
        self._task = task
        task.add_done_callback(self._fire)

    def disarm(self) -> None:
        """The Task took its first step: its body finishes the call from here on."""
        if self._task is not None:
            self._task.remove_done_callback(self._fire)

    def _fire(self, task: asyncio.Task[None]) -> None:
        self._coro.close()
        self._on_unstarted()
