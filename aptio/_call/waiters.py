"""Who waits on a call: a Task (``await call``), a blocked thread (``call.result()``), or a
done-callback (asyncio's Future protocol). Each is told through ``notify()`` when the call's
state changes (see the waiter invariant in :mod:`aptio._call.contract`).

A completing call hands a loop's waiters to that loop: scheduled right away on the loop's own
thread, posted to the loop's inbox from any other thread and run by its drain, one wake-up per
batch of replies.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any, Final

from .._threads.inbox import Inbox
from .contract import DONE, CallRecord
from .retry import Settled, resend, settle_rejection

__all__ = ["DoneCallback", "OnLoop", "TaskWaiter", "ThreadWaiter", "run_callback"]

_get_ident = threading.get_ident
_allocate_lock = threading.Lock
_FINAL: Final = Settled.FINAL
_KEEP_WAITING: Final = Settled.KEEP_WAITING


class OnLoop:
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

    def notify_now(self) -> None:
        if _get_ident() == self.inbox.thread_id:
            self._deliver()  # a plain loop callback, as the inbox's drain
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


class TaskWaiter(OnLoop):
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
                run_callback(self._loop, callback, self, self._context)
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


class ThreadWaiter:
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

    def notify_now(self) -> None:
        self.notify()


class DoneCallback(OnLoop):
    """One ``add_done_callback`` registration: fires once, on the loop that registered it."""

    __slots__ = ("call", "context", "fired", "fn")

    def __init__(self, inbox: Inbox, fn: Callable[[Any], object],
                 context: contextvars.Context, call: CallRecord[Any]) -> None:
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
            step = settle_rejection(call)
            if step is _KEEP_WAITING:
                return
            if step is not _FINAL:  # the caller's filter retries: fire after the next attempt
                self.inbox.loop.call_later(step, resend, call)
                return
            if self._fired_meanwhile():
                return
        self.fired = True
        if soon:  # asyncio's callers (gather) rely on callbacks not running inline
            self.inbox.loop.call_soon(self.fn, call, context=self.context)
        else:
            run_callback(self.inbox.loop, self.fn, call, self.context)

    def _fired_meanwhile(self) -> bool:
        """Settling a rejection wakes every waiter, this one included: it may have fired."""
        return self.fired


def run_callback(loop: asyncio.AbstractEventLoop, fn: Callable[[Any], object], arg: Any,
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
