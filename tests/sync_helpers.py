"""Helpers shared by the tests of aptio's synchronization primitives."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from aptio._threads.role import set_loop_owner

T = TypeVar("T")


@contextlib.contextmanager
def as_sta() -> Iterator[None]:
    """Make the calling thread look like an STA thread (one that must not block) meanwhile."""
    set_loop_owner(True)
    try:
        yield
    finally:
        set_loop_owner(False)


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class LoopThread:
    """An event loop running on its own thread; ``call(coro)`` runs a coroutine there."""

    def __init__(
        self, kind: str = "asyncio", loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.loop = new_loop(kind) if loop is None else loop
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


SITES = ("here", "asyncio", "uvloop", "thread")
LOOP_SITES = ("here", "asyncio", "uvloop")


class Handle:
    """A waiter started at a site; awaiting it gives ("ok", v), ("cancelled",) or ("error", e)."""

    def __init__(self, home: asyncio.AbstractEventLoop) -> None:
        self._home = home
        self.fut: asyncio.Future[tuple[Any, ...]] = home.create_future()
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _finish(self, outcome: tuple[Any, ...]) -> None:
        def _set() -> None:
            if not self.fut.done():
                self.fut.set_result(outcome)

        try:
            self._home.call_soon_threadsafe(_set)
        except RuntimeError:  # the test's loop is gone: nobody is listening
            pass

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self._finish(("cancelled",))
        elif task.exception() is not None:
            self._finish(("error", task.exception()))
        else:
            self._finish(("ok", task.result()))

    def cancel(self) -> None:
        """Cancel a coroutine waiter (thread-safe; ordered after its start)."""
        assert self.loop is not None

        def _cancel() -> None:
            assert self.task is not None
            self.task.cancel()

        self.loop.call_soon_threadsafe(_cancel)

    def __await__(self) -> Any:
        return asyncio.wait_for(asyncio.shield(self.fut), 10).__await__()


class Sites:
    """Starts waiters on the test's loop, on other loops (asyncio, uvloop) or plain threads."""

    def __init__(self) -> None:
        self.home = asyncio.get_running_loop()
        self._loops: dict[str, LoopThread] = {}
        self._threads: list[threading.Thread] = []

    def loop_of(self, site: str) -> asyncio.AbstractEventLoop:
        if site == "here":
            return self.home
        if site not in self._loops:
            self._loops[site] = LoopThread(site)
        return self._loops[site].loop

    def spawn(
        self,
        site: str,
        coro_fn: Callable[[], Coroutine[Any, Any, Any]],
        blocking_fn: Callable[[], Any],
    ) -> Handle:
        h = Handle(self.home)
        if site == "thread":

            def run() -> None:
                try:
                    h._finish(("ok", blocking_fn()))
                except BaseException as e:
                    h._finish(("error", e))

            self._threads.append(start_thread(run))
            return h
        loop = self.loop_of(site)
        h.loop = loop

        def start() -> None:
            h.task = loop.create_task(coro_fn())
            h.task.add_done_callback(h._task_done)

        if loop is self.home:
            start()
        else:
            loop.call_soon_threadsafe(start)
        return h

    def close(self) -> None:
        for t in self._threads:
            t.join(10)
        for lt in self._loops.values():
            lt.close()


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Wait for an observable state (not for time): poll ``predicate`` until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("state not reached")
        await asyncio.sleep(0.0005)


def until_blocking(predicate: Callable[[], bool], timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("state not reached")
        time.sleep(0.0005)
