"""What recording calls costs: the same calls with no recording and inside ``aptio.recording``,
interleaved round by round in one run (these machines are noisy), medians reported.

    python -m aptio bench trace [--repeat N] [--calls N]

Rows: sequential round trips and pipelined calls from the main STA to another STA and to the
MTA, a sync method each. Columns: time per call off and on, the ratio, and what a recorded
call adds. The recordings are written to a temporary directory and their write time is
reported apart (it happens once, when a recording ends).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aptio


@aptio.coclass(aptio.ThreadingModel.BOTH)
class Target:
    def ping(self) -> int:
        return 1


async def sequential(target: Any, n: int) -> int:
    started = time.perf_counter_ns()
    for _ in range(n):
        await target.ping()
    return (time.perf_counter_ns() - started) // n


async def pipelined(target: Any, n: int) -> int:
    started = time.perf_counter_ns()
    calls = [target.ping() for _ in range(n)]
    for call in calls:
        await call
    return (time.perf_counter_ns() - started) // n


async def measure(repeat: int, n: int) -> tuple[dict[str, dict[str, list[int]]], list[float]]:
    sta = await aptio.start_sta("target")
    on_sta = await sta.create(Target)
    in_mta = await aptio.mta().create(Target)
    rows: dict[str, tuple[Callable[[Any, int], Awaitable[int]], Any]] = {
        "sequential main STA -> STA": (sequential, on_sta),
        "pipelined main STA -> STA": (pipelined, on_sta),
        "sequential main STA -> MTA": (sequential, in_mta),
        "pipelined main STA -> MTA": (pipelined, in_mta),
    }
    results: dict[str, dict[str, list[int]]] = {row: {"off": [], "on": []} for row in rows}
    writes: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        for round_ in range(repeat):
            for row, (run, target) in rows.items():
                await run(target, n // 10)  # warm up
                results[row]["off"].append(await run(target, n))
                recording = aptio.recording(os.path.join(directory, f"{round_}.json"),
                                            limit=4 * n + 1000)
                async with recording:
                    results[row]["on"].append(await run(target, n))
                    stopping = time.perf_counter()
                writes.append(time.perf_counter() - stopping)
    return results, writes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aptio bench trace", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="rounds (median reported)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per sample")
    args = parser.parse_args(argv)
    results, writes = aptio.run(measure(args.repeat, args.calls), use_uvloop=False)
    print(f"{'row':<30} {'off':>10} {'on':>10} {'ratio':>7} {'added':>10}")
    for row, columns in results.items():
        off = statistics.median(columns["off"])
        on = statistics.median(columns["on"])
        print(f"{row:<30} {off / 1000:>8.2f}us {on / 1000:>8.2f}us {on / off:>6.2f}x "
              f"{(on - off) / 1000:>8.2f}us")
    print(f"writing one recording of {args.calls} calls: median "
          f"{statistics.median(writes) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
