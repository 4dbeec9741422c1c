"""Layer 3: synchronization primitives that work across event loops and threads at once.

``Lock``, ``Event``, ``Semaphore``, ``BoundedSemaphore`` and ``Condition``: one instance serves
coroutines on any number of event loops (asyncio or uvloop, in any threads) and plain blocking
threads together, with asyncio's coroutine API and a blocking API for threads.  Each primitive
is a policy over one ``wait_queue.WaitQueue``, which holds the waiters and the claim protocol
they share; ``context`` writes ``async with`` / ``with`` once for all of them; ``waits`` lists
who waits on what for diagnostics.  docs/primitives.md states the guarantees.
"""

from __future__ import annotations

from .condition import Condition, ConditionStatistics
from .event import Event, EventStatistics
from .lock import Lock, LockStatistics
from .semaphore import BoundedSemaphore, Semaphore, SemaphoreStatistics
from .wait_queue import WouldBlock
from .waits import PrimitiveWait, dump_waits, self_waits

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
    "PrimitiveWait",
    "dump_waits",
    "self_waits",
)
