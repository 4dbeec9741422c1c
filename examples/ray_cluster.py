"""Apartments on a cluster: aptio servers placed on Ray (COM's remote server, DCOM).

Each server is a Ray actor hosting an aptio runtime; objects created there are called through
the same proxies as anywhere else. Here two servers share out word counting, a server calls
back into this process, and a proxy travels from one server to the other.

Run it: pip install 'aptio[ray]'; python examples/ray_cluster.py
(a local Ray cluster, or the one RAY_ADDRESS names; `ray start --head` makes one to share)
"""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Any

import ray

import aptio
import aptio.ray

TEXT = """the apartment model keeps each object in one apartment and gives every other
apartment a proxy whose calls are awaitables the model came from com and now it runs on a
cluster of machines with the same proxies the same calls and the same errors"""


@aptio.coclass(aptio.ThreadingModel.FREE)
class WordCounter:
    """Counts words; lives in a server on the cluster."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def add(self, words: list[str]) -> int:
        self.counts.update(words)
        return len(words)

    def top(self, n: int) -> list[tuple[str, int]]:
        return self.counts.most_common(n)

    def where(self) -> str:
        return f"pid {os.getpid()} on Ray node {ray.get_runtime_context().get_node_id()[:8]}"

    async def report(self, progress: Any) -> str:
        """Call back into whoever asked (a proxy into the driver's main STA)."""
        return str(await progress.note(f"{sum(self.counts.values())} words counted"))

    async def merge_from(self, other: Any) -> int:
        """Take another counter's words: ``other`` is a proxy into another server."""
        for word, count in await other.top(1000):
            self.counts[word] += count
        return sum(self.counts.values())


@aptio.coclass
class Progress:
    """Lives in the driver: the servers' calls back land here, in its main STA."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> str:
        self.notes.append(text)
        return f"noted: {text}"


async def main() -> None:
    async with await aptio.ray.start_server("counter-a", num_cpus=0) as first, \
            await aptio.ray.start_server("counter-b", num_cpus=0) as second:
        counters = [await first.create(WordCounter), await second.create(WordCounter)]
        for counter in counters:
            print("a counter lives in", await counter.where())
        words = TEXT.split()
        halves = [words[: len(words) // 2], words[len(words) // 2:]]
        sent = await asyncio.gather(*(c.add(h) for c, h in zip(counters, halves, strict=True)))
        print("words sent:", sum(sent))
        progress = await aptio.create(Progress)
        print("a server called back:", await counters[0].report(progress))
        total = await counters[0].merge_from(counters[1])  # a proxy crosses between servers
        print("merged on counter-a:", total, "words; top 3:", await counters[0].top(3))


if __name__ == "__main__":  # the servers load this script too, for its classes: not this part
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        aptio.run(main)
    finally:
        ray.shutdown()
