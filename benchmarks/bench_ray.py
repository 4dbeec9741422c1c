"""Benchmark aptio calls through a server on Ray against a raw Ray actor call, in one run.

    python -m aptio bench ray [--quick] [--repeat N] [--json PATH]

Needs ``aptio[ray]``; starts a local Ray cluster (2 CPUs). Rows (median of ``--repeat``
rounds, each measuring everything once, interleaved, all from the main STA's loop):

* raw Ray: ``await actor.ping.remote()`` on an async Ray actor, sequential (await each) and
  pipelined (send a batch, then await them all);
* aptio on Ray: ``await proxy.ping()`` to an object in an aptio server started with
  ``aptio.ray.start_server`` on the same cluster, sequential and pipelined;
* aptio local server: the same calls to a server process on this machine (Unix sockets), to
  show what each choice costs.

Targets: an aptio call through Ray at most 1.1x the raw Ray call, sequential and pipelined.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import aptio

ns = time.perf_counter_ns


@dataclass(frozen=True)
class Sizes:
    repeat: int = 5
    seq: int = 300
    batch: int = 200
    batches: int = 5


QUICK = Sizes(repeat=1, seq=20, batch=20, batches=2)


@aptio.coclass
class Target:
    def ping(self) -> int:
        return 1


class RawTarget:
    """The Ray actor the raw calls go to (async, as aptio's server actor is)."""

    async def ping(self) -> int:
        return 1


Results = dict[str, list[float]]


async def _sequential(call: Any, n: int) -> float:
    start = ns()
    for _ in range(n):
        await call()
    return (ns() - start) / n / 1000


async def _pipelined(call: Any, batch: int, batches: int) -> float:
    start = ns()
    for _ in range(batches):
        await asyncio.gather(*[call() for _ in range(batch)])
    return (ns() - start) / (batch * batches) / 1000


async def _measure(sizes: Sizes, progress: Any) -> Results:
    import ray

    import aptio.ray

    raw = ray.remote(RawTarget).remote()
    ray_server = await aptio.ray.start_server("bench-ray")
    local_server = await aptio.start_server("bench-local")
    calls = {
        "raw Ray": lambda: raw.ping.remote(),
        "aptio on Ray": (await ray_server.create(Target)).ping,
        "aptio local server": (await local_server.create(Target)).ping,
    }
    for call in calls.values():  # warm up: connections, imports, caches
        await _sequential(call, 20)
        await _pipelined(call, 20, 1)
    results: Results = {}
    for round_number in range(sizes.repeat):
        for name, call in calls.items():
            results.setdefault(f"{name}: sequential", []).append(
                await _sequential(call, sizes.seq))
            results.setdefault(f"{name}: pipelined", []).append(
                await _pipelined(call, sizes.batch, sizes.batches))
        if progress is not None:
            progress(f"round {round_number + 1}/{sizes.repeat} done")
    await ray_server.shutdown()
    await local_server.shutdown()
    ray.kill(raw)
    return results


def run(sizes: Sizes, progress: Any = None) -> Results:
    import ray

    started = not ray.is_initialized()
    if started:
        # Ray's workers import RawTarget from this file's directory. A Ray instance of its
        # own ("local"): it would otherwise join any cluster running on the machine, whose
        # size it cannot set.
        here = os.path.dirname(os.path.abspath(__file__))
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": here}})
    try:
        return aptio.run(_measure(sizes, progress))
    finally:
        if started:
            ray.shutdown()


def render(results: Results) -> str:
    medians = {key: statistics.median(values) for key, values in results.items()}
    lines = [f"{'path':<34} {'median us/call':>15}  {'vs raw Ray':>10}  rounds (us)"]
    for key, value in medians.items():
        kind = key.rpartition(": ")[2]
        raw = medians.get(f"raw Ray: {kind}")
        ratio = f"{value / raw:.2f}x" if raw else ""
        rounds = " ".join(f"{v:.0f}" for v in results[key])
        lines.append(f"{key:<34} {value:>15.1f}  {ratio:>10}  {rounds}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aptio bench ray", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (median reported)")
    parser.add_argument("--json", default=None, help="also write the raw rounds here")
    args = parser.parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        print("Ray is not installed: pip install 'aptio[ray]'", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else Sizes()
    if args.repeat is not None:
        sizes = Sizes(args.repeat, sizes.seq, sizes.batch, sizes.batches)
    results = run(sizes, lambda text: print(text, file=sys.stderr))
    print(render(results))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
