"""The primitives' waits as a call recording sees them: the hook through which a recording
(:mod:`aptio._trace`) hears of every coroutine or thread that parks on an aptio primitive.

Only waits that park are reported (the uncontended paths never get here), and the hook is read
once per park, so with no recording the primitives pay one attribute read on their slow path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["ParkHook", "park_hook"]


class ParkHook:
    """Where a recording plugs in. ``on_park(primitive, blocking)`` is called as a wait parks
    (``primitive`` is None where the parking code does not know it; ``blocking`` is True for a
    thread, False for a coroutine) and returns what to call once the wait ends, however it
    ends (woken, timed out, cancelled)."""

    __slots__ = ("on_park",)

    def __init__(self) -> None:
        self.on_park: Callable[[object | None, bool], Callable[[], None]] | None = None


park_hook: Final = ParkHook()
