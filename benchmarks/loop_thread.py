"""An event loop running forever on a thread of its own: the bare shape of an STA, used by the
benchmarks as a baseline with nothing of aptio in it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aptio._threads.loops import loop_factory

T = TypeVar("T")


class LoopThread:
    """An event loop of the given kind running forever on its own thread."""

    def __init__(self, uvloop: bool, name: str) -> None:
        self.loop = loop_factory(uvloop)()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


__all__ = ["LoopThread"]
