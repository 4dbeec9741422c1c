"""Single-threaded apartments: an event loop on one dedicated thread (or the adopted main one).

Lifecycle (modelled on a blocking portal and ``asyncio.Runner``): NEW -> RUNNING -> CLOSING ->
CLOSED. The loop thread signals readiness through its ``started`` event; ``shutdown`` marks the
apartment closing at once (new calls fail), then on the loop thread fails the queued calls,
gives running calls the drain timeout, cancels the rest (their callers get DisconnectedError),
cancels every other task, closes the loop and exits; the caller joins the thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any

from .._admission.message_filter import MessageFilter
from .._call.context import set_thread_apartment
from .._call.contract import CallRecord, Releasable
from .._call.unretrieved import log_error
from .._sync.event import Event
from .._threads.inbox import IdleWaiter, Inbox, install_loop_inbox
from .._threads.loops import EAGER_TASKS, running_loop
from .._threads.ordering_311 import InlineOrder
from .._values.enums import ApartmentKind
from .base import Apartment, Owner, ReleaseItem
from .input_hold import InputHold
from .loop_thread import LoopThread, apartment_inbox

__all__ = ["STA"]


class STA(Apartment):
    """A single-threaded apartment: its objects run on one thread, in one event loop, and
    interleave only at ``await`` points."""

    # Not `_thread`: compiled with mypyc, that attribute becomes the C field `__thread`, a
    # compiler keyword.
    __slots__ = ("_inbox", "_inline_order", "_input_hold", "_loop", "_loop_thread", "_os_thread",
                 "_stop_task", "_stopped", "_thread_id")

    def __init__(self, owner: Owner, kind: ApartmentKind, name: str,
                 apartment_id: str | None = None) -> None:
        super().__init__(owner, kind, name, apartment_id)
        self._thread_bound = True  # see ApartmentContract
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: Inbox | None = None
        self._loop_thread: LoopThread | None = None  # None for the adopted main STA
        self._os_thread: threading.Thread | None = None
        self._thread_id = 0
        self._stopped = Event()
        self._stop_task: asyncio.Task[None] | None = None
        #: 3.11 only: keeps inline calls in order behind Tasks' first steps.
        self._inline_order: InlineOrder | None = None
        #: Holds incoming calls while an input-synchronized call of this STA is out.
        self._input_hold = InputHold(name, self._input_sync_active, self._run_on_thread,
                                     self._requeue)

    def _bind_loop(self, loop: asyncio.AbstractEventLoop, inbox: Inbox) -> None:
        self._loop = loop
        self._inbox = inbox
        self._post_inbox = inbox
        if not EAGER_TASKS:
            self._inline_order = InlineOrder(loop)  # 3.11

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def adopt(cls, owner: Owner, loop: asyncio.AbstractEventLoop) -> STA:
        """Make the running loop's thread the main STA."""
        sta = cls(owner, ApartmentKind.MAIN_STA, "main STA", "main")
        sta._os_thread = threading.current_thread()
        sta._thread_id = threading.get_ident()
        sta._bind_loop(loop, apartment_inbox(loop, sta._thread_id))
        install_loop_inbox(sta._inbox)
        set_thread_apartment(sta)
        return sta

    @classmethod
    async def spawn(cls, owner: Owner, name: str, use_uvloop: bool | None,
                    idle_waiter: IdleWaiter | None = None) -> STA:
        """Start an STA on a new thread; returns once its loop runs. ``idle_waiter``: its
        inbox's idle spin (see :mod:`aptio._threads.idle_spin`), None for none."""
        sta = cls(owner, ApartmentKind.STA, name)
        loop_thread = LoopThread(sta, name, use_uvloop, sta._loop_exited, idle_waiter)
        sta._loop_thread = loop_thread
        sta._bind_loop(loop_thread.loop, loop_thread.inbox)
        sta._os_thread = loop_thread.thread
        loop_thread.start()
        await loop_thread.started.wait()
        sta._thread_id = loop_thread.inbox.thread_id
        return sta

    async def shutdown(self, timeout: float | None = None) -> None:
        self._begin_shutdown(timeout)
        if self._is_current():
            if self._kind is ApartmentKind.MAIN_STA:
                task = self._stop_task
                if task is not None and task is not asyncio.current_task():
                    await asyncio.shield(task)
            # Inside a worker STA the stop runs once this call returns; the runtime joins us.
            return
        await self._stopped.wait()
        if self._loop_thread is not None:
            await self._loop_thread.stopped.wait()
            self._loop_thread.join()
        self._owner.forget(self)

    def _begin_shutdown(self, timeout: float | None) -> None:
        if self._closing:
            return
        self._closing = True  # from here on, new calls raise DisconnectedError at once
        loop = self._loop
        assert loop is not None
        if running_loop() is loop:
            self._spawn_stop(timeout)
        else:
            try:
                loop.call_soon_threadsafe(self._spawn_stop, timeout,
                                          context=contextvars.Context())
            except RuntimeError:  # the loop is already closed
                self._stopped.set()

    def _spawn_stop(self, timeout: float | None) -> None:
        assert self._loop is not None
        self._stop_task = self._loop.create_task(self._stop_sequence(timeout))

    async def _stop_sequence(self, timeout: float | None) -> None:
        """On the loop thread: drain running calls, then stop the loop thread (a worker STA)
        or unbind the thread (the main STA, whose loop belongs to its owner)."""
        try:
            self._input_hold.fail_all()  # held calls fail as queued calls do
            self._fail_held_calls()
            await self._drain(timeout)
        finally:
            if self._loop_thread is not None:
                self._loop_thread.stop()
            else:
                set_thread_apartment(None)
                install_loop_inbox(None)
                assert self._inbox is not None
                self._inbox.close()  # a call that slipped in fails; awaits here still wake
                self._stopped.set()

    def _loop_exited(self) -> None:
        self._input_hold.fail_all()
        self._fail_held_calls()
        super()._loop_exited()
        self._stopped.set()

    # ------------------------------------------------------------------ input synchronization

    def _begin_input_sync(self, call: CallRecord[Any]) -> None:
        self._input_hold.begin(call)

    def _input_sync_active(self, active: bool) -> None:
        self._update_screening()

    def _update_screening(self) -> None:
        super()._update_screening()
        self._screening = self._screening or self._input_hold.active

    def _screen(self, call: CallRecord[Any]) -> bool:
        if self._input_hold.active:
            return self._input_hold.screen(call)
        return super()._screen(call)

    def _run_on_thread(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._thread_id:
            fn()
        elif self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(fn)
            except RuntimeError:  # the loop is closed: nothing is held any more
                pass

    def _requeue_held(self, calls: list[CallRecord[Any]]) -> None:
        inbox = self._inbox
        if inbox is None:
            for call in calls:
                call._fail_undelivered()
        elif threading.get_ident() == self._thread_id:
            inbox.post_first_local(calls)
        else:  # at once: a call sent after the release must not overtake them
            inbox.post_first(calls)

    def _requeue(self, calls: list[CallRecord[Any]]) -> None:
        inbox = self._inbox
        if inbox is None:
            for call in calls:
                call._fail_undelivered()
        else:
            inbox.post_first_local(calls)

    def set_message_filter(self, message_filter: MessageFilter | None) -> MessageFilter | None:
        if message_filter is not None:
            for name in ("handle_incoming_call", "retry_rejected_call"):
                if not callable(getattr(message_filter, name, None)):
                    raise TypeError(
                        f"a message filter needs a {name}() method; subclass aptio.MessageFilter"
                    )
        previous, self._message_filter = self._message_filter, message_filter
        self._update_screening()
        return previous

    # ------------------------------------------------------------------ routing

    def _is_current(self) -> bool:
        return threading.get_ident() == self._thread_id

    def _post(self, call: CallRecord[Any]) -> None:
        self._inbox.post(call)  # type: ignore[union-attr]  # set before the STA is reachable

    def _run_here(self, call: CallRecord[Any]) -> None:
        order = self._inline_order
        if order is None:
            call._deliver_inline()
        elif not order.defers(call) and call._deliver_inline():  # 3.11
            order.task_started()

    def _admit(self, call: CallRecord[Any]) -> None:
        inbox = self._inbox
        if inbox is None:
            call._fail_undelivered()
        elif threading.get_ident() == self._thread_id:
            inbox.post_local(call)
        else:
            inbox.post(call)

    def _queued_calls(self) -> list[CallRecord[Any]]:
        order = self._inline_order
        deferred = [call for call in order.waiting() if isinstance(call, CallRecord)] \
            if order is not None else []
        return (self._calls_waiting_in(self._inbox) + deferred + self._input_hold.waiting()
                + self._held_calls())

    def _report_error(self, context: dict[str, Any]) -> None:
        """To this STA's loop exception handler, on its thread (the logger once it is gone)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._closing:
            log_error(context)
        elif threading.get_ident() == self._thread_id:
            loop.call_exception_handler(context)
        else:
            try:
                loop.call_soon_threadsafe(loop.call_exception_handler, context)
            except RuntimeError:  # closed meanwhile
                log_error(context)

    def _release(self, holder: Releasable) -> None:
        inbox = self._inbox
        if inbox is None or self._closing or threading.get_ident() == self._thread_id:
            holder.take_object()
            return
        inbox.post(ReleaseItem(holder.take_object()))
