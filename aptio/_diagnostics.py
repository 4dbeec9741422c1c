"""Diagnosing a stuck program: a dump of every call in flight.

``aptio.dump_calls()`` answers "what is everybody waiting on?" in one call: each queued,
running or gate-blocked call with its apartment, object, method, causality chain, age, and the
calls it is itself waiting on. It reads shared structures without stopping anything, so it is a
snapshot: safe to call from any thread, exact only when things hold still (as they do in a hang).
Per-apartment figures are ``apartment.statistics()``. ``format_calls()`` also lists the self-waits
on aptio's primitives (``aptio.self_waits()``): a Task or thread waiting on a Lock it holds.
"""

from __future__ import annotations

import time
from typing import Any

from ._call.context import executing_sync_calls
from ._call.contract import DONE, CallRecord
from ._proxy.stub import live_stubs
from ._runtime.entry import current_runtime
from ._sync.waits import self_waits
from ._values.statistics import InFlightCall

__all__ = ["dump_calls", "format_calls"]


def _entry(call: CallRecord[Any], state: str, now: float) -> InFlightCall:
    return InFlightCall(
        apartment=call._apartment.name,
        object=call.target_class_name() or "(creation)",
        method=call._method,
        causality_id=call._causality,
        state=state,
        age=now - call._created,
        waits_on=tuple(c.describe() for c in list(call._awaiting or ())),
    )


def _done(call: CallRecord[Any]) -> bool:
    """``Call.done()``: its final outcome is in (a rejected call may still be re-sent)."""
    return call._cancelled or (call._state == DONE and call._rejected is None)


def dump_calls() -> tuple[InFlightCall, ...]:
    """Every call in flight in the running aptio runtime (empty when none is running)."""
    runtime = current_runtime()
    if runtime is None:
        return ()
    now = time.monotonic()
    seen: set[int] = set()
    entries: list[InFlightCall] = []

    def add(call: CallRecord[Any], state: str) -> None:
        if id(call) not in seen and not _done(call):
            seen.add(id(call))
            entries.append(_entry(call, state, now))

    executing = executing_sync_calls()  # every thread's, once (not once per apartment)
    for apartment in runtime.apartments():
        for call in apartment._executing_calls(executing) + list(apartment._running):
            add(call, "running")
        for call in apartment._queued_calls():
            add(call, "queued")
    for stub in live_stubs():
        gate = stub.gate
        if gate is not None:
            for call in gate.queued_calls():
                add(call, "waiting at gate")
    return tuple(entries)


def format_calls() -> str:
    """``dump_calls()`` as text, one call per line, oldest first, then one line per self-wait
    on a primitive (``aptio.self_waits()``)."""
    calls = sorted(dump_calls(), key=lambda c: -c.age)
    lines = [str(call) for call in calls] + [str(wait) for wait in self_waits()]
    if not lines:
        return "no aptio calls in flight"
    return "\n".join(lines)
