"""Synchronization primitives that work across event loops and threads at once.

``Lock``, ``Event``, ``Semaphore``, ``BoundedSemaphore`` and ``Condition``: one instance serves
coroutines on any number of event loops (asyncio or uvloop, in any threads) and plain blocking
threads together, with asyncio's coroutine API and a blocking API for threads.  One module per
primitive; see ``_sync_waiter`` for the waiter and the claim protocol they share, and
docs/primitives.md for the guarantees.
"""

from __future__ import annotations

from ._sync_condition import Condition, ConditionStatistics
from ._sync_event import Event, EventStatistics
from ._sync_lock import Lock, LockStatistics
from ._sync_semaphore import BoundedSemaphore, Semaphore, SemaphoreStatistics
from ._sync_waiter import WouldBlock

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
