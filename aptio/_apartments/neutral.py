"""The neutral apartment: no threads of its own; a call runs on the caller's thread.

COM does not serialize calls into the NA (COM_SPEC D9); aptio does, one call at a time per
object (the stub's :class:`~aptio._proxy.neutral_guard.NeutralGuard`, applied as the call is
sent). Inside such a call ``aptio.current_apartment()`` reports NEUTRAL.
"""

from __future__ import annotations

from typing import Any

from .._call.context import enter_neutral, neutral_override
from .._call.contract import CallRecord
from .._values.enums import ApartmentKind
from .base import Apartment, Owner

__all__ = ["NeutralApartment"]


class NeutralApartment(Apartment):
    """The process's one neutral apartment (COM: NA)."""

    __slots__ = ()

    def __init__(self, owner: Owner) -> None:
        super().__init__(owner, ApartmentKind.NEUTRAL, "NA", "na")
        self._inline_only = True  # every caller enters the NA on its own thread

    def _is_current(self) -> bool:
        return neutral_override.get() is self

    def _run_here(self, call: CallRecord[Any]) -> None:
        token = enter_neutral(self)
        try:
            call._deliver()
        finally:
            neutral_override.reset(token)

    def _admit(self, call: CallRecord[Any]) -> None:
        self._run_here(call)

    def _post(self, call: CallRecord[Any]) -> None:
        self._run_here(call)  # a re-sent call (after a rejection) runs on the sender's thread

    async def shutdown(self, timeout: float | None = None) -> None:
        self._closing = True
        self._owner.forget(self)
