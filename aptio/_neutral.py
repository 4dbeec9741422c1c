"""The neutral apartment: no threads of its own; a call runs on the caller's thread.

COM does not serialize calls into the NA (COM_SPEC D9); aptio does, one call at a time per
object, with an async-aware lock (coroutine callers wait without blocking their loop, threads
block). Inside such a call ``aptio.current_apartment()`` reports the NEUTRAL apartment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._apartment import Apartment
from ._call import Call
from ._kinds import ApartmentKind
from ._state import neutral_override

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["NeutralApartment"]


class NeutralApartment(Apartment):
    """The process's one neutral apartment (COM: NA)."""

    __slots__ = ()

    #: Every caller enters the NA on its own thread.
    _always_inline = True

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime, ApartmentKind.NEUTRAL, "NA")

    def _is_current(self) -> bool:
        return neutral_override.get() is self

    def _run_here(self, call: Call[Any]) -> None:
        token = neutral_override.set(self)
        try:
            call._start()
        finally:
            neutral_override.reset(token)

    def _admit(self, call: Call[Any]) -> None:
        self._run_here(call)

    def _post(self, call: Call[Any]) -> None:  # pragma: no cover - _invoke never posts here
        self._run_here(call)

    async def shutdown(self, timeout: float | None = None) -> None:
        self._closing = True
        self._runtime._forget(self)
