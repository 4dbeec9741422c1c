"""Deadlock detection over a graph of calls.

Two kinds of edges: "c awaits d" (a caller's task or thread is suspended on d: ``c._awaiting``)
and "q is queued at a gate held by h" (:meth:`GraphGate.blockers`). Every cycle contains a
queued call, so the graph is searched only while some call is queued
(``wait_watch.queued``), under :data:`graph_lock`, from the edge that was added last:
  * a call is queued at a gate (the gate path, :meth:`GraphGate` implementations);
  * a caller starts awaiting a call (the await path, :func:`await_edge_added`).
Ordering invariant (no cycle is missed): the await path publishes its edge and then reads
``wait_watch.queued``; the gate path increments it and then reads edges. Whichever comes second
sees the other's edge. The cycle is broken by failing one queued call with DeadlockError; its
caller unwinds and releases what it holds, so the others proceed.
"""

from __future__ import annotations

import abc
import threading
from typing import Any, Final

from .._call.contract import CallRecord, GateContract
from .._call.wait_watch import wait_watch
from .._values.errors import DeadlockError

__all__ = ["GraphGate", "await_edge_added", "break_cycle", "graph_lock", "path_between"]

#: Guards every gate's state and the search; nobody waits or wakes anyone while holding it.
graph_lock: Final = threading.Lock()


class GraphGate(GateContract):
    """A gate as the detector sees one. Both methods are called with :data:`graph_lock` held."""

    __slots__ = ()

    @abc.abstractmethod
    def blockers(self, call: CallRecord[Any]) -> list[CallRecord[Any]] | None:
        """The calls ``call`` waits for while queued here, or None if it is not queued."""

    @abc.abstractmethod
    def take_out(self, call: CallRecord[Any]) -> bool:
        """Remove a queued call (True), or False if it is not queued."""


def await_edge_added(awaiter: CallRecord[Any], awaited: CallRecord[Any]) -> None:
    """The await path: ``awaiter`` now waits on ``awaited``; called after publishing the edge,
    when ``wait_watch.queued`` (read after publishing) is non-zero."""
    with graph_lock:
        path = path_between(awaited, awaiter)
        broken = None if path is None else break_cycle(path)
    if broken is not None:
        victim, error = broken
        victim._finish(None, error)


wait_watch.on_await = await_edge_added


def _successors(call: CallRecord[Any]) -> list[CallRecord[Any]]:
    gate = call._gate
    if isinstance(gate, GraphGate):
        blockers = gate.blockers(call)
        if blockers is not None:
            return blockers
    awaiting = call._awaiting
    return list(awaiting) if awaiting else []


def path_between(start: CallRecord[Any], target: CallRecord[Any]) -> list[CallRecord[Any]] | None:
    """A path start -> ... -> target along wait edges, if there is one (DFS over a small
    graph). Caller holds :data:`graph_lock`."""
    stack: list[tuple[CallRecord[Any], list[CallRecord[Any]]]] = [(start, [start])]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen or node._cancelled:
            continue
        seen.add(id(node))
        for successor in _successors(node):
            stack.append((successor, [*path, successor]))
    return None


def break_cycle(cycle: list[CallRecord[Any]]) -> tuple[CallRecord[Any], DeadlockError] | None:
    """Pick the victim (the first queued call in the cycle), take it out of its gate, and
    return it with its error; the caller finishes it outside the lock. Holds graph_lock."""
    for victim in cycle:
        gate = victim._gate
        if isinstance(gate, GraphGate) and gate.take_out(victim):
            steps = " -> ".join(c.describe() for c in cycle)
            return victim, DeadlockError(
                f"deadlock: a cycle of waits between serialized objects: {steps} -> back to "
                f"the start. {victim.describe()} was failed to break it; do not call back into "
                "a CALL_CHAIN/NONE object from another call chain while it waits on you"
            )
    return None
