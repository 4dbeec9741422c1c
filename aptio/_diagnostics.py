"""Diagnosing a stuck program: per-apartment statistics and a dump of every call in flight.

``aptio.dump_calls()`` answers "what is everybody waiting on?" in one call: each queued,
running or gate-blocked call with its apartment, object, method, causality chain, age, and the
calls it is itself waiting on. It reads shared structures without stopping anything, so it is a
snapshot: safe to call from any thread, exact only when things hold still (as they do in a hang).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs

from ._kinds import ApartmentKind
from ._state import executing_sync_calls

if TYPE_CHECKING:
    from ._apartment import Apartment
    from ._call import Call

__all__ = ["ApartmentStatistics", "InFlightCall", "apartment_statistics", "dump_calls",
           "format_calls"]


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


def apartment_statistics(apartment: Apartment) -> ApartmentStatistics:
    return ApartmentStatistics(
        name=apartment.name,
        kind=apartment.kind,
        closed=apartment.is_closed,
        queued=len(apartment._queued_calls()),
        running=len(apartment._executing_calls()) + len(apartment._running),
        awaiting=sum(apartment._outgoing.values()) if apartment._outgoing is not None else 0,
        has_message_filter=apartment._message_filter is not None,
    )


def _entry(call: Call[Any], state: str, now: float) -> InFlightCall:
    target = call._target
    return InFlightCall(
        apartment=call._apartment.name,
        object=type(target).__qualname__ if target is not None else "(creation)",
        method=call._method,
        causality_id=call.causality_id,
        state=state,
        age=now - call._created,
        waits_on=tuple(c.describe() for c in list(call._awaiting or ())),
    )


def dump_calls() -> tuple[InFlightCall, ...]:
    """Every call in flight in the running aptio runtime (empty when none is running)."""
    from . import _proxy, _runtime

    runtime = _runtime._runtime
    if runtime is None:
        return ()
    now = time.monotonic()
    seen: set[int] = set()
    entries: list[InFlightCall] = []

    def add(call: Call[Any], state: str) -> None:
        if id(call) not in seen and not call.done():
            seen.add(id(call))
            entries.append(_entry(call, state, now))

    executing = executing_sync_calls()  # every thread's, once (not once per apartment)
    for apartment in runtime.apartments():
        for call in apartment._executing_calls(executing) + list(apartment._running):
            add(call, "running")
        for call in apartment._queued_calls():
            add(call, "queued")
    # An atomic copy of the weak references: iterating the WeakValueDictionary itself would
    # fail if another thread made a stub meanwhile.
    for ref in _proxy._stubs.valuerefs():
        stub = ref()
        gate = stub.gate if stub is not None else None
        if gate is not None:
            for call in list(gate.queue):
                add(call, "waiting at gate")
    return tuple(entries)


def format_calls() -> str:
    """``dump_calls()`` as text, one call per line, oldest first."""
    calls = sorted(dump_calls(), key=lambda c: -c.age)
    if not calls:
        return "no aptio calls in flight"
    return "\n".join(str(call) for call in calls)
