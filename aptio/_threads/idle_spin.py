"""An STA's idle spin: after a drain that served a lone call emptied its inbox, the loop's thread
polls the inbox for a few microseconds before it goes back to its loop and sleeps.

Why: on a machine whose idle CPUs halt (most virtual machines), waking a sleeping thread from
another thread costs tens of microseconds, twice per sequential round trip. An STA that
serves calls one after another (a database connection's thread) can save the wake-up of its
own side: the next call usually arrives soon after the reply went out, and a thread that is
still polling sees it at once. The price is CPU: each such drain is followed by up to
``idle_spin`` seconds of a busy CPU, and the loop's other work (timers, I/O, Tasks) waits that
long. (Calls that come several at a time gather while the loop sleeps; spinning there would
split them into smaller batches: see ``inbox.py``.) So it is off unless asked for, per STA
(``aptio.start_sta(idle_spin=...)``).

The poll runs in C without the interpreter lock (``idle_spin.c``, built with the compiled call
path): a poll that held the lock would keep out the very thread that posts the next call. The
pure-Python build has no such code; there the option is accepted and does nothing
(:data:`AVAILABLE` says which), so a program behaves the same with either build.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .._compiled import COMPILED

if TYPE_CHECKING:
    from .inbox import IdleWaiter

__all__ = ["AVAILABLE", "LONGEST", "idle_waiter", "validate_idle_spin"]

#: The longest idle spin accepted, in seconds. Past a millisecond a spin costs more CPU than
#: the wake-up it may save on any machine measured, and delays the loop's other work visibly.
LONGEST: Final = 0.001


def _load() -> Callable[[int], IdleWaiter] | None:
    if not COMPILED:  # the native helper belongs to the compiled build (see the docstring)
        return None
    try:
        from ._idle_spin import IdleSpin
    except ImportError:  # a build from before the helper existed: reinstall to get it
        return None
    return IdleSpin


_IDLE_SPIN: Final = _load()

#: True if an idle spin can run here (the compiled build, with its native helper).
AVAILABLE: Final = _IDLE_SPIN is not None


def validate_idle_spin(seconds: object) -> float:
    """``seconds`` as an idle spin's budget, or a TypeError or ValueError saying what is
    accepted."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"idle_spin is a number of seconds (0 for none, at most {LONGEST}), "
                        f"not {type(seconds).__qualname__}")
    value = float(seconds)
    if not math.isfinite(value) or not 0.0 <= value <= LONGEST:
        raise ValueError(f"idle_spin is a number of seconds from 0 (none) to {LONGEST}, not "
                         f"{seconds!r}: an STA spins for at most that long after serving a "
                         "call that came alone")
    return value


def idle_waiter(seconds: float) -> IdleWaiter | None:
    """The native waiter for an idle spin of ``seconds`` (already validated), or None when the
    spin is off or cannot run here."""
    budget_ns = round(seconds * 1e9)
    if _IDLE_SPIN is None or budget_ns <= 0:
        return None
    return _IDLE_SPIN(budget_ns)
