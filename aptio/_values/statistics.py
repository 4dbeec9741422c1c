"""Snapshots for diagnosing a stuck program: per-apartment statistics and calls in flight."""

from __future__ import annotations

import attrs

from .enums import ApartmentKind

__all__ = ["ApartmentStatistics", "InFlightCall"]


@attrs.frozen
class ApartmentStatistics:
    """What one apartment is doing (``apartment.statistics()``)."""

    name: str
    kind: ApartmentKind
    closed: bool
    #: Calls sent to the apartment and not started yet.
    queued: int
    #: Calls running: sync methods executing right now plus coroutine methods in progress.
    running: int
    #: Outgoing calls the apartment's code is suspended on (STAs).
    awaiting: int
    has_message_filter: bool


@attrs.frozen
class InFlightCall:
    """One call that has not finished (``aptio.dump_calls()``)."""

    apartment: str
    object: str
    method: str
    causality_id: int
    #: "queued", "running", "waiting at gate" or "rejected".
    state: str
    #: Seconds since the call was sent.
    age: float
    #: The calls this one's code is waiting on, described.
    waits_on: tuple[str, ...]

    def __str__(self) -> str:
        waits = f"; waits on {', '.join(self.waits_on)}" if self.waits_on else ""
        return (f"[{self.apartment}] {self.object}.{self.method}() chain {self.causality_id}: "
                f"{self.state} for {self.age:.3f} s{waits}")
