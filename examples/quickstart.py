"""Quickstart: an object in its own STA, called from the main STA through a proxy.

Run it: python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import threading

import aptio


@aptio.coclass  # APARTMENT model: the object lives in the STA that creates it
class Counter:
    def __init__(self, start: int = 0) -> None:
        self.value = start

    def increment(self, by: int = 1) -> int:  # a sync method: runs on the STA's thread
        self.value += by
        return self.value

    async def slow_double(self) -> int:  # an async method: runs on the STA's loop
        await asyncio.sleep(0.01)
        self.value *= 2
        return self.value

    def thread(self) -> str:
        return threading.current_thread().name


async def main() -> None:
    worker = await aptio.start_sta("worker")  # an event loop on its own thread
    # A proxy: calls go to the worker's thread. Typed: under mypy with aptio's plugin (see
    # docs/guides/typing.md), counter.increment(by: int = 1) returns an aptio.Call[int].
    counter: aptio.Proxy[Counter] = await worker.create(Counter, 10)
    print("counter lives on", await counter.thread())
    value: int = await counter.increment()
    print("increment ->", value)
    print("slow_double ->", await counter.slow_double())
    results = await asyncio.gather(*(counter.increment() for _ in range(5)))
    print("five increments ->", results)


if __name__ == "__main__":
    aptio.run(main)
