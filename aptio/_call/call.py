"""``Call``: one method call in flight, the awaitable a proxy method returns; its caller side.

A Call is both the request the target apartment executes and the handle the caller awaits, so
a cross-apartment round trip allocates one object plus what the caller's wait needs. The class
is built by role: :class:`~aptio._call.contract.CallRecord` (identity and state),
:class:`~aptio._call.target.TargetSide` (running it), and here the caller's side: ``await``,
``result()``, ``cancel()`` and asyncio's Future protocol, so that ``asyncio.gather``, ``wait``,
``wait_for`` and ``shield`` take a Call as it is.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, ClassVar, Final, TypeVar

from .._compiled import COMPILED
from .._threads.inbox import loop_inbox
from .._threads.loops import running_loop
from .._values.errors import WrongApartmentError
from .context import running_call_in, thread_state
from .contract import DONE, CallRecord, final_outcome
from .retry import Settled, after_wake, resend, settle_rejection
from .target import TargetSide
from .wait_watch import wait_watch
from .waiters import DoneCallback, TaskWaiter, ThreadWaiter

__all__ = ["MARK_INTERVAL", "Call"]

T = TypeVar("T")

_monotonic = time.monotonic
_get_running_loop = asyncio.get_running_loop
_FINAL: Final = Settled.FINAL
_KEEP_WAITING: Final = Settled.KEEP_WAITING

#: Seconds between the calls a thread marks as yield points (see ``Call.__await__``).
MARK_INTERVAL: Final = 0.005

#: What ``_begin_wait`` published: the waiting parent call, and the STA's outgoing record.
_WaitRecord = tuple["CallRecord[Any] | None", "dict[int, int] | None"]


class Call(TargetSide[T], Coroutine[Any, Any, T]):
    """A method call in flight: await it for the result, or cancel it.

    Returned by every proxy method call. The call is dispatched at once (eagerly); awaiting it
    only waits. ``await call`` returns the method's result or raises the method's own exception
    (same type, with the frames from the target apartment kept in its traceback). Cancelling the
    awaiting task cancels the call in the target apartment.

    A Call goes wherever an awaitable or a coroutine goes: it is an asyncio future to
    ``gather``, ``wait``, ``wait_for`` and ``shield``, and a coroutine to
    ``asyncio.create_task``, ``TaskGroup.create_task`` and anyio's task groups.
    """

    __slots__ = ("_driver",)

    #: The wait a Task drives through ``send``/``throw`` (made on first use; see below).
    _driver: Generator[Any, None, T]

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
        self._disarm_error_guard()  # after ``_cancelled``: see the unretrieved module
        self._cancel_in_target()
        self._wake_waiters()
        return True

    def _abandon(self) -> None:
        """Its only holder dropped it unread (a CallIterator never iterated): a call not
        started yet never starts, and no outcome is reported. Takes no lock and wakes nobody,
        so a finalizer may call it on any thread; a running call runs on."""
        self._cancelled = True
        self._disarm_error_guard()  # after ``_cancelled``: see the unretrieved module

    def __await__(self) -> Generator[Any, None, T]:
        return _await(self)

    # -- the coroutine protocol: a Task drives the call as it drives a coroutine --------------
    # Only a Task made from the call (``create_task(call)``) uses these; ``await call`` does
    # not, so the driver is made on first use (``_driver`` is unset until then).

    def send(self, value: Any) -> Any:
        """Advance the wait (the coroutine protocol, for a Task running the call)."""
        try:
            driver = self._driver
        except AttributeError:
            driver = self._driver = self.__await__()
        return driver.send(value)

    def throw(self, typ: type[BaseException] | BaseException, val: object = None,
              tb: TracebackType | None = None) -> Any:
        """Raise an exception at the wait (the coroutine protocol): a CancelledError cancels
        the call, as cancelling a task that awaits it does."""
        if isinstance(typ, BaseException):
            error = typ
        elif isinstance(val, BaseException):
            error = val
        else:
            error = typ() if val is None else typ(val)
        if tb is not None:
            error = error.with_traceback(tb)
        try:
            driver = self._driver
        except AttributeError:  # never started: the exception ends the wait at once
            if isinstance(error, asyncio.CancelledError):
                self.cancel()
            raise error from None
        return driver.throw(error)

    def close(self) -> None:
        """Stop the wait (the coroutine protocol); the call itself goes on."""
        try:
            driver = self._driver
        except AttributeError:
            return
        driver.close()

    # The asyncio Future protocol (duck-typed), so asyncio.gather/wait/shield/wait_for take a
    # Call as it is instead of wrapping it in a Task. Callbacks run on the loop that added them.
    _asyncio_future_blocking: ClassVar[bool] = False

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
        callback = DoneCallback(loop_inbox(loop), fn,
                                contextvars.copy_context() if context is None else context,
                                self)
        self._add_waiter(callback)
        if self._cancelled or self._state == DONE:
            callback.notify()  # it fires once, whoever notifies first

    def remove_done_callback(self, fn: Callable[[Call[T]], object]) -> int:
        """Remove every pending callback ``fn``; returns how many (Future protocol)."""
        removed = 0
        for waiter in list(self._waiters or ()):
            if isinstance(waiter, DoneCallback) and waiter.fn == fn and not waiter.fired:
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
            return self._value  # type: ignore[no-any-return]  # the final result (see contract)
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
        try:
            return _wait_for_result(self, timeout)
        finally:
            if not COMPILED:  # see _wait_for_result (mypyc can neither delete nor rebind self)
                self = None  # type: ignore[assignment]

    def exception(self) -> BaseException | None:
        """The call's exception, or None; raises InvalidStateError if it is not done."""
        if self._cancelled:
            raise self._make_cancelled_error()
        if not (self._state == DONE and self._rejected is None):  # not done()
            raise asyncio.InvalidStateError(f"{self!r} is not done")
        error = self._error
        if error is not None:
            self._disarm_error_guard()
        return error

    def _begin_wait(self) -> _WaitRecord:
        """Publish "the current call waits on this one" (for deadlock detection, and for the
        STA's record of the chains it waits on, which decides CALLTYPE). ``_end_wait`` undoes
        it with what this returns."""
        state = thread_state()  # one lookup for both
        parent = running_call_in(state)
        here = state.apartment
        outgoing = here._outgoing if here is not None else None  # None off STAs
        if outgoing is not None:
            chain = self._causality
            outgoing[chain] = outgoing.get(chain, 0) + 1
        if parent is not None:
            awaiting = parent._awaiting
            if awaiting is None:
                awaiting = parent._awaiting = []
            awaiting.append(self)  # the edge is published, then the gates' count is read
            if wait_watch.queued:
                on_await = wait_watch.on_await
                if on_await is not None:
                    on_await(parent, self)
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


