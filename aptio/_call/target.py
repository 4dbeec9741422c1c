"""The target side of a call: admission, running the method in its apartment, the outcome.

Runs on a thread of the target apartment (an STA's loop thread, an MTA worker, the caller's own
thread for inline and neutral calls), except ``_finish``, ``_disconnect`` and
``_fail_undelivered``, which any thread may call: the state machine of
:mod:`aptio._call.contract` makes each outcome final once.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from .._threads.loops import EAGER_TASKS, running_loop
from .._threads.ordering_311 import StartGuard
from .._values.declarations import CONTAINER_TYPES, SCALAR_TYPES
from .._values.enums import CallType
from .._values.errors import DisconnectedError
from .context import (
    current_call_var,
    neutral_override,
    new_thread_state,
    process_state,
    thread_id,
    thread_state,
    thread_states,
)
from .contract import DONE, PENDING, RUNNING, CallRecord
from .unretrieved import ErrorGuard, log_error

__all__ = ["TargetSide", "cancel_task"]

T = TypeVar("T")

# Enum members as module constants: on 3.11 reading ``CallType.NESTED`` costs ~100 ns.
_NESTED: Final = CallType.NESTED
_TOPLEVEL_CALLPENDING: Final = CallType.TOPLEVEL_CALLPENDING
#: Read on every call's result: a Final alias is a C static where this module is compiled.
_SCALAR_TYPES: Final = SCALAR_TYPES
_CONTAINER_TYPES: Final = CONTAINER_TYPES
_COROUTINE_TYPE: Final = types.CoroutineType

#: This file's names: traceback frames from here are aptio's own, trimmed from errors. Where
#: this module runs compiled, its frames carry the path the build compiled it from.
_THIS_FILES: Final = frozenset((__file__, "aptio/_call/target.py"))


class TargetSide(CallRecord[T]):
    """A call as its target apartment runs it (see the module docstring)."""

    __slots__ = ()

    def _deliver(self) -> bool:
        """Run the call on this thread, which belongs to its apartment (the entry point of the
        inbox and of the apartments' queues). Returns True when a Task was created that has not
        taken its first step (3.11), so that later calls wait. A call that is not PENDING
        (finished by a cancel while queued) is left alone; one queued when shutdown began never
        starts."""
        # The sender's sync calls when the sender runs this call inline (see ``send``): taken
        # once, first, so that if the call is queued below (a gate, a hold) and started later
        # by another thread, that thread does not find them.
        sender_calls = self._sender_calls
        self._sender_calls = None
        if self._state != PENDING:
            return False
        apartment = self._apartment
        if apartment._closing:
            self._fail_undelivered()
            return False
        if self._cancelled:
            self._finish(None, asyncio.CancelledError())
            return False
        if not self._admitted:
            self._admitted = True
            outgoing = apartment._outgoing
            if outgoing:  # the STA waits on outgoing calls: NESTED or TOPLEVEL_CALLPENDING
                self._call_type = (_NESTED if self._causality in outgoing
                                   else _TOPLEVEL_CALLPENDING)
            if (apartment._screening and self._caller is not apartment
                    and not apartment._screen(self)):
                return False  # rejected, or failed by its filter
            gate = self._gate
            if gate is not None and not gate.enter(self, self._policy):
                return False  # queued at the gate: admitted when it frees
        self._state = RUNNING
        if self._is_async:
            return self._start_coroutine(None, sender_calls)
        fn = self._fn  # a typed local: compiled code calls it directly
        assert fn is not None  # set until the call is finished
        calls = sender_calls
        if calls is None:
            try:  # thread_state(), inlined
                calls = thread_states[thread_id()].sync_calls
            except KeyError:
                calls = new_thread_state().sync_calls
        calls.append(self)  # the call the method's code runs in (see ``running_call``)
        kwargs = self._kwargs
        try:
            value = fn(*self._args, **kwargs) if kwargs else fn(*self._args)  # type: ignore[misc]
        except BaseException as error:
            self._finish(None, error)
            return False
        finally:
            calls.pop()
        if type(value) in _SCALAR_TYPES:
            self._finish(value, None)
            return False
        if not _is_coroutine(value):
            self._finish(apartment._marshal_result(value), None)
            return False
        self._is_async = True  # a sync method handed back a coroutine: it runs as one
        return self._start_coroutine(value, calls)

    def _deliver_inline(self) -> bool:
        """``_deliver`` for a call run on the caller's own thread into an STA or MTA object:
        code inside it is no longer in the neutral apartment, even if its caller was."""
        if not process_state.context_marked or neutral_override.get() is None:
            return self._deliver()
        token = neutral_override.set(None)
        try:
            return self._deliver()
        finally:
            neutral_override.reset(token)

    def _start_coroutine(self, coro: Coroutine[Any, Any, Any] | None,
                         calls: list[CallRecord[Any] | None] | None) -> bool:
        """Start the call as a coroutine: ``coro``, or (None) the one its async method makes.
        The coroutine's context carries the call (``current_call_var``, copied into its Task);
        a None pushed on the thread's sync calls (``calls``, when the caller has them) hides
        any enclosing sync call meanwhile."""
        if calls is None:
            calls = thread_state().sync_calls
        calls.append(None)
        token = current_call_var.set(self)
        try:
            if coro is None:
                try:
                    coro = self._fn(*self._args, **self._kwargs)  # type: ignore[misc, arg-type]
                except BaseException as error:
                    self._finish(None, error)
                    return False
            return self._start_task(coro)
        finally:
            current_call_var.reset(token)
            calls.pop()

    def _start_task(self, coro: Coroutine[Any, Any, Any]) -> bool:
        loop = running_loop()
        if loop is None:
            # A thread with no loop (MTA worker, plain thread): MTA rules convert the async
            # call to a synchronous one (COM_SPEC D5), run on the thread's private loop.
            self._apartment._run_blocking(self._drive(coro, None))
            return False
        # Registered before the Task exists: an eager first step may already have sent calls
        # that others can see finish, and diagnostics must then find this call running.
        self._apartment._running.add(self)
        if EAGER_TASKS:
            task: asyncio.Task[None] = asyncio.Task(
                self._drive(coro, None), loop=loop, eager_start=True  # type: ignore[call-arg]
            )
            if task.done():
                return False
            self._task = task  # its first step ran: ``_drive`` finishes the call, whatever
            if self._cancelled:  # a cancel that read ``_task`` as None before we published it
                task.cancel()
            return False
        # 3.11: the Task takes its first step in a later loop iteration (see ordering_311).
        guard = StartGuard(coro, self._never_started)
        task = loop.create_task(self._drive(coro, guard))
        self._task = task
        guard.arm(task)
        if self._cancelled:
            task.cancel()
        return True

    def _drive(self, coro: Coroutine[Any, Any, Any],
               guard: StartGuard | None) -> Coroutine[Any, Any, None]:
        """The body of a coroutine call's Task: once it runs, it finishes the call."""
        return _drive_call(self, coro, guard)

    def _never_started(self) -> None:
        """Its Task was cancelled before its first step (3.11): ``_drive``'s body never ran."""
        if self._state != DONE:
            self._finish(None, asyncio.CancelledError())
        self._task = None  # see ``_drive``

    def _finish(self, value: Any, error: BaseException | None, now: bool = False) -> None:
        """Record the outcome (once) and wake every waiter. Target side, any thread. ``now``:
        the caller is a plain callback of this thread's loop (a connection's reader), so a
        waiter on this loop is woken right here instead of in the loop's next iteration."""
        if self._state == DONE:
            return
        if error is None:
            self._value = value
        else:
            if isinstance(error, asyncio.CancelledError):
                reason = self._disconnect_reason
                if reason is not None:
                    error = reason
            # Keep the method's frames, drop aptio's own (their locals hold this Call, which
            # would make Call -> error -> traceback -> frame -> Call a cycle), from the error
            # too: it is raised with this traceback anyway (``final_outcome``).
            tb = error.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename in _THIS_FILES:
                tb = tb.tb_next
            if tb is not error.__traceback__:
                error.__traceback__ = tb
            self._error_tb = tb
            self._error = error
            if not isinstance(error, asyncio.CancelledError):
                self._guard_error(error)
        # Drop the object and the arguments here, on the target's side: a Call may outlive its
        # result in the caller, and an object's last reference must go on its home thread.
        self._fn = self._args = self._kwargs = None
        self._parent = None  # only needed while it runs (nesting checks); do not pin ancestors
        target = self._target
        if target is not None:
            self._owner = type(target)
            self._target = None
        self._state = DONE
        if self._is_async:  # only calls run as a coroutine are registered in ``_running``
            self._apartment._running.discard(self)
        waiters = self._waiters
        if waiters is not None:  # ``_wake_waiters``, inlined
            if now:
                for waiter in waiters:
                    waiter.notify_now()
            else:
                for waiter in waiters:
                    waiter.notify()
        gate = self._gate
        if gate is not None:
            successor = gate.exit(self)
            if successor is not None:
                successor._apartment._admit(successor)

    def _guard_error(self, error: BaseException) -> None:
        """Arm the report of an error nobody retrieves (see :mod:`aptio._call.unretrieved`),
        before ``_state = DONE`` publishes it."""
        caller = self._caller
        guard = ErrorGuard(error, self.describe(),
                           caller._report_error if caller is not None else log_error)
        self._error_guard = guard
        if self._cancelled:  # re-read after arming: a cancel's disarm may have missed it
            guard.disarm()

    def _fail_undelivered(self) -> None:
        if self._state == PENDING:
            self._finish(None, self._apartment._disconnected_error(self._method))

    def _disconnect(self, reason: DisconnectedError) -> None:
        """Fail a started call at shutdown: its caller gets ``reason``, its task is cancelled."""
        self._disconnect_reason = reason
        task = self._task
        self._finish(None, reason)  # the caller is failed now, whatever the coroutine does
        if task is not None and not task.done():
            cancel_task(task)

    def _cancel_in_target(self) -> None:
        """The caller cancelled: stop the call where it runs. Not started yet, or running
        synchronously (task None): the target checks ``_cancelled`` before it starts the call
        and again after it publishes ``_task``, and a sync method can poll
        ``aptio.current_call().cancelled``. A call queued at a gate is taken out and finished."""
        task = self._task
        if task is not None:
            cancel_task(task)
            return
        gate = self._gate
        if gate is not None and self._state == PENDING and gate.withdraw(self):
            self._finish(None, asyncio.CancelledError())
            return
        self._apartment._cancel_elsewhere(self)


def _is_coroutine(value: object) -> bool:
    """A coroutine a sync method handed back, which then runs as one: a native coroutine, or
    another object of the coroutine protocol (a compiled coroutine), but not a generator
    (3.11's ``asyncio.iscoroutine`` counts those: a generator crosses as an iterator) nor an
    aptio call (handed back, it is a value like any other)."""
    kind = type(value)
    if kind is _COROUTINE_TYPE:
        return True
    if kind in _CONTAINER_TYPES:  # the usual non-scalar results, without the ABC check
        return False  # (scalars never get here: ``_deliver`` has finished with them)
    if isinstance(value, (types.GeneratorType, CallRecord)):
        return False
    return asyncio.iscoroutine(value)


def cancel_task(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` from any thread (on its own loop)."""
    loop = task.get_loop()
    if running_loop() is loop:
        task.cancel()
    else:
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # that loop is closed: the task is gone with it
            pass


async def _drive_call(call: TargetSide[Any] | None, coro: Coroutine[Any, Any, Any] | None,
                      guard: StartGuard | None) -> None:
    """``TargetSide._drive``. A function, not a method, so that it can drop its references
    when done: the method's frame, kept by an error's traceback (which the call keeps), keeps
    this frame as its ``f_back``, and this frame's locals with it, the call included (a cycle
    that waits for a garbage collection, which an idle process may never run)."""
    assert call is not None
    assert coro is not None
    if guard is not None:
        guard.disarm()
    value: Any = None
    try:
        value = await coro
        if type(value) not in SCALAR_TYPES:
            value = call._apartment._marshal_result(value)
    except BaseException as error:
        call._finish(None, error)
    else:
        call._finish(value, None)
    finally:
        # The Task's context holds this call (``current_call_var``): holding the Task back
        # would make a cycle too.
        call._task = None
        call = coro = guard = value = None
