"""An STA's side of input-synchronized calls (see :mod:`aptio._call.input_sync`): while one
of its calls is input-synchronized, incoming calls wait, and callbacks of that call's chain
fail with InputSyncError.

Invariant: every field is touched only on the STA's thread (the ends of input-synchronized
calls are posted there). While ``active``, the STA's ``_screening`` is on, so every incoming
call passes :meth:`InputHold.screen` before it runs; held calls keep their order, and go back
into the inbox, first, when the last input-synchronized call ends.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from .._call.contract import CallRecord
from .._call.input_sync import InputSyncEnd
from .._values.errors import DisconnectedError, InputSyncError

__all__ = ["InputHold"]


class InputHold:
    """See the module docstring."""

    __slots__ = ("_chains", "_held", "_on_change", "_post", "_repost", "name")

    def __init__(self, name: str, on_change: Callable[[bool], None],
                 post: Callable[[Callable[[], None]], None],
                 repost: Callable[[list[CallRecord[Any]]], None]) -> None:
        self.name = name
        self._on_change = on_change  # the STA's screening: on while active
        self._post = post  # run on the STA's thread
        self._repost = repost  # put held calls back into the STA's inbox, ahead, in order
        #: causality chain -> input-synchronized calls of it not returned yet
        self._chains: dict[int, int] = {}
        self._held: collections.deque[CallRecord[Any]] = collections.deque()

    @property
    def active(self) -> bool:
        return bool(self._chains)

    def begin(self, call: CallRecord[Any]) -> None:
        """``call`` is input-synchronized (on the STA's thread, before it is sent)."""
        chain = call._causality
        first = not self._chains
        self._chains[chain] = self._chains.get(chain, 0) + 1
        if first:
            self._on_change(True)
        call._add_waiter(InputSyncEnd(call, self._end, self._post))

    def _end(self, call: CallRecord[Any]) -> None:
        chain = call._causality
        left = self._chains.get(chain, 0) - 1
        if left > 0:
            self._chains[chain] = left
        else:
            self._chains.pop(chain, None)
        if not self._chains:
            self._on_change(False)
            held, self._held = list(self._held), collections.deque()
            if held:
                self._repost(held)

    def screen(self, call: CallRecord[Any]) -> bool:
        """An incoming call while active: a callback of an input-synchronized chain fails,
        anything else waits. Returns False (the call does not run now)."""
        if call._causality in self._chains:
            call._finish(None, InputSyncError(
                f"{call.describe()} calls back into {self.name!r} while it waits on an "
                "input-synchronized call of the same chain: the STA takes no calls until it "
                "returns (COM: RPC_E_CANTCALLOUT_ININPUTSYNCCALL); return what the input "
                "handler needs instead, or make the call outside the handler"))
            return False
        call._admitted = False  # admitted again (message filter, gate) when it comes back
        self._held.append(call)
        return False

    def waiting(self) -> list[CallRecord[Any]]:
        return list(self._held)

    def fail_all(self) -> None:
        """The STA stops: held calls fail as queued calls do."""
        held, self._held = self._held, collections.deque()
        for call in held:
            call._finish(None, DisconnectedError(
                f"{call._method}(): apartment {self.name!r} is shut down; create the object "
                "again in a running apartment"))
