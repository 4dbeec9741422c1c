"""A hold on an apartment's incoming calls, for tests that force an interleaving
(``aptio.testing.hold_calls``): while it is on, calls arriving from other apartments do not
start; they wait in the order they arrived, and a release puts them back ahead of everything
queued after them, in that order.

It works as an STA's input hold does (:mod:`aptio._apartments.input_hold`): while a hold is on,
the apartment's ``_screening`` is on, so every incoming call passes :meth:`CallHold.screen`
before it starts; a held call is marked not admitted, so the message filter and the reentrancy
gate see it again when it comes back.

Threads: on an STA only its thread screens; on the MTA every pool worker and its loop thread
do, and the test releases from its own thread, so the fields are guarded by ``_lock``.
Invariant: a call is in ``_held`` or in ``_passes`` or neither, never both; a call taken out of
``_held`` by a release is handed to ``requeue`` exactly once (outside the lock).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from .._call.contract import CallRecord
from .._values.errors import DisconnectedError

__all__ = ["CallHold"]


class CallHold:
    """See the module docstring."""

    __slots__ = ("_held", "_lock", "_on_held", "_passes", "_requeue", "name")

    def __init__(self, name: str, requeue: Callable[[list[CallRecord[Any]]], None],
                 on_held: Callable[[], None]) -> None:
        self.name = name
        self._requeue = requeue  # back into the apartment's queues, ahead, in order (any thread)
        self._on_held = on_held  # told after each call it holds (on the screening thread)
        self._lock = threading.Lock()
        self._held: collections.deque[CallRecord[Any]] = collections.deque()
        #: Released calls on their way back: they pass the screen once.
        self._passes: set[CallRecord[Any]] = set()

    def screen(self, call: CallRecord[Any]) -> bool:
        """An incoming call: True lets it start (a released one); False means it is held."""
        with self._lock:
            if call in self._passes:
                self._passes.discard(call)
                return True
            call._admitted = False  # admitted again (message filter, gate) when it comes back
            self._held.append(call)
        self._on_held()
        return False

    def count(self) -> int:
        """How many calls are held now."""
        return len(self._held)

    def waiting(self) -> list[CallRecord[Any]]:
        """The held calls, in their order (a snapshot)."""
        with self._lock:
            return list(self._held)

    def release(self, count: int | None, keep_holding: bool) -> int:
        """Send the first ``count`` held calls (all if None) on, in order; they start ahead of
        later calls. With ``keep_holding`` they pass the screen when they come back (the hold
        stays on for the others). Returns how many were released."""
        with self._lock:
            n = len(self._held) if count is None else min(count, len(self._held))
            calls = [self._held.popleft() for _ in range(n)]
            if keep_holding:
                self._passes.update(calls)
        if calls:
            self._requeue(calls)
        return len(calls)

    def fail_all(self) -> None:
        """The apartment stops: held calls fail as queued calls do."""
        with self._lock:
            held, self._held = self._held, collections.deque()
            self._passes.clear()
        for call in held:
            call._finish(None, DisconnectedError(
                f"{call._method}(): apartment {self.name!r} is shut down; create the object "
                "again in a running apartment"))
