"""The deadlock detector's view of the await path: the hook through which the admission layer
(:mod:`aptio._admission.deadlock`) hears of every wait while some call is queued at a gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .contract import CallRecord

__all__ = ["WaitWatch", "wait_watch"]


class WaitWatch:
    """The deadlock detector's view of the await path.

    Ordering invariant (no cycle is missed): a waiter publishes its edge (``_awaiting``) and
    then reads ``queued``; a gate increments ``queued`` and then reads the edges. Whichever
    comes second sees the other's work. ``on_await`` is installed by the detector before any
    gate can count a queued call.
    """

    __slots__ = ("on_await", "queued")

    def __init__(self) -> None:
        #: Calls queued at gates right now (written by the gates, under their graph lock).
        self.queued = 0
        #: ``on_await(waiter, awaited)``: a call's code now waits on another call.
        self.on_await: Callable[[CallRecord[Any], CallRecord[Any]], None] | None = None


wait_watch: Final = WaitWatch()
