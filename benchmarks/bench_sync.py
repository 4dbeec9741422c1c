"""Benchmark aptio's primitives against threading, asyncio and aiologic, in one run.

    python benchmarks/bench_sync.py [--quick] [--repeat N] [--markdown PATH]

``--markdown PATH`` writes the table as the docs' ``bench:sync`` block (README and the
primitives page), which ``benchmarks/update_docs.py PATH`` puts in place.

Every row is measured next to its baselines in the same process, and the table prints ratios
(aptio's time per operation / the baseline's), because these machines are noisy.  Lower is
better for latency rows ("us/op"); the throughput rows report time per critical section too, so
lower is better everywhere.  The best of ``--repeat`` runs is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aptio
import aptio._sync as sync

try:
    import aiologic

    HAVE_AIOLOGIC = True
except ImportError:  # pragma: no cover - bench extra not installed
    aiologic = None  # type: ignore[assignment]
    HAVE_AIOLOGIC = False

Timer = Callable[[int], float]  # n -> seconds for n operations


def _run(coro_fn: Callable[[], Coroutine[Any, Any, float]]) -> float:
    return asyncio.run(coro_fn())


# -- uncontended ---------------------------------------------------------------------------------


def uncontended_coro(make: Callable[[], Any], on_sta: bool = False) -> Timer:
    """``async with`` on a free primitive, on a plain asyncio loop (``asyncio.run``) or on
    aptio's main STA (``aptio.run``)."""

    def timer(n: int) -> float:
        async def main() -> float:
            lock = make()
            t0 = time.perf_counter()
            for _ in range(n):
                async with lock:
                    pass
            return time.perf_counter() - t0

        return aptio.run(main) if on_sta else _run(main)

    return timer


def uncontended_thread(make: Callable[[], Any]) -> Timer:
    def timer(n: int) -> float:
        lock = make()
        t0 = time.perf_counter()
        for _ in range(n):
            with lock:
                pass
        return time.perf_counter() - t0

    return timer


# -- wake round trips: ping-pong over two zero semaphores ---------------------------------------


class _Api:
    """How to acquire and release a semaphore of one library, from a task or a thread."""

    def __init__(
        self,
        make: Callable[[], Any],
        coro_acquire: Callable[[Any], Coroutine[Any, Any, Any]] | None,
        block_acquire: Callable[[Any], Any] | None,
    ) -> None:
        self.make = make
        self.coro_acquire = coro_acquire
        self.block_acquire = block_acquire


APTIO = _Api(lambda: sync.Semaphore(0), lambda s: s.acquire(), lambda s: s.acquire_blocking())
THREADING = _Api(lambda: threading.Semaphore(0), None, lambda s: s.acquire())
ASYNCIO = _Api(lambda: asyncio.Semaphore(0), lambda s: s.acquire(), None)
AIOLOGIC = (
    _Api(lambda: aiologic.Semaphore(0), lambda s: s.async_acquire(), lambda s: s.green_acquire())
    if aiologic is not None
    else None
)


def _side(api: _Api, kind: str, n: int, mine: Any, theirs: Any, first: bool) -> Callable[[], Any]:
    """One end of the ping-pong: a blocking loop ("thread") or a coroutine ("loop")."""
    if kind == "thread":
        acq = api.block_acquire
        assert acq is not None

        def blocking() -> None:
            for _ in range(n):
                if first:
                    theirs.release()
                    acq(mine)
                else:
                    acq(mine)
                    theirs.release()

        return blocking
    cacq = api.coro_acquire
    assert cacq is not None

    async def coro() -> None:
        for _ in range(n):
            if first:
                theirs.release()
                await cacq(mine)
            else:
                await cacq(mine)
                theirs.release()

    return coro


