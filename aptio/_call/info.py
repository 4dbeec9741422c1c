"""``aptio.current_call()`` and :class:`aptio.CallInfo`: what a method can learn about the call
that runs it (COM: causality IDs, CALLTYPE).

Inside a sync method: its call, until the method returns. Inside a coroutine method: its call,
also in the tasks the method creates (they copy its context). Work a sync method schedules (a
task, a callback) runs after the method returned, outside its call.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._values.enums import CallType
from .context import running_call
from .contract import ApartmentContract, CallRecord

__all__ = ["CallInfo", "current_call", "info_of"]


@attrs.frozen
class CallInfo:
    """What a method can learn about the call that is running it (``aptio.current_call()``)."""

    #: The logical thread of calls this call belongs to (COM: causality ID).
    causality_id: int
    #: The apartment the call came from (an :class:`aptio.Apartment`), or None for a thread in
    #: no apartment.
    caller: ApartmentContract | None
    #: The target apartment (an :class:`aptio.Apartment`), where the method runs.
    apartment: ApartmentContract | None
    #: The method's name (``"__init__"`` for a creation).
    method: str
    #: TOPLEVEL, NESTED or TOPLEVEL_CALLPENDING.
    call_type: CallType = CallType.TOPLEVEL
    _call: CallRecord[Any] | None = attrs.field(default=None, repr=False, eq=False,
                                                 alias="call")

    @property
    def cancelled(self) -> bool:
        """True once the caller cancelled this call: a sync method that cannot be interrupted
        polls this and returns early (COM: ``CoTestCancel``)."""
        return self._call is not None and self._call._cancelled


def info_of(call: CallRecord[Any]) -> CallInfo:
    """``call`` as a frozen :class:`CallInfo`."""
    return CallInfo(
        causality_id=call._causality,
        caller=call._caller,
        apartment=call._apartment,
        method=call._method,
        call_type=call._call_type,
        call=call,
    )


def current_call() -> CallInfo | None:
    """The call the calling code runs in, or None outside any aptio call.

    Inside a sync method: its call, until the method returns. Inside a coroutine method: its
    call, also in the tasks the method creates (they copy its context). A task or callback
    that a sync method schedules runs after the method returned, outside the call.
    """
    call = running_call()
    if call is None:
        return None
    return info_of(call)
