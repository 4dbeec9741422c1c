"""Reject and retry: a call a message filter turned away goes back to its caller, whose own
filter decides whether to re-send it (COM: ``SERVERCALL_REJECTED`` / ``RetryRejectedCall``).

The hand-over between the target (which rejects) and the waiters (which settle) is serialized
by ``_rejection_lock``. Exactly one waiter claims each rejection: it either gives up (the call
fails with CallRejectedError, or with the filter's own AptioError) or moves the call back to
PENDING and re-sends it after the delay; the other waiters then see PENDING and keep waiting.
"""

from __future__ import annotations

import enum
import threading
import time
from typing import Any, Final

from .._values.enums import ServerCall
from .._values.errors import AptioError, CallRejectedError
from .contract import DONE, PENDING, CallRecord

__all__ = ["Settled", "after_wake", "reject", "resend", "settle_rejection"]

_monotonic = time.monotonic

#: Serializes the rare hand-over of a rejected call between the target and its waiters.
_rejection_lock = threading.Lock()


class Settled(enum.Enum):
    """What a waiter does next, when it is not to re-send the call after a delay."""

    #: The outcome is final (a result, an error, cancelled, or rejected for good): return it.
    FINAL = "final"
    #: Another waiter claimed the rejection and re-sends the call: wait for the next attempt.
    KEEP_WAITING = "keep_waiting"


_FINAL: Final = Settled.FINAL
_KEEP_WAITING: Final = Settled.KEEP_WAITING


def reject(call: CallRecord[Any], verdict: ServerCall) -> None:
    """Target side: the apartment's filter refused the call; its caller's filter decides."""
    with _rejection_lock:
        call._ever_rejected = True
        call._rejected = verdict
        call._state = DONE
    call._wake_waiters()


def after_wake(call: CallRecord[Any]) -> float | Settled:
    """What a woken waiter does next: the outcome is final, keep waiting, or re-send the call
    after the returned number of seconds."""
    if call._cancelled:
        return _FINAL
    if call._state != DONE:
        return _KEEP_WAITING
    return settle_rejection(call)


def settle_rejection(call: CallRecord[Any]) -> float | Settled:
    """Caller side, on a done call: FINAL if there is nothing to retry (the outcome stands, a
    CallRejectedError included, once the caller's filter gave up), else the delay before this
    waiter re-sends the call.

    Lock-free fast path for a call that was never rejected (the common case): it finishes
    once and never goes back to PENDING, so DONE is final. Any rejection sets
    ``_ever_rejected`` (before DONE, under the lock) and every later settle takes the lock.
    """
    if not call._ever_rejected and call._state == DONE:
        return _FINAL
    with _rejection_lock:
        if call._state != DONE:
            return _KEEP_WAITING
        verdict = call._rejected
        if verdict is None:
            return _FINAL
        caller = call._caller
        elapsed = _monotonic() - call._created
        delay: float | None
        try:
            delay = (caller._retry_delay(call, elapsed, verdict) if caller is not None
                     else None)
        except AptioError as error:
            call._error = error
            delay = None
        else:
            if delay is None:
                call._error = rejected_error(call, verdict, elapsed)
            else:
                call._state = PENDING  # other waiters wait for the next attempt
        call._rejected = None
    if delay is None:
        call._wake_waiters()  # every other waiter sees the final outcome
        return _FINAL
    return delay


def resend(call: CallRecord[Any]) -> None:
    """Send a rejected call again (caller side, after its filter chose to retry)."""
    call._admitted = False
    call._state = PENDING
    apartment = call._apartment
    if apartment._closing:
        call._fail_undelivered()
    else:
        apartment._post(call)


def rejected_error(call: CallRecord[Any], verdict: ServerCall,
                   elapsed: float) -> CallRejectedError:
    return CallRejectedError(
        f"{call._method}() was answered {verdict.name} by the message filter of "
        f"{call._apartment.name!r} and the caller gave up after {elapsed:.3f} s; to retry, "
        "install a MessageFilter in the calling STA whose retry_rejected_call returns a delay"
    )
