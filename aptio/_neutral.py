"""The neutral apartment: no threads of its own; a call runs on the caller's thread.

COM does not serialize calls into the NA (COM_SPEC D9); aptio does, one call at a time per
object, with an aptio.Lock: coroutine callers (on any loop) wait without blocking their loop,
plain and MTA threads block. A call nested in the one inside the object (that call is its
ancestor, so it waits on it) is let in, so an object calling back into itself through other
apartments cannot deadlock. Inside such a call ``aptio.current_apartment()`` reports NEUTRAL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._apartment import Apartment
from ._call import Call
from ._calls import running_call
from ._kinds import ApartmentKind
from ._loops import running_loop
from ._proxy import existing_stub
from ._state import enter_neutral, neutral_override
from ._sync import Lock

if TYPE_CHECKING:
    from ._models import Reentrancy
    from ._reentrancy import Gate
    from ._runtime import Runtime

__all__ = ["NeutralApartment"]


class _NeutralGuard:
    """One call at a time inside one NEUTRAL object, plus the calls nested in it.

    Invariant: ``holder``/``depth`` are written only while ``lock`` is held by the holder's
    call (or by calls nested in it, which run only while the holder waits on them). A caller
    that finds the holder among its ancestors is nested, so entering without the lock is safe;
    every other caller -- siblings of the same chain included -- takes the lock.
    """

    __slots__ = ("depth", "holder", "lock")

    def __init__(self) -> None:
        self.lock = Lock()
        self.holder: Call[Any] | None = None
        self.depth = 0

    def _nested(self, call: Call[Any] | None) -> bool:
        holder = self.holder
        return holder is not None and call is not None and call._descends_from(holder)

    def enter_blocking(self, call: Call[Any] | None) -> None:
        if self._nested(call):
            self.depth += 1
            return
        self.lock.acquire_blocking()
        self.holder, self.depth = call, 1

    async def enter(self, call: Call[Any] | None) -> None:
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


def _guarded(fn: Callable[..., Any], guard: _NeutralGuard,
             blocking: bool) -> Callable[..., Any]:
    if blocking:  # a thread with no loop (plain or MTA worker): wait by blocking
        def run_blocking(*args: Any, **kwargs: Any) -> Any:
            guard.enter_blocking(running_call())
            try:
                return fn(*args, **kwargs)
            finally:
                guard.exit()

        return run_blocking

    async def run_async(*args: Any, **kwargs: Any) -> Any:  # a loop: wait without blocking it
        await guard.enter(running_call())
        try:
            result = fn(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            return result
        finally:
            guard.exit()

    return run_async


class NeutralApartment(Apartment):
    """The process's one neutral apartment (COM: NA)."""

    __slots__ = ()

    #: Every caller enters the NA on its own thread.
    _always_inline = True

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime, ApartmentKind.NEUTRAL, "NA")

    def _invoke(
        self,
        obj: object,
        method: str,
        fn: Callable[..., Any],
        is_async: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        agile: bool,
        gate: Gate | None = None,
        policy: Reentrancy | None = None,
    ) -> Call[Any]:
        stub = existing_stub(obj) if obj is not None and not agile else None
        if stub is not None:
            guard = stub.neutral_guard
            if guard is None:
                guard = stub.neutral_guard = _NeutralGuard()
            # Blocking is only for a thread with no loop and a sync method; everything else
            # waits as a coroutine (on the caller's loop, or the thread's private loop).
            blocking = running_loop() is None and not is_async
            fn = _guarded(fn, guard, blocking)
            is_async = not blocking
        return super()._invoke(obj, method, fn, is_async, args, kwargs, agile, gate, policy)

    def _is_current(self) -> bool:
        return neutral_override.get() is self

    def _run_here(self, call: Call[Any]) -> None:
        token = enter_neutral(self)
        try:
            call._start()
        finally:
            neutral_override.reset(token)

    def _admit(self, call: Call[Any]) -> None:
        self._run_here(call)

    def _post(self, call: Call[Any]) -> None:  # pragma: no cover - _invoke never posts here
        self._run_here(call)

    async def shutdown(self, timeout: float | None = None) -> None:
        self._closing = True
        self._runtime._forget(self)
