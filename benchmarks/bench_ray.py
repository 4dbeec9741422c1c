"""Benchmark aptio calls through a server on Ray against a raw Ray actor call, in one run.

    python -m aptio bench ray [--quick] [--repeat N] [--json PATH]

Needs ``aptio[ray]``; starts a local Ray cluster (2 CPUs). Rows (median of ``--repeat``
rounds, each measuring everything once, in turns, all from the main STA's loop; a ratio is the
median of the ratios within each round):

* raw Ray: ``await actor.ping.remote()`` on an async Ray actor, sequential (await each) and
  pipelined (send a batch, then await them all);
* raw Ray + payload: the same call carrying bytes in and out of the size of an aptio call's
  exchange (a call of ``ping()`` packs 169 bytes): what Ray charges for moving any protocol's
  messages, before the protocol does anything;
* raw Ray + hand-off: the same actor call, whose method hands the work to an event loop on a
  thread of its own and awaits the answer (two bare ``call_soon_threadsafe`` hops). An aptio
  server on Ray makes the same hand-off, so that a busy apartment never holds up the actor's
  loop (which carries every caller's calls, cancels and releases): this row shows what that
  hand-off costs by itself;
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

from loop_thread import LoopThread

import aptio
from aptio._threads.loops import uvloop_available

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


#: Bytes of about the size of the exchange an aptio call of ``ping()`` makes (169, measured).
PAYLOAD = bytes(170)


class RawTarget:
    """The Ray actor the raw calls go to (async, as aptio's server actor is)."""

    async def ping(self) -> int:
        return 1

    async def echo(self, payload: bytes) -> bytes:
        return payload


def _one() -> int:
    return 1


class RawHandoffTarget:
    """A raw actor whose method runs its work on an event loop of another thread, as an aptio
    server's apartments do (of the kind aptio's server uses: uvloop when installed)."""

    def __init__(self) -> None:
        self._apartment = LoopThread(uvloop_available(), "apartment")

    async def ping(self) -> int:
        return await self._apartment.hand_off(_one)

    def close(self) -> None:
        """Stop the apartment's loop (the bench kills the actor instead)."""
        self._apartment.close()


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
    handoff = ray.remote(RawHandoffTarget).remote()
    ray_server = await aptio.ray.start_server("bench-ray")
    local_server = await aptio.start_server("bench-local")
    calls = {
        "raw Ray": lambda: raw.ping.remote(),
        "raw Ray + payload": lambda: raw.echo.remote(PAYLOAD),
        "raw Ray + hand-off": lambda: handoff.ping.remote(),
        "aptio on Ray": (await ray_server.create(Target)).ping,
        "aptio local server": (await local_server.create(Target)).ping,
    }
    for call in calls.values():  # warm up: connections, imports, caches
        await _sequential(call, 20)
        await _pipelined(call, 20, 1)
    results: Results = {}
    for round_number in range(sizes.repeat):
        # Every path once per round, in turns, the order reversed every other round: the
        # machine's state drifts over a run, and each ratio is taken within a round.
        order = list(calls.items())
        if round_number % 2:
            order.reverse()
        for name, call in order:
            results.setdefault(f"{name}: sequential", []).append(
                await _sequential(call, sizes.seq))
            results.setdefault(f"{name}: pipelined", []).append(
                await _pipelined(call, sizes.batch, sizes.batches))
        if progress is not None:
            progress(f"round {round_number + 1}/{sizes.repeat} done")
    await ray_server.shutdown()
    await local_server.shutdown()
    ray.kill(raw)
    ray.kill(handoff)
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


def per_round_ratio(values: list[float], bases: list[float]) -> float:
    """The median over rounds of each round's value divided by its baseline of that round."""
    return statistics.median(value / base for value, base in zip(values, bases, strict=True))


def render(results: Results) -> str:
    medians = {key: statistics.median(values) for key, values in results.items()}
    bases = ("raw Ray", "raw Ray + payload", "raw Ray + hand-off")
    lines = [f"{'path':<34} {'median us/call':>15}  {'vs raw Ray':>10}  {'vs payload':>10}"
             f"  {'vs hand-off':>11}  rounds (us)"]
    for key, value in medians.items():
        path, _, kind = key.rpartition(": ")
        ratios = []
        for base in bases:  # each baseline of the same kind; the floors only for aptio on Ray
            rounds_of_base = results.get(f"{base}: {kind}")
            if rounds_of_base and (base == "raw Ray" or path == "aptio on Ray"):
                ratios.append(f"{per_round_ratio(results[key], rounds_of_base):.2f}x")
            else:
                ratios.append("")
        rounds = " ".join(f"{v:.0f}" for v in results[key])
        lines.append(f"{key:<34} {value:>15.1f}  {ratios[0]:>10}  {ratios[1]:>10}"
                     f"  {ratios[2]:>11}  {rounds}")
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
