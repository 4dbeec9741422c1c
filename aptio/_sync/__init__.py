"""Layer 3: synchronization primitives that work across event loops and threads at once.

``Lock``, ``Event``, ``Semaphore``, ``BoundedSemaphore`` and ``Condition``: one instance serves
coroutines on any number of event loops (asyncio or uvloop, in any threads) and plain blocking
threads together, with asyncio's coroutine API and a blocking API for threads.  One module per
primitive; see ``waiter`` for the waiter and the claim protocol they share, and
docs/primitives.md for the guarantees.
"""

from __future__ import annotations

from .condition import Condition, ConditionStatistics
from .event import Event, EventStatistics
from .lock import Lock, LockStatistics
from .semaphore import BoundedSemaphore, Semaphore, SemaphoreStatistics
from .waiter import WouldBlock

__all__ = (
    "Lock",
    "Event",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "WouldBlock",
    "LockStatistics",
    "EventStatistics",
    "SemaphoreStatistics",
    "ConditionStatistics",
)
