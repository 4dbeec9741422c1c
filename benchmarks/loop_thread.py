"""An event loop running forever on a thread of its own: the bare shape of an STA, used by the
benchmarks as a baseline with nothing of aptio in it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
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

    async def hand_off(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this thread, awaited from the calling loop: two bare
        ``call_soon_threadsafe`` hops, there and back."""
        here = asyncio.get_running_loop()
        future: asyncio.Future[T] = here.create_future()
        self.loop.call_soon_threadsafe(answer, here, future, fn, *args)
        return await future

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def answer(loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], fn: Callable[..., T],
           *args: Any) -> None:
    """Run ``fn(*args)`` here and hand its outcome to ``future``, which belongs to ``loop``
    (another thread's)."""
    try:
        value = fn(*args)
    except BaseException as error:
        loop.call_soon_threadsafe(future.set_exception, error)
    else:
        loop.call_soon_threadsafe(future.set_result, value)


__all__ = ["LoopThread", "answer"]
