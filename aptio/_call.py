"""``Call``: one method call in flight, the awaitable a proxy method returns.

A Call is both the request the target apartment executes and the handle the caller awaits, so
a cross-apartment round trip allocates one object plus what the caller's wait needs.

Two views of its state, written by different threads:
  * the target side moves ``_state`` PENDING -> RUNNING -> DONE and writes the outcome
    (``_value``/``_error``) strictly before ``_state = DONE``;
  * the caller side sets ``_cancelled``. A caller that sees ``_cancelled`` raises CancelledError
    whatever the target did: the result is discarded, as COM's ICancelMethodCalls prescribes.
Final-result invariant: a call in DONE that was never cancelled or rejected and has no
``_error`` holds its final result in ``_value`` (a rejection can send a DONE call back to
PENDING; nothing else ever leaves DONE), so the fast paths of ``await`` and ``result()`` return
it at once.
Waiter invariant: a waiter appends itself to ``_waiters`` and then re-reads the state; the target
writes DONE and then reads ``_waiters``. One of the two always sees the other, so a wake-up is
never lost (it may be doubled, and every waiter tolerates that). The list is made by the first
waiter (most pipelined calls finish before anyone waits), under ``_waiters_lock`` so that two
first waiters on different threads share one list; once made it is never swapped.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from ._calls import CallInfo, CallType, current_call_var, new_causality_id, running_call
from ._exceptions import AptioError, DisconnectedError, WrongApartmentError
from ._filter import ServerCall, filter_verdict, rejected_error, retry_delay
from ._loops import running_loop
from ._models import PLAIN_TYPES
from ._reentrancy import await_edge_added, gate_counters
from ._state import neutral_override, process_state, thread_apartment, thread_local
from ._transport import Inbox, loop_inbox

if TYPE_CHECKING:
    from ._apartment import Apartment
    from ._models import Reentrancy
    from ._reentrancy import Gate

__all__ = ["Call", "DONE", "MARK_INTERVAL", "PENDING", "RUNNING"]

T = TypeVar("T")

PENDING: Final = 0
RUNNING: Final = 1
DONE: Final = 2

#: 3.12+ can start a Task eagerly: its first step runs inside the constructor, so calls start
#: in the order they arrive with no extra loop iteration. On 3.11 ordering is kept by the
#: inbox drain (stop the batch after a new Task) and the STA's inline barrier.
EAGER_TASKS: Final = sys.version_info >= (3, 12)

_allocate_lock = threading.Lock
_get_ident = threading.get_ident
_monotonic = time.monotonic
_get_running_loop = asyncio.get_running_loop

#: Seconds between the calls a thread marks as yield points (see ``Call.__await__``).
MARK_INTERVAL: Final = 0.005

# Enum members as module constants: on 3.11 reading ``CallType.TOPLEVEL`` costs ~100 ns, and
# these are read on every call.
_TOPLEVEL: Final = CallType.TOPLEVEL
_NESTED: Final = CallType.NESTED
_TOPLEVEL_CALLPENDING: Final = CallType.TOPLEVEL_CALLPENDING
_ISHANDLED: Final = ServerCall.ISHANDLED

#: Makes a call's waiter list (once per call that is waited on at all).
_waiters_lock = threading.Lock()

#: Serializes the rare hand-over of a rejected call between the target and its waiters.
_rejection_lock = threading.Lock()

#: From ``_settle_rejection``: another waiter is re-sending the call, keep waiting.
_KEEP_WAITING: Final = -1.0


class _OnLoop:
    """Something a completing call hands to a loop: scheduled right away on that loop's
    thread, posted to the loop's inbox from any other thread and run by its drain."""

    __slots__ = ("inbox",)

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def notify(self) -> None:
        if _get_ident() == self.inbox.thread_id:
            self._fire(soon=True)  # inside _finish, another Task or add_done_callback
        else:
            self.inbox.post(self)

    def _deliver(self) -> bool:
        self._fire(soon=False)  # from the inbox's drain, itself a loop callback: run it now
        return False

    def _fire(self, soon: bool) -> None:
        """Run what waits on the call: scheduled with ``call_soon`` if ``soon``, else now."""
        raise NotImplementedError

    def _starts_as_task(self) -> bool:
        return False  # it runs code as it is delivered

    def _fail_undelivered(self) -> None:
        """The inbox closed; by default nobody is left to tell."""


