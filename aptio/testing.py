"""Deterministic helpers for testing code that uses aptio: no sleeps to synchronize.

Every wait here ends on an event (a call finishing, a call arriving), never on a clock: a test
that uses them passes or fails the same way on a fast machine and on a loaded one. The pytest
plugin (``aptio.pytest_plugin``) runs tests in aptio and checks that nothing is left behind.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any, final

from ._apartments.base import Apartment
from ._call.call import Call
from ._call.contract import DONE, CallRecord
from ._proxy.send import send
from ._proxy.stub import live_stubs
from ._runtime.entry import current_runtime
from ._values.enums import ApartmentKind
from ._values.errors import AptioError

__all__ = ["CallHold", "apartment_barrier", "hold_calls", "live_apartment_threads",
           "live_apartments", "wait_idle"]


def _noop() -> None:
    return None


async def apartment_barrier(apartment: Apartment) -> None:
    """Return once every call sent to ``apartment`` from here before this one has started.

    It sends a no-op call through the same queue and awaits it: the queue is FIFO, so when it
    runs, everything queued before it has been taken. (On an STA, a started coroutine call may
    still be suspended at an ``await``; :func:`wait_idle` waits for those too.)
    """
    call: Call[Any] = send(apartment, None, "apartment_barrier", _noop, False, (), {}, None, None)
    await call


def live_apartment_threads() -> list[threading.Thread]:
    """The threads aptio started that are still alive (STA loops, MTA workers, and the helper
    threads of server processes)."""
    return [t for t in threading.enumerate() if t.name.startswith("aptio ")]


def live_apartments() -> list[Apartment]:
    """The open apartments of the running aptio runtime: the main STA first, then the other
    STAs and the MTA once they exist (the neutral apartment, which has no thread, is left out).
    Empty when no runtime runs. ``len(live_apartments())`` counts them."""
    runtime = current_runtime()
    if runtime is None:
        return []
    return [apartment for apartment in runtime.apartments()
            if not apartment.is_closed and apartment.kind is not ApartmentKind.NEUTRAL]


# ---------------------------------------------------------------------- waiting until idle


def _done(call: CallRecord[Any]) -> bool:
    """Its final outcome is in (a rejected call may still be sent again)."""
    return call._cancelled or (call._state == DONE and call._rejected is None)


def _in_flight(apartment: Apartment) -> list[CallRecord[Any]]:
    """The calls into ``apartment`` that are queued, held, running or waiting at a reentrancy
    gate now (a snapshot)."""
    calls = (apartment._queued_calls() + apartment._executing_calls()
             + list(apartment._running))
    for stub in live_stubs():
        gate = stub.gate
        if gate is not None and stub.apartment is apartment:
            calls.extend(gate.queued_calls())
    return [call for call in calls if not _done(call)]


class _DoneWaiter:
    """Wakes a future on ``loop`` once ``call`` has its final outcome (any thread). It reads
    nothing of the outcome, so an error stays unretrieved for whoever owns the call."""

    __slots__ = ("call", "future", "loop")

    def __init__(self, call: CallRecord[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.call = call
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def notify(self) -> None:
        if _done(self.call):
            try:
                self.loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the waiting loop is gone: nobody to wake
                pass

    def notify_now(self) -> None:
        self.notify()

    def _wake(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


async def _until_done(calls: list[CallRecord[Any]]) -> None:
    loop = asyncio.get_running_loop()
    for call in calls:
        if _done(call):
            continue
        waiter = _DoneWaiter(call, loop)
        call._add_waiter(waiter)
        if _done(call):  # re-read after registering (the waiter invariant)
            continue
        await waiter.future


async def wait_idle(apartment: Apartment, *, timeout: float | None = None) -> bool:
    """Wait until ``apartment`` has no queued, held, running or gate-blocked calls; True then,
    False if ``timeout`` seconds passed first.

    It waits for the calls it sees to finish, then sends a no-op call through the apartment's
    queue (so a call being taken off the queue meanwhile shows up as running) and looks again,
    until it sees none. Calls sent to the apartment while it waits are waited for too. Calls
    held by :func:`hold_calls` count as queued: release them first.
    """
    if apartment._remote:
        raise AptioError(f"wait_idle() works on this process's apartments; {apartment.name!r} "
                         "lives in another process")
    try:
        async with asyncio.timeout(timeout):
            while True:
                calls = _in_flight(apartment)
                if calls:
                    await _until_done(calls)
                    continue
                if not apartment.is_closed and apartment.kind is not ApartmentKind.NEUTRAL:
                    await apartment_barrier(apartment)
                if not _in_flight(apartment):
                    return True
    except TimeoutError:
        return False


# ---------------------------------------------------------------------- holding calls


@final
class CallHold:
    """A hold on an apartment's incoming calls, made by :func:`hold_calls`.

    While it is on, calls arriving from other apartments do not start: they wait in the order
    they arrived. :meth:`release` lets the first ones go (they start ahead of every later call,
    in their order); leaving the ``async with`` block, or :meth:`end`, lets them all go and
    stops holding. Use it as an async context manager.
    """

    __slots__ = ("_apartment", "_hold", "_lock", "_waiters")

    def __init__(self, apartment: Apartment) -> None:
        if apartment._remote or apartment.kind is ApartmentKind.NEUTRAL:
            where = ("lives in another process" if apartment._remote
                     else "has no queue: its calls run on the caller's own thread")
            raise AptioError(f"hold_calls() needs an STA or the MTA of this process; "
                             f"{apartment.name!r} {where}")
        self._apartment = apartment
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._hold = apartment._hold_calls(self._on_held)

    def __repr__(self) -> str:
        return f"<aptio.testing.CallHold on {self._apartment.name!r}: {self.held} held>"

    @property
    def apartment(self) -> Apartment:
        return self._apartment

    @property
    def held(self) -> int:
        """How many calls are held right now."""
        return self._hold.count()

    def held_calls(self) -> list[str]:
        """The held calls, in order, as ``Class.method() in 'apartment' (chain N)``."""
        return [call.describe() for call in self._hold.waiting()]

    async def wait_held(self, count: int = 1, *, timeout: float | None = None) -> bool:
        """Wait until at least ``count`` calls are held; True then, False if ``timeout``
        seconds passed first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._hold.count() >= count:
                return True
            self._waiters.append((count, loop, future))
        try:
            async with asyncio.timeout(timeout):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters = [w for w in self._waiters if w[2] is not future]

    def _on_held(self) -> None:
        """A call was held (on the apartment's thread): wake the waits it satisfies."""
        count = self._hold.count()
        with self._lock:
            ready = [(loop, future) for wanted, loop, future in self._waiters if wanted <= count]
        for loop, future in ready:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed
                pass

    def release(self, count: int | None = None) -> int:
        """Let the first ``count`` held calls go (all if None), in order, ahead of every later
        call; the hold stays on for calls that arrive later. Returns how many went."""
        if count is not None and count < 0:
            raise ValueError(f"count must be at least 0, not {count}")
        return self._hold.release(count, keep_holding=True)

    def end(self) -> None:
        """Stop holding: every held call goes, in order (idempotent)."""
        self._apartment._end_hold(self._hold)

    async def __aenter__(self) -> CallHold:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.end()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def hold_calls(apartment: Apartment) -> CallHold:
    """Hold the calls that arrive at ``apartment`` from other apartments, from now until the
    hold ends, to force an interleaving::

        async with aptio.testing.hold_calls(worker) as hold:
            first = obj.step("a")
            second = obj.step("b")
            await hold.wait_held(2)  # both arrived; neither started
            hold.release(1)          # "a" runs; "b" still waits
            await first
        await second                 # the block's end let "b" go

    On an STA the released calls run one by one, as every call there does. On the MTA,
    holding means the same (nothing arriving starts) and releasing puts the calls back at the
    front of the pool's queue in their order; the pool then runs them in parallel as ever, so
    only their start order is kept. The apartment's own calls into itself run inline and are
    never held, and so are calls of neutral objects (they run on the caller's thread).
    A call held when the apartment shuts down fails with DisconnectedError, as a queued one.
    """
    return CallHold(apartment)