def round_trip(api: _Api, a: str, b: str) -> Timer:
    """Seconds for n round trips between side ``a`` and side ``b`` (each in its own thread,
    or both on one loop when b == "same-loop")."""

    def timer(n: int) -> float:
        s1, s2 = api.make(), api.make()
        if b == "same-loop":

            async def main() -> float:
                t0 = time.perf_counter()
                await asyncio.gather(
                    _side(api, "loop", n, s2, s1, True)(), _side(api, "loop", n, s1, s2, False)()
                )
                return time.perf_counter() - t0

            return _run(main)
        fns = [_side(api, a, n, s2, s1, True), _side(api, b, n, s1, s2, False)]
        return _in_threads([(k, f) for k, f in zip((a, b), fns, strict=True)])

    return timer


def _in_threads(jobs: list[tuple[str, Callable[[], Any]]]) -> float:
    """Run each job on its own thread ("loop" jobs under asyncio.run); seconds from the first
    job's start to the last job's end (all start together behind a barrier)."""
    start = threading.Barrier(len(jobs))
    starts: list[float] = []
    ends: list[float] = []

    def wrap(kind: str, fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            if kind == "loop":

                async def main() -> None:
                    start.wait()
                    starts.append(time.perf_counter())
                    await fn()

                asyncio.run(main())
            else:
                start.wait()
                starts.append(time.perf_counter())
                fn()
            ends.append(time.perf_counter())

        return run

    threads = [threading.Thread(target=wrap(k, f)) for k, f in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return max(ends) - min(starts)


# -- contended throughput -------------------------------------------------------------------------


def contended(make: Callable[[], Any], kinds: tuple[str, ...]) -> Timer:
    """Seconds for n critical sections in total, split over one worker per entry of kinds."""

    def timer(n: int) -> float:
        lock = make()
        per = n // len(kinds)
        counter = [0]

        def blocking() -> None:
            for _ in range(per):
                with lock:
                    counter[0] += 1

        async def coro() -> None:
            for _ in range(per):
                async with lock:
                    counter[0] += 1

        elapsed = _in_threads([(k, blocking if k == "thread" else coro) for k in kinds])
        assert counter[0] == per * len(kinds)
        return elapsed

    return timer


# -- the table ------------------------------------------------------------------------------------


def _rows(quick: bool) -> list[tuple[str, int, dict[str, Timer | None]]]:
    al = aiologic
    un = 2_000 if quick else 200_000
    rt = 50 if quick else 5_000
    ct = 400 if quick else 100_000
    return [
        (
            "uncontended coroutine acquire+release",
            un,
            {
                "aptio": uncontended_coro(sync.Lock),
                "asyncio": uncontended_coro(asyncio.Lock),
                "aiologic": uncontended_coro(al.Lock) if al else None,
            },
        ),
        (
            "uncontended coroutine, on an STA",
            un,
            {
                "aptio": uncontended_coro(sync.Lock, on_sta=True),
                "asyncio": uncontended_coro(asyncio.Lock, on_sta=True),
                "aiologic": uncontended_coro(al.Lock, on_sta=True) if al else None,
            },
        ),
        (
            "uncontended thread acquire+release",
            un,
            {
                "aptio": uncontended_thread(sync.Lock),
                "threading": uncontended_thread(threading.Lock),
                "aiologic": uncontended_thread(al.Lock) if al else None,
            },
        ),
        (
            "uncontended coroutine semaphore",
            un,
            {
                "aptio": uncontended_coro(lambda: sync.Semaphore(1)),
                "asyncio": uncontended_coro(lambda: asyncio.Semaphore(1)),
                "aiologic": uncontended_coro(lambda: al.Semaphore(1)) if al else None,
            },
        ),
        (
            "uncontended thread semaphore",
            un,
            {
                "aptio": uncontended_thread(lambda: sync.Semaphore(1)),
                "threading": uncontended_thread(lambda: threading.Semaphore(1)),
                "aiologic": uncontended_thread(lambda: al.Semaphore(1)) if al else None,
            },
        ),
        (
            "wake round trip task<->task (one loop)",
            rt,
            {
                "aptio": round_trip(APTIO, "loop", "same-loop"),
                "asyncio": round_trip(ASYNCIO, "loop", "same-loop"),
                "aiologic": round_trip(AIOLOGIC, "loop", "same-loop") if AIOLOGIC else None,
            },
        ),
        (
            "wake round trip thread<->thread",
            rt,
            {
                "aptio": round_trip(APTIO, "thread", "thread"),
                "threading": round_trip(THREADING, "thread", "thread"),
                "aiologic": round_trip(AIOLOGIC, "thread", "thread") if AIOLOGIC else None,
            },
        ),
        (
            "wake round trip thread<->loop",
            rt,
            {
                "aptio": round_trip(APTIO, "thread", "loop"),
                "aiologic": round_trip(AIOLOGIC, "thread", "loop") if AIOLOGIC else None,
            },
        ),
        (
            "wake round trip loop<->loop",
            rt,
            {
                "aptio": round_trip(APTIO, "loop", "loop"),
                "aiologic": round_trip(AIOLOGIC, "loop", "loop") if AIOLOGIC else None,
            },
        ),
        *[
            (
                f"contended {label}",
                ct,
                {
                    "aptio": contended(sync.Lock, kinds),
                    "aptio fair=False": contended(lambda: sync.Lock(fair=False), kinds),
                    "threading": None if "loop" in kinds else contended(threading.Lock, kinds),
                    "aiologic": contended(al.Lock, kinds) if al else None,
                },
            )
            for label, kinds in (
                ("2 threads", ("thread", "thread")),
                ("2 loops", ("loop", "loop")),
                ("thread + loop", ("thread", "loop")),
            )
        ],
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="bench_sync", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per cell (best kept)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="write the table as the docs' bench:sync block to this file")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    if not HAVE_AIOLOGIC:
        print("aiologic is not installed: its columns are left out "
              "(in the clone: pip install -e '.[bench]')")
    header = f"{'benchmark':42} {'impl':17} {'us/op':>9}  ratios (aptio / baseline)"
    print(header)
    print("-" * len(header))
    table: list[tuple[str, dict[str, float]]] = []
    for title, n, impls in _rows(args.quick):
        # Round-robin over the implementations, so that a noisy spell hits all of them alike.
        results: dict[str, float] = {}
        table.append((title, results))
        for _ in range(repeat):
            for name, timer in impls.items():
                if timer is not None:
                    us = timer(n) / n * 1e6
                    results[name] = min(us, results.get(name, us))
        for name, us in results.items():
            ratios = ""
            if name.startswith("aptio"):
                ratios = "  ".join(
                    f"{us / base:.2f}x {other}"
                    for other, base in results.items()
                    if not other.startswith("aptio")
                )
            print(f"{title:42} {name:17} {us:9.3f}  {ratios}")
            title = ""
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(render_markdown(table, repeat))
    return 0


def render_markdown(table: list[tuple[str, dict[str, float]]], repeat: int) -> str:
    """The ``bench:sync`` block: a row per aptio variant, its time and its ratios to every
    other implementation measured in the same row."""
    lines = [
        "<!-- bench:sync:begin -->",
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{os.cpu_count()} CPUs, µs per operation (best of {repeat} "
        f"run{'s' if repeat != 1 else ''}, each row's implementations in turns; lower is "
        "better).",
        "",
        "| benchmark | aptio | µs | others µs | aptio ÷ other |",
        "|---|---|---:|---|---|",
    ]
    for title, results in table:
        others = {name: us for name, us in results.items() if not name.startswith("aptio")}
        shown = " · ".join(f"{name} {us:.3g}" for name, us in others.items())
        for name, us in results.items():
            if not name.startswith("aptio"):
                continue
            variant = name.removeprefix("aptio").strip() or "default"
            ratios = " · ".join(f"{us / base:.2f}x {other}" for other, base in others.items())
            lines.append(f"| {title.replace('<->', '↔')} | {variant} | {us:.3g} | {shown} | "
                         f"{ratios} |")
    lines += ["<!-- bench:sync:end -->", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
