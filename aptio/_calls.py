"""Causality and call information (COM: causality IDs, CALLTYPE).

Every call knows the call it runs in (:func:`running_call`): a coroutine call through the
``current_call_var`` of its Task's context, a sync method call through its thread's stack of
executing sync calls. A call made from inside another call inherits that call's causality id
(the same logical thread); a call made from outside any call starts a new one. Work a sync
method schedules (a task, a callback) runs after the method returned, outside its call.
"""

from __future__ import annotations

import contextvars
import enum
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._state import thread_local

if TYPE_CHECKING:
    from ._apartment import Apartment
    from ._call import Call

__all__ = ["CallInfo", "CallType", "current_call", "current_call_var", "new_causality_id",
           "running_call"]


class CallType(enum.Enum):
    """How a call relates to what its target apartment is doing (COM: ``CALLTYPE``)."""

    #: A call of a new logical thread, while the target has no outgoing call pending.
    TOPLEVEL = "toplevel"
    #: A call of the same logical thread as an outgoing call the target is waiting on.
    NESTED = "nested"
    #: A call of a new logical thread, arriving while the target waits on an outgoing call.
    TOPLEVEL_CALLPENDING = "toplevel_callpending"


#: The coroutine call running in this context, or None. (A sync method's call is not set
#: here but pushed on its thread's ``sync_calls``: a context variable costs two HAMT copies and
#: a token per call, a list push and pop far less. See :func:`running_call`.)
current_call_var: contextvars.ContextVar[Call[Any] | None] = contextvars.ContextVar(
    "aptio_current_call", default=None
)


def running_call() -> Call[Any] | None:
    """The innermost aptio call the calling code runs in: the sync method call executing on
    this thread, else the coroutine call of this context, else None."""
    calls = thread_local.state.sync_calls
    if calls:
        call = calls[-1]
        if call is not None:
            return call
    return current_call_var.get()

#: A fresh causality id (an opaque int, unique in the process). The counter's own C method:
#: thread-safe under the GIL, and no Python frame on the per-call path.
new_causality_id: Callable[[], int] = itertools.count(1).__next__


@attrs.frozen
class CallInfo:
    """What a method can learn about the call that is running it (``aptio.current_call()``)."""

    #: The logical thread of calls this call belongs to (COM: causality ID).
    causality_id: int
    #: The apartment the call came from, or None for a thread in no apartment.
    caller: Apartment | None
    #: The target apartment, where the method runs.
    apartment: Apartment | None
    #: The method's name (``"__init__"`` for a creation).
    method: str
    #: TOPLEVEL, NESTED or TOPLEVEL_CALLPENDING.
    call_type: CallType = CallType.TOPLEVEL
    _call: Call[Any] | None = attrs.field(default=None, repr=False, eq=False, alias="call")

    @property
    def cancelled(self) -> bool:
        """True once the caller cancelled this call: a sync method that cannot be interrupted
        polls this and returns early (COM: ``CoTestCancel``)."""
        return self._call is not None and self._call._cancelled


def current_call() -> CallInfo | None:
    """The call the calling code runs in, or None outside any aptio call.

    Inside a sync method: its call, until the method returns. Inside a coroutine method: its
    call, also in the tasks the method creates (they copy its context). A task or callback
    that a sync method schedules runs after the method returned, outside the call.
    """
    call = running_call()
    if call is None:
        return None
    return call.info()
