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
import threading
from typing import TYPE_CHECKING, Any

from ._apartment import Apartment
from ._call import EAGER_TASKS, Call
from ._exceptions import DisconnectedError
from ._kinds import ApartmentKind
from ._loops import loop_factory, running_loop
from ._signal import OneShot
from ._state import set_thread_apartment
from ._transport import Inbox, install_loop_inbox

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["STA"]

#: Running calls that ignore cancellation get this long after the drain timeout before the
#: apartment gives up waiting for them (their callers have already been failed).
_CANCEL_GRACE = 1.0


class _Release:
    """An object whose last proxy died on another thread, to be dropped on its home thread."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj: object | None = obj

    def _deliver(self) -> bool:
        self.obj = None
        return False

    def _fail_undelivered(self) -> None:
        self.obj = None


class STA(Apartment):
    """A single-threaded apartment: its objects run on one thread, in one event loop, and
    interleave only at ``await`` points."""

    __slots__ = (
        "_deferred",
        "_inbox",
        "_loop",
        "_start_error",
        "_started",
        "_stop_future",
        "_stop_task",
        "_stopped",
        "_task_pending",
        "_thread",
        "_thread_id",
        "_use_uvloop",
    )

    def __init__(self, runtime: Runtime, kind: ApartmentKind, name: str,
                 use_uvloop: bool | None) -> None:
        super().__init__(runtime, kind, name)
        self._use_uvloop = use_uvloop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: Inbox | None = None
        self._thread: threading.Thread | None = None
        self._thread_id = 0
        self._started = OneShot()
        self._stopped = OneShot()
        self._start_error: BaseException | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._stop_future: asyncio.Future[None] | None = None
        # 3.11 only: inline calls waiting for an earlier call's Task to take its first step.
        self._deferred: collections.deque[Call[Any]] = collections.deque()
        self._task_pending = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def adopt(cls, runtime: Runtime, loop: asyncio.AbstractEventLoop) -> STA:
        """Make the running loop's thread the main STA."""
        sta = cls(runtime, ApartmentKind.MAIN_STA, "main STA", None)
        sta._bind(loop)
        sta._thread = threading.current_thread()
        sta._started.set()
        return sta

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread_id = threading.get_ident()
        self._inbox = Inbox(loop, self._thread_id)
        install_loop_inbox(self._inbox)
        set_thread_apartment(self)

    def _unbind(self) -> None:
        set_thread_apartment(None)
        install_loop_inbox(None)

    async def start(self) -> None:
        """Start the loop thread; returns once the loop runs."""
        thread = threading.Thread(target=self._thread_main, name=f"aptio {self._name}",
                                  daemon=True)
        self._thread = thread
        thread.start()
        await self._started.wait()
        if self._start_error is not None:
            thread.join()
            raise self._start_error

    def _thread_main(self) -> None:
        try:
            loop = loop_factory(self._use_uvloop)()
        except BaseException as error:
            self._start_error = error
            self._started.set()
            self._stopped.set()
            return
        try:
            asyncio.set_event_loop(loop)
            self._bind(loop)
            loop.run_until_complete(self._serve())
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            self._closing = True
            if self._inbox is not None:
                self._inbox.close()
            self._unbind()
            asyncio.set_event_loop(None)
            loop.close()
            self._started.set()  # a start that failed half-way still wakes its waiter
            self._stopped.set()

    async def _serve(self) -> None:
        stop = asyncio.get_running_loop().create_future()
        self._stop_task = None
        self._stop_future = stop
        self._started.set()
        await stop

    async def shutdown(self, timeout: float | None = None) -> None:
        self._begin_shutdown(timeout)
        if self._kind is ApartmentKind.MAIN_STA:
            if running_loop() is self._loop:
                task = self._stop_task
                if task is not None and task is not asyncio.current_task():
                    await asyncio.shield(task)
                return
            await self._stopped.wait()
            return
        if threading.get_ident() == self._thread_id:
            return  # from inside: the stop runs once this call returns; the runtime joins us
        await self._stopped.wait()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._runtime._forget(self)

    def shutdown_blocking(self, timeout: float | None = None) -> None:
        """``shutdown`` for a plain thread with no event loop."""
        self._begin_shutdown(timeout)
        self._stopped.wait_blocking()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._runtime._forget(self)

    def _begin_shutdown(self, timeout: float | None) -> None:
        if self._closing:
            return
        self._closing = True  # from here on, new calls raise DisconnectedError at once
        loop = self._loop
        if loop is None:
            self._stopped.set()
            return
        if running_loop() is loop:
            self._stop_task = loop.create_task(self._stop_sequence(timeout))
        else:
            try:
                loop.call_soon_threadsafe(self._spawn_stop, timeout)
            except RuntimeError:  # the loop is already closed
                self._stopped.set()

    def _spawn_stop(self, timeout: float | None) -> None:
        assert self._loop is not None
        self._stop_task = self._loop.create_task(self._stop_sequence(timeout))

    async def _stop_sequence(self, timeout: float | None) -> None:
        """On the loop thread: fail queued calls, drain running ones, then stop."""
        try:
            # Calls still queued fail as the inbox delivers them (``_closing`` is set); replies
            # keep flowing, so running calls can still finish their own outgoing calls.
            pending = {call._task for call in self._running if call._task is not None}
            current = asyncio.current_task()
            pending.discard(current)
            if pending and (timeout is None or timeout > 0):
                await asyncio.wait(pending, timeout=timeout)
            overrunning = [call for call in self._running if call._task is not current]
            for call in overrunning:
                call._disconnect(DisconnectedError(
                    f"{call._method}() was still running when apartment {self._name!r} shut "
                    f"down (drain timeout {timeout} s)"
                ))
            tasks = {call._task for call in overrunning if call._task is not None}
            if tasks:
                await asyncio.wait(tasks, timeout=_CANCEL_GRACE)
        finally:
            if self._kind is ApartmentKind.MAIN_STA:
                self._unbind_main()
            else:
                stop = self._stop_future
                if stop is not None and not stop.done():
                    stop.set_result(None)

    def _unbind_main(self) -> None:
        if threading.get_ident() == self._thread_id:
            self._unbind()
        self._stopped.set()

    # ------------------------------------------------------------------ routing

    def _is_current(self) -> bool:
        return threading.get_ident() == self._thread_id

    def _post(self, call: Call[Any]) -> None:
        inbox = self._inbox
        assert inbox is not None
        if self._runtime.reference_transport:
            self._post_reference(call)
            return
        inbox.post(call)

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
            call._start()
            return
        # 3.11: a new Task takes its first step only in a later loop iteration. Calls sent
        # after it queue in ``_deferred``, and ``_pump`` (scheduled behind the Task's first
        # step) starts them in order, stopping again after each new Task.
        # Invariant: while ``_deferred`` is non-empty or ``_task_pending`` is set, exactly one
        # ``_pump`` is scheduled, and it runs after the newest Task's first step.
        if self._task_pending or self._deferred:
            self._deferred.append(call)
        elif call._start():
            self._task_pending = True
            assert self._loop is not None
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._task_pending = False
        deferred = self._deferred
        while deferred:
            call = deferred.popleft()
            if self._closing:
                call._fail_undelivered()
            elif call._start():
                self._task_pending = True
                assert self._loop is not None
                self._loop.call_soon(self._pump)
                return

    def _release(self, obj: object) -> None:
        inbox = self._inbox
        if inbox is None or self._closing or threading.get_ident() == self._thread_id:
            return
        inbox.post(_Release(obj))


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on a stopping STA loop (user tasks, waiters) and let it unwind."""
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if task.cancelled():
            continue
        error = task.exception()
        if error is not None:
            loop.call_exception_handler({
                "message": "unhandled exception in a task of a stopping aptio STA",
                "exception": error,
                "task": task,
            })
