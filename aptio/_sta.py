"""Single-threaded apartments: an event loop on one dedicated thread (or the adopted main one).

Lifecycle (modelled on a blocking portal and ``asyncio.Runner``): NEW -> RUNNING -> CLOSING ->
CLOSED. The loop thread signals readiness through ``_started``; ``shutdown`` marks the apartment
closing at once (new calls fail), then on the loop thread fails the queued calls, gives running
calls the drain timeout, cancels the rest (their callers get DisconnectedError), cancels every
other task, closes the loop and exits; the caller joins the thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import threading
from typing import TYPE_CHECKING, Any

from ._apartment import Apartment
from ._call import EAGER_TASKS, Call
from ._kinds import ApartmentKind
from ._loop_thread import LoopThread
from ._loops import running_loop
from ._signal import OneShot
from ._state import set_thread_apartment
from ._transport import Inbox, install_loop_inbox

if TYPE_CHECKING:
    from ._filter import MessageFilter
    from ._proxy import Stub
    from ._runtime import Runtime

__all__ = ["STA"]

class _Release:
    """An object whose last proxy died on another thread, to be dropped on its home thread."""

    __slots__ = ("bound", "obj")

    def __init__(self, stub: Stub) -> None:
        # Take the references over from the stub (the object, and its bound methods, which
        # hold it too), so no other frame holds them meanwhile.
        self.obj: object | None = stub.obj
        self.bound: dict[str, Any] | None = stub.bound
        stub.obj = None
        stub.bound = {}

    def _deliver(self) -> bool:
        self.obj = self.bound = None
        return False

    def _starts_as_task(self) -> bool:
        return False  # dropping the object runs its finalizer now

    def _fail_undelivered(self) -> None:
        self.obj = self.bound = None


class STA(Apartment):
    """A single-threaded apartment: its objects run on one thread, in one event loop, and
    interleave only at ``await`` points."""

    _thread_bound = True

    __slots__ = (
        "_deferred",
        "_inbox",
        "_loop",
        "_loop_thread",
        "_pump_handle",
        "_reference",
        "_stop_task",
        "_stopped",
        "_task_pending",
        "_thread",
        "_thread_id",
    )

    def __init__(self, runtime: Runtime, kind: ApartmentKind, name: str) -> None:
        super().__init__(runtime, kind, name)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: Inbox | None = None
        self._loop_thread: LoopThread | None = None  # None for the adopted main STA
        self._thread: threading.Thread | None = None
        self._thread_id = 0
        self._stopped = OneShot()
        self._stop_task: asyncio.Task[None] | None = None
        # 3.11 only: inline calls waiting for an earlier call's Task to take its first step.
        self._deferred: collections.deque[Call[Any]] = collections.deque()
        self._task_pending = False
        self._pump_handle: asyncio.Handle | None = None
        #: The naive per-call ``run_coroutine_threadsafe`` transport (kept for comparison).
        self._reference = runtime.reference_transport

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def adopt(cls, runtime: Runtime, loop: asyncio.AbstractEventLoop) -> STA:
        """Make the running loop's thread the main STA."""
        sta = cls(runtime, ApartmentKind.MAIN_STA, "main STA")
        sta._loop = loop
        sta._thread = threading.current_thread()
        sta._thread_id = threading.get_ident()
        sta._inbox = Inbox(loop, sta._thread_id)
        sta._post_inbox = None if sta._reference else sta._inbox
        install_loop_inbox(sta._inbox)
        set_thread_apartment(sta)
        return sta

    @classmethod
    async def spawn(cls, runtime: Runtime, name: str, use_uvloop: bool | None) -> STA:
        """Start an STA on a new thread; returns once its loop runs."""
        sta = cls(runtime, ApartmentKind.STA, name)
        loop_thread = LoopThread(sta, name, use_uvloop)
        sta._loop_thread = loop_thread
        sta._loop = loop_thread.loop
        sta._inbox = loop_thread.inbox
        sta._post_inbox = None if sta._reference else sta._inbox
        sta._thread = loop_thread.thread
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
        self._runtime._forget(self)

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
        super()._loop_exited()
        self._stopped.set()

    def set_message_filter(self, message_filter: MessageFilter | None) -> MessageFilter | None:
        if message_filter is not None:
            for name in ("handle_incoming_call", "retry_rejected_call"):
                if not callable(getattr(message_filter, name, None)):
                    raise TypeError(
                        f"a message filter needs a {name}() method; subclass aptio.MessageFilter"
                    )
        previous, self._message_filter = self._message_filter, message_filter
        return previous

    # ------------------------------------------------------------------ routing

    def _is_current(self) -> bool:
        return threading.get_ident() == self._thread_id

    def _post(self, call: Call[Any]) -> None:
        if self._reference:
            self._post_reference(call)
            return
        self._inbox.post(call)  # type: ignore[union-attr]  # set before the STA is reachable

    def _post_reference(self, call: Call[Any]) -> None:
        """The naive transport kept for comparison: one ``run_coroutine_threadsafe`` (one Task,
        one self-pipe write) per call."""
        assert self._loop is not None
        coro = call._run_as_task()
        try:
            asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:
            coro.close()
            call._fail_undelivered()

    def _run_here(self, call: Call[Any]) -> None:
        if EAGER_TASKS:
            call._start_inline()
            return
        # 3.11: a new Task takes its first step only in a later loop iteration. An async call
        # may start right behind it (the first steps keep their order); any other call queues
        # in ``_deferred`` meanwhile, and ``_pump`` starts those in order once the steps ran.
        # Invariant: while ``_deferred`` is non-empty or ``_task_pending`` is set, exactly one
        # ``_pump`` is scheduled (``_pump_handle``), and it runs after the newest Task's first
        # step.
        if self._deferred or (self._task_pending and not call._starts_as_task()):
            self._deferred.append(call)
        elif call._start_inline():
            self._schedule_pump()

    def _schedule_pump(self) -> None:
        """Schedule the one ``_pump`` behind the newest Task's first step (replacing one that
        would run before it)."""
        handle = self._pump_handle
        if handle is not None:
            handle.cancel()
        self._task_pending = True
        assert self._loop is not None
        self._pump_handle = self._loop.call_soon(self._pump, context=contextvars.Context())

    def _pump(self) -> None:
        self._task_pending = False
        self._pump_handle = None
        deferred = self._deferred
        while deferred:
            if deferred.popleft()._start():  # fails the call instead if shutdown began
                while deferred and deferred[0]._starts_as_task():  # may start right behind it
                    deferred.popleft()._start()
                self._schedule_pump()
                return

    def _admit(self, call: Call[Any]) -> None:
        inbox = self._inbox
        if inbox is None:
            call._fail_undelivered()
        elif threading.get_ident() == self._thread_id:
            inbox.post_local(call)
        else:
            inbox.post(call)

    def _queued_calls(self) -> list[Call[Any]]:
        return self._calls_waiting_in(self._inbox) + list(self._deferred)

    def _release(self, stub: Stub) -> None:
        inbox = self._inbox
        if inbox is None or self._closing or threading.get_ident() == self._thread_id:
            stub.drop_object()
            return
        inbox.post(_Release(stub))