class _TaskWaiter(_OnLoop):
    """What ``await call`` yields to its Task: as much of the asyncio Future protocol as a Task
    uses. The Task registers its wake-up here, and the call's completion runs it: at once when
    it arrives through the loop's inbox (the drain is a plain loop callback, so the Task may
    step right there), scheduled when it is notified on the loop's own thread (from inside
    ``_finish`` or another Task). A real Future would schedule the wake-up in either case,
    which costs a loop iteration per reply."""

    __slots__ = ("_asyncio_future_blocking", "_callback", "_cancel_message", "_cancelled",
                 "_context", "_fired", "_loop")

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        # A Task asks its future for the loop with ``get_loop()`` if it has one, else reads
        # ``_loop``: the attribute spares a Python frame per await.
        self._loop = inbox.loop
        self._asyncio_future_blocking = True  # yielded by ``__await__``: the Task waits on it
        self._callback: Callable[[Any], object] | None = None
        self._context: contextvars.Context | None = None
        self._fired = False
        self._cancelled = False
        self._cancel_message: Any = None

    def add_done_callback(self, fn: Callable[[Any], object], *,
                          context: contextvars.Context | None = None) -> None:
        if self._callback is not None:
            raise RuntimeError("an aptio call's await serves one Task")
        if self._fired:
            self._loop.call_soon(fn, self, context=context)
            return
        self._callback = fn
        self._context = context

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        if self._callback is None or self._callback != fn:
            return 0
        self._callback = None
        return 1

    def cancel(self, msg: Any | None = None) -> bool:
        """The Task is being cancelled: wake it, and its ``result()`` raises CancelledError."""
        if self._fired:
            return False
        self._cancelled = True
        self._cancel_message = msg
        self._fire(soon=True)
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._fired

    def result(self) -> None:
        if self._cancelled:
            message = self._cancel_message
            raise asyncio.CancelledError("" if message is None else message)

    def exception(self) -> BaseException | None:
        return None

    def _deliver(self) -> bool:
        """From the inbox's drain, a plain loop callback: wake the Task right here (once per
        awaited reply, so without ``_fire``'s frame)."""
        if not self._fired:  # wake-ups may be doubled (see the waiter invariant)
            self._fired = True
            callback = self._callback
            if callback is not None:  # else add_done_callback schedules it
                _run_callback(self._loop, callback, self, self._context)
        return False

    def _fire(self, soon: bool) -> None:
        if not soon:
            self._deliver()
        elif not self._fired:
            self._fired = True
            callback = self._callback
            if callback is not None:
                self._loop.call_soon(callback, self, context=self._context)

    def _fail_undelivered(self) -> None:
        """The inbox closed (its apartment shut down) while the loop may still run: wake the
        Task directly; it re-checks the call and waits again if need be."""
        try:
            self.inbox.loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed too: nobody is left to wake
            pass


class _ThreadWaiter:
    """Wakes one blocked ``call.result()``."""

    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = _allocate_lock()
        self.lock.acquire()

    def notify(self) -> None:
        try:
            self.lock.release()
        except RuntimeError:  # woken already (a cancel, then the completion)
            pass


