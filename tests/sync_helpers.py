"""Helpers shared by the tests of aptio's synchronization primitives."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import aptio._state
from aptio._kinds import ApartmentKind

T = TypeVar("T")


class FakeSTA:
    """Stands in for an STA apartment: ``current_thread_is_sta()`` reads only ``.kind``."""

    kind = ApartmentKind.STA


@contextlib.contextmanager
def as_sta() -> Iterator[None]:
    """Make the calling thread look like an STA thread for the duration."""
    aptio._state.set_thread_apartment(FakeSTA())  # type: ignore[arg-type]
    try:
        yield
    finally:
        aptio._state.set_thread_apartment(None)


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class LoopThread:
    """An event loop running on its own thread; ``call(coro)`` runs a coroutine there."""

    def __init__(self, kind: str = "asyncio") -> None:
        self.loop = new_loop(kind)
        self._thread = threading.Thread(target=self._run, name=f"sync-test-{kind}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        result: T = self.submit(coro).result(timeout)
        return result

    def close(self) -> None:
        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if not self.loop.is_closed():
            self.call(_cancel_all())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


def start_thread(fn: Callable[[], object], name: str = "sync-test") -> threading.Thread:
    t = threading.Thread(target=fn, name=name, daemon=True)
    t.start()
    return t
