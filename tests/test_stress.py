"""Stress: many STAs, the MTA and plain threads calling each other in random patterns.
Bounded in size (not in wall-clock): every run does the same amount of work."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest

import aptio


@aptio.coclass
class Node:
    """Counts calls; forwards some of them to other nodes (nested, across apartments)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.count = 0
        self.peers: list[Any] = []

    def set_peers(self, peers: list[Any]) -> None:
        self.peers = peers

    def hit(self) -> int:
        self.count += 1
        return self.index

    async def relay(self, hops: list[int]) -> list[int]:
        self.count += 1
        if not hops:
            return [self.index]
        rest = await self.peers[hops[0]].relay(hops[1:])
        return [self.index, *rest]

    def total(self) -> int:
        return self.count


@aptio.coclass(aptio.ThreadingModel.FREE)
class FreeNode(Node):
    pass


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(6))
async def test_random_call_graphs_across_many_stas(main: aptio.Apartment, seed: int) -> None:
    rng = random.Random(seed)
    stas = [await aptio.start_sta() for _ in range(12)]
    nodes: list[Any] = [await sta.create(Node, i) for i, sta in enumerate(stas)]
    nodes.append(await aptio.create(FreeNode, len(nodes)))
    for node in nodes:
        await node.set_peers(nodes)
    expected_total = 0
    calls = []
    expected_paths = []
    for _ in range(1500):
        start = rng.randrange(len(nodes))
        hops = [rng.randrange(len(nodes)) for _ in range(rng.randrange(4))]
        calls.append(nodes[start].relay(hops))
        expected_paths.append([start, *hops])
        expected_total += 1 + len(hops)
    assert await asyncio.gather(*calls) == expected_paths
    totals = await asyncio.gather(*(node.total() for node in nodes))
    assert sum(totals) == expected_total


@pytest.mark.asyncio
async def test_plain_threads_hammer_stas_with_cancellations(main: aptio.Apartment) -> None:
    stas = [await aptio.start_sta() for _ in range(4)]
    nodes: list[Any] = [await sta.create(Node, i) for i, sta in enumerate(stas)]
    done_counts: list[int] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        finished = 0
        for _ in range(300):
            call = nodes[rng.randrange(len(nodes))].hit()
            if rng.random() < 0.2:
                call.cancel()
                continue
            call.result(timeout=30)
            finished += 1
        done_counts.append(finished)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    totals = await asyncio.gather(*(node.total() for node in nodes))
    # Every completed call ran exactly once; cancelled ones ran at most once.
    assert sum(done_counts) <= sum(totals) <= 1200


@pytest.mark.asyncio
async def test_start_and_stop_many_stas(main: aptio.Apartment) -> None:
    for _ in range(3):
        stas = await asyncio.gather(*(aptio.start_sta() for _ in range(30)))
        nodes = await asyncio.gather(*(sta.create(Node, i) for i, sta in enumerate(stas)))
        assert await asyncio.gather(*(node.hit() for node in nodes)) == list(range(30))
        await asyncio.gather(*(sta.shutdown() for sta in stas))