def _wait_for_result(call: Call[T] | None, timeout: float | None) -> T:
    """The blocking wait of ``Call.result``; like ``_await``, it drops its reference to the
    call before an error leaves, and so does ``result`` itself in the pure-Python build
    (compiled, a traceback's entries for compiled functions hold no locals)."""
    assert call is not None
    deadline = None if timeout is None else _monotonic() + timeout
    while True:
        if not (call._cancelled or call._state == DONE):
            waiter = ThreadWaiter()
            call._add_waiter(waiter)
            if not (call._cancelled or call._state == DONE):
                record = call._begin_wait()
                here = thread_state().apartment
                if here is not None:
                    here._blocking(True)
                try:
                    left = -1.0 if deadline is None else max(0.0, deadline - _monotonic())
                    woken = waiter.lock.acquire(True, left)
                finally:
                    if here is not None:
                        here._blocking(False)
                    call._end_wait(record)
                if not woken:
                    call.cancel()
                    raise TimeoutError(
                        f"{call._method}() did not finish within {timeout} s; it was "
                        "cancelled"
                    )
        step = after_wake(call)
        if step is _FINAL:
            try:
                return final_outcome(call)
            finally:
                call = None  # not held by the error's traceback (see ``final_outcome``)
        if step is _KEEP_WAITING:
            continue
        if step:
            time.sleep(step)
        resend(call)


def _await(call: Call[T] | None) -> Generator[Any, None, T]:
    """``await call``: the body of ``Call.__await__``, a function of its own so that its
    error paths can drop its reference to the call, which the raised error's traceback
    would otherwise hold through this frame (a cycle: the call holds its error). mypyc can
    neither delete ``self`` nor an argument, so the argument is set to None instead."""
    assert call is not None
    while True:
        if call._cancelled or (call._state == DONE and not call._ever_rejected):
            # The outcome is final. Fairness: a call finishes in another thread, so it may be
            # done before the await (on one CPU, nearly always), and a Task sending calls and
            # awaiting them would never give its loop back. A marked call (one per thread per
            # MARK_INTERVAL) yields once, like ``asyncio.sleep(0)``, so a cancel, I/O or a
            # GUI event queued on the loop gets through.
            if call._marked:
                call._marked = False
                if running_loop() is not None:
                    yield
            if not call._cancelled and call._error is None:
                return call._value  # type: ignore[no-any-return]  # the final result
            try:
                return final_outcome(call)  # cancelled, or failed for good
            finally:
                call = None  # not held by the error's traceback (see ``final_outcome``)
        if call._state != DONE:  # not started or running: wait for it
            waiter = TaskWaiter(loop_inbox(_get_running_loop()))
            call._add_waiter(waiter)
            if not (call._cancelled or call._state == DONE):
                record = call._begin_wait()
                call._marked = False  # suspending gives the loop back anyway
                try:
                    yield waiter
                except asyncio.CancelledError:
                    call.cancel()
                    raise
                finally:
                    call._end_wait(record)
            continue  # woken (possibly twice, or for a re-sent call): look again
        # Done, but a filter turned it away at least once: the caller's filter decides.
        step = settle_rejection(call)
        if step is _FINAL:
            try:
                return final_outcome(call)
            finally:
                call = None  # not held by the error's traceback (see ``final_outcome``)
        if step is _KEEP_WAITING:
            continue
        if step:
            yield from asyncio.sleep(step).__await__()
        resend(call)


def _on_apartment_loop() -> bool:
    """True on a thread that an apartment owns and that runs an event loop right now (an STA,
    the MTA's loop, a coroutine method on an MTA thread): blocking there stalls the loop."""
    return thread_state().apartment is not None and running_loop() is not None
