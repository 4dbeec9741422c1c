"""Reentrancy gates (``Reentrancy.CALL_CHAIN`` and ``NONE``).

An object whose policy is CALL_CHAIN or NONE gets a :class:`Gate`: one logical call is inside
the object at a time; other calls queue, FIFO. A call is *nested* when a call inside the object
is its ancestor (so that call waits on it, directly or through other apartments). Under
CALL_CHAIN a nested call is let in; under NONE it raises DeadlockError, since it would wait for
itself. Sibling calls of one chain (a fan-out with ``gather``) are not nested: they queue.
Every queued call is an edge of the deadlock graph (:mod:`aptio._admission.deadlock`).
"""

from __future__ import annotations

from typing import Any

from .._call.contract import CallRecord
from .._call.wait_watch import wait_watch
from .._values.enums import Reentrancy
from .._values.errors import DeadlockError
from .deadlock import GraphGate, break_cycle, graph_lock, path_between

__all__ = ["Gate"]


class Gate(GraphGate):
    """Lets one causality chain at a time into one object (CALL_CHAIN / NONE).

    Invariant: every field is read and written only under ``graph_lock``. ``queue`` holds the
    waiting calls in arrival order (a dict used as an ordered set); a call is in it exactly
    while it is counted in ``wait_watch.queued``.
    """

    __slots__ = ("chain", "holders", "label", "queue")

    def __init__(self, label: str) -> None:
        self.label = label
        self.chain = 0  # the owning chain's causality id; meaningful while holders exist
        self.holders: list[CallRecord[Any]] = []  # calls of that chain inside the object
        self.queue: dict[CallRecord[Any], None] = {}

    def enter(self, call: CallRecord[Any], policy: Reentrancy | None) -> bool:
        chain = call._causality
        broken: tuple[CallRecord[Any], DeadlockError] | None = None
        with graph_lock:
            if not self.holders:
                self.chain = chain
                self.holders.append(call)
                return True
            nested = any(call._descends_from(holder) for holder in self.holders)
            if nested and policy is Reentrancy.CALL_CHAIN:
                self.holders.append(call)
                return True
            if nested:
                broken = (call, DeadlockError(
                    f"{call.describe()} re-entered {self.label}, whose reentrancy policy is "
                    "NONE, from its own call chain: it would wait for itself. Use "
                    "Reentrancy.CALL_CHAIN, or do not call back into the object"
                ))
            else:
                self.queue[call] = None
                wait_watch.queued += 1  # then the edges are read (see the deadlock module)
                for holder in list(self.holders):
                    path = path_between(holder, call)
                    if path is not None:
                        broken = break_cycle([call, *path[:-1]])
                        break
        if broken is not None:
            victim, error = broken
            victim._finish(None, error)
        return False

    def exit(self, call: CallRecord[Any]) -> CallRecord[Any] | None:
        with graph_lock:
            try:
                self.holders.remove(call)
            except ValueError:
                return None
            if self.holders or not self.queue:
                return None
            successor = next(iter(self.queue))
            del self.queue[successor]
            wait_watch.queued -= 1
            self.chain = successor._causality
            self.holders.append(successor)
            return successor

    def withdraw(self, call: CallRecord[Any]) -> bool:
        with graph_lock:
            return self.take_out(call)

    def blockers(self, call: CallRecord[Any]) -> list[CallRecord[Any]] | None:
        return list(self.holders) if call in self.queue else None

    def take_out(self, call: CallRecord[Any]) -> bool:
        if call not in self.queue:
            return False
        del self.queue[call]
        wait_watch.queued -= 1
        return True

    def queued_calls(self) -> list[CallRecord[Any]]:
        """A snapshot of the calls waiting here (for diagnostics; any thread)."""
        with graph_lock:
            return list(self.queue)
