"""Who waits on which primitive, and who holds it: the primitives' part of diagnosing a hang.

Only queues that have waiters are looked at (the wait queue keeps that set on its slow path), so
listing is cheap and costs the uncontended paths nothing.  Like ``aptio.dump_calls()`` it is a
snapshot taken without stopping anyone: exact only when things hold still, as they do in a hang.
"""

from __future__ import annotations

import asyncio
import threading
from typing import final

import attrs

from .lock import Lock
from .wait_queue import Holder, waiting_queues

__all__ = ["PrimitiveWait", "dump_waits", "self_waits"]


@final
@attrs.frozen
class PrimitiveWait:
    """One Task or thread waiting on an aptio primitive, from :func:`aptio.dump_waits`."""

    #: The Lock, Semaphore, BoundedSemaphore, Event or Condition waited on.
    primitive: object
    #: The waiting ``asyncio.Task`` or ``threading.Thread`` (None: a coroutine outside a Task).
    waiter: Holder | None
    #: Who holds it, for a Lock: the ``asyncio.Task`` or ``threading.Thread`` that acquired it;
    #: None for the other primitives, whose permits and notifications belong to nobody.
    holder: Holder | None

    @property
    def is_self_wait(self) -> bool:
        """True when the waiter holds the lock it waits for: it waits for itself."""
        return self.holder is not None and self.holder is self.waiter

    def __str__(self) -> str:
        waiter = _describe(self.waiter)
        kind = type(self.primitive).__name__
        where = f"{kind} at {id(self.primitive):#x}"
        if self.is_self_wait:
            return (
                f"self-wait: {waiter} waits on the {where}, which it holds itself; aptio's "
                f"{kind} is not re-entrant, so release it first (or restructure the code so "
                f"the holder does not acquire it again)"
            )
        held = f", held by {_describe(self.holder)}" if self.holder is not None else ""
        return f"{waiter} waits on the {where}{held}"


def _describe(who: Holder | None) -> str:
    if isinstance(who, asyncio.Task):
        return f"Task {who.get_name()!r}"
    if isinstance(who, threading.Thread):
        return f"thread {who.name!r}"
    return "a coroutine outside any Task"


def dump_waits() -> tuple[PrimitiveWait, ...]:
    """Every Task and thread waiting on an aptio primitive now, with who holds a Lock."""
    waits: list[PrimitiveWait] = []
    for queue in waiting_queues():
        primitive = queue.primitive()
        if primitive is None:
            continue
        holder = primitive.statistics().owner if isinstance(primitive, Lock) else None
        waits.extend(PrimitiveWait(primitive, who, holder) for who in queue.who_waits())
    return tuple(waits)


def self_waits() -> tuple[PrimitiveWait, ...]:
    """The waits that cannot end on their own: a Task or thread waiting on a Lock (or a
    Condition's lock) that it holds itself.  Empty when there are none."""
    return tuple(wait for wait in dump_waits() if wait.is_self_wait)
