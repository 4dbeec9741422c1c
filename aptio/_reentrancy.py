"""Reentrancy gates and deadlock detection.

An object whose policy is CALL_CHAIN or NONE gets a :class:`Gate`: one logical call is inside
the object at a time; other calls queue, FIFO. A call is *nested* when a call inside the object
is its ancestor (so that call waits on it, directly or through other apartments). Under
CALL_CHAIN a nested call is let in; under NONE it raises DeadlockError, since it would wait for
itself. Sibling calls of one chain (a fan-out with ``gather``) are not nested: they queue.

Deadlock detection works on a graph of calls with two kinds of edges: "c awaits d" (a caller's
task or thread is suspended on d) and "q is queued at a gate held by h". Every cycle contains
a queued call, so the graph is searched only while some call is queued (``_queued``), under
``_graph_lock``, from the edge that was added last:
  * a call is queued at a gate (the gate path);
  * a caller starts awaiting a call (the await path).
Ordering invariant (no cycle is missed): the await path publishes its edge and then reads
``_queued``; the gate path increments ``_queued`` and then reads edges. Whichever comes second
sees the other's edge. The cycle is broken by failing one queued call with DeadlockError;
its caller unwinds and releases what it holds, so the others proceed.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ._exceptions import DeadlockError
from ._models import Reentrancy

if TYPE_CHECKING:
    from ._call import Call

__all__ = ["Gate", "with_reentrancy", "method_policy", "await_edge_added", "gate_counters",
           "REENTRANCY_ATTRIBUTE"]

F = TypeVar("F", bound=Callable[..., Any])

REENTRANCY_ATTRIBUTE: Final = "__aptio_reentrancy__"

_graph_lock = threading.Lock()


class _GateCounters:
    queued = 0  # calls queued at gates right now; changed under _graph_lock


gate_counters = _GateCounters()


def with_reentrancy(policy: Reentrancy) -> Callable[[F], F]:
    """Override the class's reentrancy policy for one method of a ``@coclass``:
    ``@aptio.with_reentrancy(aptio.Reentrancy.INTERLEAVE)`` lets a read-only query in while a
    CALL_CHAIN call of another chain is suspended in the object."""
    if not isinstance(policy, Reentrancy):
        raise TypeError(f"with_reentrancy() takes an aptio.Reentrancy, not {policy!r}")

    def decorate(method: F) -> F:
        if isinstance(method, type):
            raise TypeError(
                "with_reentrancy() decorates methods; for a whole class use "
                "@aptio.coclass(reentrancy=...)"
            )
        if not callable(method):
            raise TypeError(f"with_reentrancy() decorates methods, not {method!r}")
        setattr(method, REENTRANCY_ATTRIBUTE, policy)
        return method

    return decorate


def method_policy(attribute: object) -> Reentrancy | None:
    """The per-method override on a class attribute (a function, or a static/classmethod)."""
    policy = getattr(attribute, REENTRANCY_ATTRIBUTE, None)
    if policy is None:
        policy = getattr(getattr(attribute, "__func__", None), REENTRANCY_ATTRIBUTE, None)
    return policy if isinstance(policy, Reentrancy) else None


class Gate:
    """Lets one causality chain at a time into one object (CALL_CHAIN / NONE)."""

    __slots__ = ("chain", "holders", "label", "queue")

    def __init__(self, label: str) -> None:
        self.label = label
        self.chain = 0  # the owning chain's causality id; meaningful while holders exist
        self.holders: list[Call[Any]] = []  # calls of that chain inside the object
        self.queue: collections.deque[Call[Any]] = collections.deque()

    def enter(self, call: Call[Any], policy: Reentrancy) -> bool:
        """Target side, before the call runs. True: run it now. False: it was queued (it is
        started when the gate frees) or failed with DeadlockError."""
        chain = call.causality_id
        with _graph_lock:
            if not self.holders:
                self.chain = chain
                self.holders.append(call)
                return True
            nested = any(call._descends_from(holder) for holder in self.holders)
            if nested and policy is Reentrancy.CALL_CHAIN:
                self.holders.append(call)
                return True
            if nested:
                broken: tuple[Call[Any], DeadlockError] | None = (call, DeadlockError(
                    f"{call.describe()} re-entered {self.label}, whose reentrancy policy is "
                    "NONE, from its own call chain: it would wait for itself. Use "
                    "Reentrancy.CALL_CHAIN, or do not call back into the object"
                ))
            else:
                self.queue.append(call)
                call._gate_queued = True
                gate_counters.queued += 1
                broken = None
                for holder in list(self.holders):
                    path = _path(holder, call)
                    if path is not None:
                        broken = _break([call, *path[:-1]])
                        break
        if broken is not None:
            victim, error = broken
            victim._finish(None, error)
        return False

    def exit(self, call: Call[Any]) -> Call[Any] | None:
        """After ``call`` finished (any thread): the next call to admit, if the gate frees."""
        with _graph_lock:
            try:
                self.holders.remove(call)
            except ValueError:
                return None
            if self.holders:
                return None
            while self.queue:
                successor = self.queue.popleft()
                successor._gate_queued = False
                gate_counters.queued -= 1
                self.chain = successor.causality_id
                self.holders.append(successor)
                return successor
        return None

    def withdraw(self, call: Call[Any]) -> bool:
        """Take a queued call out (it was cancelled or its apartment closed)."""
        with _graph_lock:
            if not call._gate_queued:
                return False
            self.queue.remove(call)
            call._gate_queued = False
            gate_counters.queued -= 1
            return True


def await_edge_added(awaiter: Call[Any], awaited: Call[Any]) -> None:
    """The await path: ``awaiter`` now waits on ``awaited``. Call after publishing the edge,
    when ``gate_counters.queued`` (read after publishing) is non-zero."""
    with _graph_lock:
        path = _path(awaited, awaiter)
        broken = None if path is None else _break(path)
    if broken is not None:
        victim, error = broken
        victim._finish(None, error)


def _successors(call: Call[Any]) -> list[Call[Any]]:
    if call._gate_queued:
        gate = call._gate
        return list(gate.holders) if gate is not None else []
    awaiting = call._awaiting
    return list(awaiting) if awaiting else []


def _path(start: Call[Any], target: Call[Any]) -> list[Call[Any]] | None:
    """A path start -> ... -> target along wait edges, if there is one (DFS over a small
    graph). Caller holds _graph_lock."""
    stack: list[tuple[Call[Any], list[Call[Any]]]] = [(start, [start])]
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


def _break(cycle: list[Call[Any]]) -> tuple[Call[Any], DeadlockError] | None:
    """Pick the victim (the first queued call in the cycle), take it out of its gate, and
    return it with its error; the caller finishes it outside the lock. Holds _graph_lock."""
    victim = next((c for c in cycle if c._gate_queued), None)
    if victim is None or victim._gate is None:
        return None
    victim._gate.queue.remove(victim)
    victim._gate_queued = False
    gate_counters.queued -= 1
    steps = " -> ".join(c.describe() for c in cycle)
    return victim, DeadlockError(
        f"deadlock: a cycle of waits between serialized objects: {steps} -> back to the "
        f"start. {victim.describe()} was failed to break it; do not call back into a "
        "CALL_CHAIN/NONE object from another call chain while it waits on you"
    )
