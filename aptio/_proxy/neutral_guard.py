"""One call at a time per NEUTRAL object (an APTIO guarantee: COM does not serialize calls
into the neutral apartment, COM_SPEC D9).

The guard is an aptio.Lock, so coroutine callers (on any loop) wait without blocking their
loop, while plain and MTA threads block. A call nested in the one inside the object (that call
is its ancestor, so it waits on it) is let in, so an object calling back into itself through
other apartments cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._call.context import running_call
from .._call.contract import CallRecord
from .._sync.lock import Lock

__all__ = ["NeutralGuard", "guarded"]


class NeutralGuard:
    """One call at a time inside one NEUTRAL object, plus the calls nested in it.

    Invariant: ``holder``/``depth`` are written only while ``lock`` is held by the holder's
    call (or by calls nested in it, which run only while the holder waits on them). A caller
    that finds the holder among its ancestors is nested, so entering without the lock is safe;
    every other caller -- siblings of the same chain included -- takes the lock.
    """

    __slots__ = ("depth", "holder", "lock")

    def __init__(self) -> None:
        self.lock = Lock()
        self.holder: CallRecord[Any] | None = None
        self.depth = 0

    def _nested(self, call: CallRecord[Any] | None) -> bool:
        holder = self.holder
        return holder is not None and call is not None and call._descends_from(holder)

    def enter_blocking(self, call: CallRecord[Any] | None) -> None:
        if self._nested(call):
            self.depth += 1
            return
        self.lock.acquire_blocking()
        self.holder, self.depth = call, 1

    async def enter(self, call: CallRecord[Any] | None) -> None:
        if self._nested(call):
            self.depth += 1
            return
        await self.lock.acquire()
        self.holder, self.depth = call, 1

    def exit(self) -> None:
        self.depth -= 1
        if not self.depth:
            self.holder = None
            self.lock.release()


def guarded(fn: Callable[..., Any], guard: NeutralGuard, blocking: bool) -> Callable[..., Any]:
    """``fn`` run under ``guard``: blocking (a thread with no loop and a sync method), or as a
    coroutine (on the caller's loop, or the thread's private loop)."""
    if blocking:
        def run_blocking(*args: Any, **kwargs: Any) -> Any:
            guard.enter_blocking(running_call())
            try:
                return fn(*args, **kwargs)
            finally:
                guard.exit()

        return run_blocking

    async def run_async(*args: Any, **kwargs: Any) -> Any:
        await guard.enter(running_call())
        try:
            result = fn(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            return result
        finally:
            guard.exit()

    return run_async