class _DoneCallback(_OnLoop):
    """One ``add_done_callback`` registration: fires once, on the loop that registered it."""

    __slots__ = ("call", "context", "fired", "fn")

    def __init__(self, inbox: Inbox, fn: Callable[[Any], object],
                 context: contextvars.Context, call: Call[Any]) -> None:
        self.inbox = inbox
        self.fn = fn
        self.context = context
        self.call = call
        self.fired = False

    def _fire(self, soon: bool) -> None:
        call = self.call
        if self.fired or not (call._cancelled or call._state == DONE):
            return
        if call._ever_rejected and not call._cancelled:  # the caller's filter may retry it
            delay = call._settle_rejection()
            if delay == _KEEP_WAITING:
                return
            if delay is not None:  # the caller's filter retries: fire after the next attempt
                self.inbox.loop.call_later(delay, call._resend)
                return
            if self._fired_meanwhile():
                return
        self.fired = True
        if soon:  # asyncio's callers (gather) rely on callbacks not running inline
            self.inbox.loop.call_soon(self.fn, call, context=self.context)
        else:
            _run_callback(self.inbox.loop, self.fn, call, self.context)

    def _fired_meanwhile(self) -> bool:
        """Settling a rejection wakes every waiter, this one included: it may have fired."""
        return self.fired


def _run_callback(loop: asyncio.AbstractEventLoop, fn: Callable[[Any], object], arg: Any,
                  context: contextvars.Context | None) -> None:
    """Run ``fn(arg)`` now, as a loop callback would: in ``context`` (if given), with errors
    going to the loop's exception handler, so the rest of an inbox's batch still runs."""
    try:
        if context is None:
            fn(arg)
        else:
            context.run(fn, arg)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as error:
        loop.call_exception_handler({
            "message": f"Exception in callback {fn!r} of {arg!r}",
            "exception": error,
        })


_Waiter = _TaskWaiter | _ThreadWaiter | _DoneCallback

#: What ``_begin_wait`` published: the waiting parent call, and the STA's outgoing record.
_WaitRecord = tuple["Call[Any] | None", "dict[int, int] | None"]


