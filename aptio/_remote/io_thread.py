"""The node's I/O loop: a dedicated thread that accepts connections, authenticates them, and
drives the connections of callers that have no apartment loop of their own (plain threads, MTA
pool workers) plus each peer's control connection."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from .._threads.loops import finish_loop, loop_factory

__all__ = ["IoThread"]


class IoThread:
    """An event loop on its own thread, belonging to no apartment."""

    __slots__ = ("_ready", "loop", "thread")

    def __init__(self, name: str, use_uvloop: bool | None) -> None:
        self.loop = loop_factory(use_uvloop)()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=f"aptio {name}", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                finish_loop(loop, "aptio I/O loop")
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop's thread (from any thread; dropped once the loop closed)."""
        try:
            self.loop.call_soon_threadsafe(fn)
        except RuntimeError:
            pass

    def stop(self) -> None:
        """Stop the loop and join the thread (from any other thread)."""
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            pass
        if threading.current_thread() is not self.thread:
            self.thread.join()
