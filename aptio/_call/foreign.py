"""Stand-ins for calls running in other processes, in a chain of calls that crossed processes.

A call that arrives from another process carries its ancestry: the calls it is nested in.
Those that run elsewhere are represented here by :class:`ForeignCall` records, linked by
``_parent`` like local calls, so a chain that left this process and came back is recognized
(``_descends_from``) by reentrancy gates and the neutral apartment's guard.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .contract import RUNNING, ApartmentContract, CallRecord

__all__ = ["ForeignCall"]


def _runs_elsewhere(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("a foreign call's stand-in is never run")


class ForeignCall(CallRecord[Any]):
    """A call of another process that local calls are nested in (only its identity and its
    ``_parent`` link are used)."""

    __slots__ = ("key", "node")

    def __init__(self, apartment: ApartmentContract, node: str, key: int, causality: int,
                 parent: CallRecord[Any] | None) -> None:
        super().__init__(apartment, None, "(a call in another process)", _runs_elsewhere, False,
                         (), {}, None, parent, causality, 0.0, False, None, None)
        self._state = RUNNING
        #: Where the call runs, and its key there.
        self.node = node
        self.key = key