class Call(Generic[T]):
    """A method call in flight: await it for the result, or cancel it.

    Returned by every proxy method call. The call is dispatched at once (eagerly); awaiting it
    only waits. ``await call`` returns the method's result or raises the method's own exception
    (same type, with the frames from the target apartment kept in its traceback). Cancelling the
    awaiting task cancels the call in the target apartment.
    """

    __slots__ = (
        "__weakref__",
        "_admitted",
        "_apartment",
        "_args",
        "_awaiting",
        "_call_type",
        "_caller",
        "_cancel_message",
        "_cancelled",
        "_causality",
        "_created",
        "_disconnect_reason",
        "_error",
        "_error_tb",
        "_ever_rejected",
        "_fn",
        "_gate",
        "_gate_queued",
        "_is_async",
        "_kwargs",
        "_marked",
        "_method",
        "_owner",
        "_parent",
        "_policy",
        "_rejected",
        "_state",
        "_target",
        "_task",
        "_value",
        "_waiters",
    )

    def __init__(
        self,
        apartment: Apartment,
        target: object,
        method: str,
        fn: Callable[..., Any],
        is_async: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        caller: Apartment | None,
        parent: Call[Any] | None,
        created: float,
        marked: bool,
        gate: Gate | None = None,
        policy: Reentrancy | None = None,
    ) -> None:
        self._apartment = apartment
        self._target = target
        self._owner: type | None = None
        self._method = method
        self._fn: Callable[..., Any] | None = fn
        self._is_async = is_async
        self._args: tuple[Any, ...] | None = args
        self._kwargs: dict[str, Any] | None = kwargs
        self._caller = caller
        self._parent = parent  # the call the caller's code runs in (``running_call()``)
        # A nested call inherits its parent's logical thread (COM_SPEC D4); a new one gets a
        # fresh id here, on the caller's thread, so no other thread ever writes it.
        self._causality: int = new_causality_id() if parent is None else parent._causality
        self._call_type = _TOPLEVEL  # decided by the target when the call starts
        self._created = created  # ``time.monotonic()``, read by the sender
        self._marked = marked  # a yield point when awaited done (see ``__await__``)
        self._gate = gate
        self._policy = policy
        self._gate_queued = False  # written under the reentrancy graph lock
        self._admitted = False  # passed the message filter and the gate
        self._rejected: ServerCall | None = None
        self._ever_rejected = False
        self._awaiting: list[Call[Any]] | None = None  # calls this call's code waits on
        self._state = PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._error_tb: TracebackType | None = None
        self._cancelled = False
        self._cancel_message: Any | None = None
        self._disconnect_reason: DisconnectedError | None = None
        self._waiters: list[_Waiter] | None = None  # see the waiter invariant above
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- caller side

    def __repr__(self) -> str:
        state = ("cancelled" if self._cancelled else
                 ("pending", "running", "done")[self._state])
        return f"<aptio.Call {self._method}() in {self._apartment.name!r} {state}>"

    def done(self) -> bool:
        """True once the call has its final outcome: a result, an exception, or cancelled.
        (A call that a message filter turned away is not done until the caller's filter has
        decided: it may be sent again.)"""
        return self._cancelled or (self._state == DONE and self._rejected is None)

    def cancelled(self) -> bool:
        """True if the caller cancelled the call."""
        return self._cancelled

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel the call: it never starts if it has not, its coroutine sees CancelledError if
        it runs, and awaiting the call raises CancelledError. Returns False if it was done."""
        if self.done():
            return False
        self._cancel_message = msg
        self._cancelled = True
        self._cancel_in_target()
        self._wake_waiters()
        return True

    def __await__(self) -> Generator[Any, None, T]:
        while True:
            if self._cancelled or (self._state == DONE and not self._ever_rejected):
                # The outcome is final. Fairness: a call finishes in another thread, so it may be
                # done before the await (on one CPU, nearly always), and a Task sending calls and
                # awaiting them would never give its loop back. A marked call (one per thread per
                # MARK_INTERVAL) yields once, like ``asyncio.sleep(0)``, so a cancel, I/O or a
                # GUI event queued on the loop gets through.
                if self._marked:
                    self._marked = False
                    if running_loop() is not None:
                        yield
                if not self._cancelled and self._error is None:
                    return self._value  # type: ignore[no-any-return]  # the final result
                return self._outcome()  # cancelled, or failed for good
            if self._state != DONE:  # not started or running: wait for it
                waiter = _TaskWaiter(loop_inbox(_get_running_loop()))
                self._add_waiter(waiter)
                if not (self._cancelled or self._state == DONE):
                    record = self._begin_wait()
                    self._marked = False  # suspending gives the loop back anyway
                    try:
                        yield waiter
                    except asyncio.CancelledError:
                        self.cancel()
                        raise
                    finally:
                        self._end_wait(record)
                continue  # woken (possibly twice, or for a re-sent call): look again
            # Done, but a filter turned it away at least once: the caller's filter decides.
            step = self._settle_rejection()
            if step is None:
                return self._outcome()
            if step == _KEEP_WAITING:
                continue
            if step:
                yield from asyncio.sleep(step).__await__()
            self._resend()

    # The asyncio Future protocol (duck-typed), so asyncio.gather/wait/shield/wait_for take a
    # Call as it is instead of wrapping it in a Task. Callbacks run on the loop that added them.
    _asyncio_future_blocking = False

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop of the caller (asyncio's Future protocol)."""
        return asyncio.get_running_loop()

    def add_done_callback(
        self, fn: Callable[[Call[T]], object], *, context: contextvars.Context | None = None
    ) -> None:
        """Call ``fn(call)`` on the current loop once the call is done (Future protocol)."""
        loop = asyncio.get_running_loop()
        if self._cancelled or (self._state == DONE and not self._ever_rejected):
            loop.call_soon(fn, self, context=context)  # final already: nothing to wait for
            return
        callback = _DoneCallback(loop_inbox(loop), fn,
                                 contextvars.copy_context() if context is None else context,
                                 self)
        self._add_waiter(callback)
        if self._cancelled or self._state == DONE:
            callback.notify()  # it fires once, whoever notifies first

    def remove_done_callback(self, fn: Callable[[Call[T]], object]) -> int:
        """Remove every pending callback ``fn``; returns how many (Future protocol)."""
        removed = 0
        for waiter in list(self._waiters or ()):
            if isinstance(waiter, _DoneCallback) and waiter.fn == fn and not waiter.fired:
                waiter.fired = True
                removed += 1
        return removed

    def _make_cancelled_error(self) -> asyncio.CancelledError:
        message = self._cancel_message
        return asyncio.CancelledError("" if message is None else message)

    def result(self, timeout: float | None = None) -> T:
        """Block the calling thread until the call is done; return its result or raise its error.

        Allowed on plain threads and MTA threads. On an STA thread a call that is not done yet
        is refused, since blocking would stall every object in the apartment (use ``await call``
        there); a done call's result is returned anywhere. On timeout the call is cancelled and
        TimeoutError is raised.
        """
        if self._state == DONE and not (self._cancelled or self._ever_rejected
                                        or self._error is not None):
            return self._value  # type: ignore[no-any-return]  # the final result (see module)
        if not self.done() and _on_apartment_loop():  # every STA thread runs its loop
            raise WrongApartmentError(
                f"call.result() would block the STA thread {threading.current_thread().name!r} "
                f"and every object in it; use `await call` in an STA"
            )
        if not (self._cancelled or self._state == DONE):
            task = self._task
            if task is not None and task.get_loop() is running_loop():
                raise WrongApartmentError(
                    f"call.result() on the thread whose event loop runs {self._method}() would "
                    "deadlock; use `await call`"
                )
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            if not (self._cancelled or self._state == DONE):
                waiter = _ThreadWaiter()
                self._add_waiter(waiter)
                if not (self._cancelled or self._state == DONE):
                    record = self._begin_wait()
                    here = thread_apartment()
                    if here is not None:
                        here._blocking(True)
                    try:
                        left = -1.0 if deadline is None else max(0.0, deadline - _monotonic())
                        woken = waiter.lock.acquire(True, left)
                    finally:
                        if here is not None:
                            here._blocking(False)
                        self._end_wait(record)
                    if not woken:
                        self.cancel()
                        raise TimeoutError(
                            f"{self._method}() did not finish within {timeout} s; it was "
                            "cancelled"
                        )
            step = self._after_wake()
            if step is None:
                return self._outcome()
            if step == _KEEP_WAITING:
                continue
            if step:
                time.sleep(step)
            self._resend()

    def exception(self) -> BaseException | None:
        """The call's exception, or None; raises InvalidStateError if it is not done."""
        if self._cancelled:
            raise self._make_cancelled_error()
        if not (self._state == DONE and self._rejected is None):  # not done()
            raise asyncio.InvalidStateError(f"{self!r} is not done")
        return self._error

    def _begin_wait(self) -> _WaitRecord:
        """Publish "the current call waits on this one" (for deadlock detection, and for the
        STA's record of the chains it waits on, which decides CALLTYPE). ``_end_wait`` undoes
        it with what this returns."""
        parent = running_call()
        here = thread_local.state.apartment
        outgoing = here._outgoing if here is not None else None  # None off STAs
        if outgoing is not None:
            chain = self._causality
            outgoing[chain] = outgoing.get(chain, 0) + 1
        if parent is not None:
            awaiting = parent._awaiting
            if awaiting is None:
                awaiting = parent._awaiting = []
            awaiting.append(self)  # the edge is published, then the gates' queue is read
            if gate_counters.queued:
                await_edge_added(parent, self)
        return parent, outgoing

    def _end_wait(self, record: _WaitRecord) -> None:
        parent, outgoing = record
        if parent is not None and parent._awaiting is not None:
            try:
                parent._awaiting.remove(self)
            except ValueError:
                pass
        if outgoing is not None:
            chain = self._causality
            left = outgoing[chain] - 1
            if left:
                outgoing[chain] = left
            else:
                del outgoing[chain]

    def _after_wake(self) -> float | None:
        """What a woken waiter does next: None -- the outcome is final, return it;
        _KEEP_WAITING -- another waiter is re-sending a rejected call, wait again; else the
        delay after which this waiter re-sends the rejected call."""
        if self._cancelled:
            return None
        if self._state != DONE:
            return _KEEP_WAITING
        return self._settle_rejection()

    def _settle_rejection(self) -> float | None:
        """Caller side, on a done call: None if there is nothing to retry (the outcome stands,
        a CallRejectedError included, once the caller's filter gave up), else the delay before
        this waiter re-sends the call. Exactly one waiter claims each rejection.

        Lock-free fast path for a call that was never rejected (the common case): it finishes
        once and never goes back to PENDING, so DONE is final. Any rejection sets
        ``_ever_rejected`` (before DONE, under the lock) and every later settle takes the lock.
        """
        if not self._ever_rejected and self._state == DONE:
            return None
        with _rejection_lock:
            if self._state != DONE:
                return _KEEP_WAITING  # another waiter claimed the rejection and re-sends it
            verdict = self._rejected
            if verdict is None:
                return None
            caller = self._caller
            message_filter = caller._message_filter if caller is not None else None
            info = self.info()
            elapsed = _monotonic() - self._created
            try:
                delay = retry_delay(message_filter, info, elapsed, verdict)
            except AptioError as error:
                self._error = error
                delay = None
            else:
                if delay is None:
                    self._error = rejected_error(info, verdict, elapsed)
                else:
                    self._state = PENDING  # other waiters wait for the next attempt
            self._rejected = None
        if delay is None:
            self._wake_waiters()  # every other waiter sees the final outcome
        return delay

    def _resend(self) -> None:
        """Send a rejected call again (caller side, after its filter chose to retry)."""
        self._admitted = False
        self._state = PENDING
        apartment = self._apartment
        if apartment._closing:
            self._fail_undelivered()
        else:
            apartment._post(self)

    def _descends_from(self, ancestor: Call[Any]) -> bool:
        """True if ``ancestor`` is this call's parent, grandparent, ... (it waits on us)."""
        parent = self._parent
        while parent is not None:
            if parent is ancestor:
                return True
            parent = parent._parent
        return False

    def describe(self) -> str:
        """``Class.method() in 'apartment' (chain N)``, for error messages and dumps."""
        target = self._target
        cls = type(target) if target is not None else self._owner
        owner = cls.__qualname__ + "." if cls is not None else ""
        return (f"{owner}{self._method}() in {self._apartment.name!r} "
                f"(chain {self.causality_id})")

    def info(self) -> CallInfo:
        """This call as a frozen :class:`aptio.CallInfo`."""
        return CallInfo(
            causality_id=self.causality_id,
            caller=self._caller,
            apartment=self._apartment,
            method=self._method,
            call_type=self._call_type,
            call=self,
        )

    @property
    def causality_id(self) -> int:
        """The logical thread this call belongs to (COM: causality ID)."""
        return self._causality

    def _outcome(self) -> T:
        if self._cancelled:
            raise asyncio.CancelledError(f"{self._method}() was cancelled")
        error = self._error
        if error is not None:
            # Re-raised from the saved traceback each time, so awaiting twice does not grow it.
            raise error.with_traceback(self._error_tb)
        value: T = self._value
        return value

    def _add_waiter(self, waiter: _Waiter) -> None:
        waiters = self._waiters
        if waiters is None:
            with _waiters_lock:
                waiters = self._waiters
                if waiters is None:
                    waiters = self._waiters = []
        waiters.append(waiter)

    def _wake_waiters(self) -> None:
        waiters = self._waiters
        if waiters:
            for waiter in waiters:
                waiter.notify()

    def _cancel_in_target(self) -> None:
        # Not started yet, or running synchronously (task None): the target checks
        # ``_cancelled`` before it starts the call and again after it publishes ``_task``, and a
        # sync method can poll ``aptio.current_call().cancelled``.
        task = self._task
        if task is not None:
            _cancel_task(task)
        elif self._gate_queued and self._gate is not None and self._gate.withdraw(self):
            self._finish(None, asyncio.CancelledError())

    # ----------------------------------------------------------------- target side

    def _fail_undelivered(self) -> None:
        if self._state == PENDING:
            self._finish(None, self._apartment._disconnected_error(self._method))

    def _start_inline(self) -> bool:
        """``_start`` for a call run on the caller's own thread into an STA or MTA object:
        code inside it is no longer in the neutral apartment, even if its caller was."""
        if not process_state.neutral_entered or neutral_override.get() is None:
            return self._start()
        token = neutral_override.set(None)
        try:
            return self._start()
        finally:
            neutral_override.reset(token)

    def _start(self) -> bool:
        """Run the call on this thread, which belongs to its apartment (also the inbox's entry
        point, ``_deliver``). Returns True when a Task was created that has not taken its first
        step (3.11), so that later calls wait. A call that is not PENDING (finished by a cancel
        while queued) is left alone; one queued when shutdown began never starts."""
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
            message_filter = apartment._message_filter
            if message_filter is not None and self._caller is not apartment:
                try:
                    verdict = filter_verdict(message_filter, self.info())
                except AptioError as error:
                    self._finish(None, error)
                    return False
                if verdict is not _ISHANDLED:
                    self._reject(verdict)
                    return False
            gate = self._gate
            if gate is not None and not gate.enter(self, self._policy):  # type: ignore[arg-type]
                return False
        self._state = RUNNING
        if self._is_async:
            return self._start_coroutine(None)
        calls = thread_local.state.sync_calls
        calls.append(self)  # the call the method's code runs in (see ``running_call``)
        kwargs = self._kwargs
        try:
            value = (self._fn(*self._args, **kwargs)  # type: ignore[misc]
                     if kwargs else self._fn(*self._args))  # type: ignore[misc]
        except BaseException as error:
            self._finish(None, error)
            return False
        finally:
            calls.pop()
        if type(value) in PLAIN_TYPES:
            self._finish(value, None)
            return False
        if not asyncio.iscoroutine(value):
            self._finish(apartment._marshal_result(value), None)
            return False
        self._is_async = True  # a sync method handed back a coroutine: it runs as one
        return self._start_coroutine(value)

    #: The inbox's entry point (on the target loop's thread).
    _deliver = _start

    def _starts_as_task(self) -> bool:
        """An async method's call only makes a Task as it starts (3.11; see the inbox)."""
        return self._is_async

    async def _run_as_task(self) -> None:
        """The reference transport's body: the call runs inside the Task that
        ``run_coroutine_threadsafe`` made for it (one Task per call, the naive cost)."""
        if self._state != PENDING:
            return
        if self._apartment._closing:
            self._fail_undelivered()
            return
        if self._cancelled:
            self._finish(None, asyncio.CancelledError())
            return
        self._state = RUNNING
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._is_async = True  # it runs inside a Task, registered in ``_running``
        self._apartment._running.add(self)
        # This Task's context was copied from the poster's thread: replace what must not leak.
        current_call_var.set(self)
        neutral_override.set(None)
        try:
            value = self._fn(*self._args, **self._kwargs)  # type: ignore[misc, arg-type]
            if asyncio.iscoroutine(value):
                value = await value
        except BaseException as error:
            self._finish(None, error)
        else:
            self._finish(self._apartment._marshal_result(value), None)

    def _start_coroutine(self, coro: Coroutine[Any, Any, Any] | None) -> bool:
        """Start the call as a coroutine: ``coro``, or (None) the one its async method makes.
        The coroutine's context carries the call (``current_call_var``, copied into its Task);
        a None pushed on the thread's sync calls hides any enclosing sync call meanwhile."""
        calls = thread_local.state.sync_calls
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
            self._apartment._run_blocking_coroutine(self._drive(coro))
            return False
        # Registered before the Task exists: an eager first step may already have sent calls
        # that others can see finish, and diagnostics must then find this call running.
        self._apartment._running.add(self)
        if EAGER_TASKS:
            task: asyncio.Task[None] = asyncio.Task(
                self._drive(coro), loop=loop, eager_start=True  # type: ignore[call-arg]
            )
            if task.done():
                return False
            self._task = task  # its first step ran: ``_drive`` finishes the call, whatever
            if self._cancelled:  # a cancel that read ``_task`` as None before we published it
                task.cancel()
            return False
        # A Task cancelled before its first step never runs ``_drive``'s body: ``guard`` then
        # finishes the call (and closes the method's coroutine, which it keeps alive, so it is
        # not reported as never awaited). ``_drive`` removes it as it starts.
        guard = functools.partial(self._task_done, coro)
        task = loop.create_task(self._drive(coro, guard))
        self._task = task
        task.add_done_callback(guard)
        if self._cancelled:
            task.cancel()
        return True

    async def _drive(self, coro: Coroutine[Any, Any, Any],
                     guard: Callable[[asyncio.Task[None]], None] | None = None) -> None:
        """The body of a coroutine call's Task: once it runs, it finishes the call."""
        if guard is not None:
            self._task.remove_done_callback(guard)  # type: ignore[union-attr]
        try:
            value = await coro
            if type(value) not in PLAIN_TYPES:
                value = self._apartment._marshal_result(value)
        except BaseException as error:
            self._finish(None, error)
        else:
            self._finish(value, None)

    def _task_done(self, coro: Coroutine[Any, Any, Any], task: asyncio.Task[None]) -> None:
        """Its Task was cancelled before its first step (3.11): ``_drive``'s body never ran."""
        coro.close()
        if self._state != DONE:
            self._finish(None, asyncio.CancelledError())

    def _finish(self, value: Any, error: BaseException | None) -> None:
        """Record the outcome (once) and wake every waiter. Target side, any thread."""
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
            # would make Call -> error -> traceback -> frame -> Call a cycle).
            tb = error.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
                tb = tb.tb_next
            self._error_tb = tb
            self._error = error
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
            for waiter in waiters:
                waiter.notify()
        gate = self._gate
        if gate is not None:
            successor = gate.exit(self)
            if successor is not None:
                successor._apartment._admit(successor)

    def _reject(self, verdict: ServerCall) -> None:
        """The target's filter refused the call: the caller's filter decides what follows."""
        with _rejection_lock:
            self._ever_rejected = True
            self._rejected = verdict
            self._state = DONE
        self._wake_waiters()

    def _disconnect(self, reason: DisconnectedError) -> None:
        """Fail a started call at shutdown: its caller gets ``reason``, its task is cancelled."""
        self._disconnect_reason = reason
        task = self._task
        self._finish(None, reason)  # the caller is failed now, whatever the coroutine does
        if task is not None and not task.done():
            _cancel_task(task)


def _on_apartment_loop() -> bool:
    """True on a thread that an apartment owns and that runs an event loop right now (an STA,
    the MTA's loop, a coroutine method on an MTA thread): blocking there stalls the loop."""
    return thread_apartment() is not None and running_loop() is not None


def _cancel_task(task: asyncio.Task[None]) -> None:
    loop = task.get_loop()
    if running_loop() is loop:
        task.cancel()
    else:
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # that loop is closed: the task is gone with it
            pass
