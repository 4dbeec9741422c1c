"""Benchmark aptio's calls against the floor and the usual alternatives, side by side in one run.

    python -m aptio bench [--quick] [--repeat N] [--loops asyncio,uvloop] [--scale 1,100,1000]
                          [--only calls|scale|processes|sqlite] [--json PATH] [--builds]

Rows (times per call, median of ``--repeat`` rounds; lower is better):

* aptio: sequential round trip (await one call at a time) and pipelined cost (send a batch of
  calls, then await them all) from an STA to another STA, from an STA to the MTA, and from a
  plain thread to an STA (``call.result()``), for a sync method and (STA to STA) an async
  one, which runs as a Task; a same-apartment proxy call; ``create``; STA start and stop.
* baselines: the floor (loop A ``call_soon_threadsafe`` to loop B, which
  ``call_soon_threadsafe``'s back), naive ``run_coroutine_threadsafe`` + ``wrap_future``,
  aptio's own reference transport, anyio's blocking portal (from a plain thread) and Pykka.
* scale: with 1, 100, 1000 idle STAs alive: the round trip, STA start cost, memory and file
  descriptors per idle STA.
* sqlite: a thread-affine sqlite3 connection served to tasks, sequentially and to 50 tasks at
  once, by aptio and by aiosqlite (``benchmarks/bench_sqlite.py``).

The first line says which build of aptio ran (compiled or pure Python); ``--builds`` runs
every round once in each, in turns, and compares them row by row (``bench_builds.py``).

Every round measures everything once (aptio and its baselines interleaved), because these
machines are noisy; the table shows medians, ratios and the project's targets (pass/miss).
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

import aptio
import aptio._compiled
from aptio._threads.loops import uvloop_available

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_rows import ROWS
from bench_sqlite import (
    SQLITE_QUICK,
    SqliteSizes,
    render_sqlite,
    render_sqlite_markdown,
    run_sqlite,
)
from loop_thread import LoopThread
from reference_transport import use_reference_transport

T = TypeVar("T")
ns = time.perf_counter_ns

try:
    import pykka
except ImportError:  # pragma: no cover - the bench extra is not installed
    pykka = None  # type: ignore[assignment]

try:
    from anyio.from_thread import start_blocking_portal
except ImportError:  # pragma: no cover
    start_blocking_portal = None  # type: ignore[assignment]


# ---------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Sizes:
    repeat: int = 5  # rounds; the median is reported
    seq: int = 3000  # sequential round trips per round, in chunks (one sample each)
    seq_chunk: int = 100
    batch: int = 500  # calls sent before awaiting them
    batches: int = 16  # pipelined samples per round, one batch each
    local: int = 20000  # same-apartment calls per sample
    creates: int = 500  # create() calls per sample
    starts: int = 20  # STAs started (and stopped) one by one per sample
    scale: tuple[int, ...] = (1, 100, 1000)
    scale_seq: int = 1000  # round trips per scale round (in chunks of seq_chunk)
    scale_repeat: int = 5


QUICK = Sizes(repeat=2, seq=50, seq_chunk=25, batch=20, batches=2, local=200, creates=20, starts=3,
              scale=(1, 10), scale_seq=50, scale_repeat=2)


class Progress:
    """One line on stderr, rewritten in place on a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"[{time.monotonic() - self.t0:6.1f}s] {message}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# Samples: results[loop_kind][key] -> ns per operation, one per round.
Results = dict[str, dict[str, list[float]]]


def _record(results: Results, loop: str, key: str, value: float) -> None:
    results.setdefault(loop, {}).setdefault(key, []).append(value)


# ---------------------------------------------------------------------------------- aptio side


@aptio.coclass
class Target:
    """The object called: trivial methods, so the figures are the call machinery's cost."""

    def ping(self) -> int:
        return 1

    async def aping(self) -> int:
        return 1


@aptio.coclass(aptio.ThreadingModel.FREE)
class FreeTarget:
    def ping(self) -> int:
        return 1


@aptio.coclass
class Driver:
    """Lives in an STA and times calls from there (the caller side of STA-to-X rows)."""

    async def sequential(self, target: Any, n: int) -> int:
        t0 = ns()
        for _ in range(n):
            await target.ping()
        return ns() - t0

    async def pipelined(self, target: Any, batch: int, batches: int) -> int:
        t0 = ns()
        for _ in range(batches):
            calls = [target.ping() for _ in range(batch)]
            for call in calls:
                await call
        return ns() - t0

    async def sequential_async(self, target: Any, n: int) -> int:
        t0 = ns()
        for _ in range(n):
            await target.aping()
        return ns() - t0

    async def pipelined_async(self, target: Any, batch: int, batches: int) -> int:
        t0 = ns()
        for _ in range(batches):
            calls = [target.aping() for _ in range(batch)]
            for call in calls:
                await call
        return ns() - t0

    async def pipelined_gather(self, target: Any, batch: int, batches: int) -> int:
        t0 = ns()
        for _ in range(batches):
            await asyncio.gather(*[target.ping() for _ in range(batch)])
        return ns() - t0

    async def same_apartment(self, n: int) -> dict[str, float]:
        """A proxy call to an object of this very apartment, against calling it directly."""
        proxy = await aptio.create(Target)
        obj = aptio.unwrap(proxy)
        out: dict[str, float] = {}
        for _ in range(2):  # the first pass warms up; the second is kept
            t0 = ns()
            for _ in range(n):
                await proxy.aping()
            t1 = ns()
            for _ in range(n):
                await obj.aping()
            t2 = ns()
            for _ in range(n):
                await proxy.ping()
            t3 = ns()
            for _ in range(n):
                obj.ping()
            t4 = ns()
            loop = asyncio.get_running_loop()
            for _ in range(n):  # the least an awaited reply can cost on an asyncio loop
                future = loop.create_future()
                future.set_result(1)
                await future
            t5 = ns()
            out = {"proxy_async": (t1 - t0) / n, "direct_await": (t2 - t1) / n,
                   "proxy_sync": (t3 - t2) / n, "direct_sync": (t4 - t3) / n,
                   "done_future": (t5 - t4) / n}
        return out


def _thread_sequential(target: Any, n: int) -> int:
    """From a plain thread (an implicit MTA member): block on each call in turn."""
    t0 = ns()
    for _ in range(n):
        target.ping().result()
    return ns() - t0


def _thread_pipelined(target: Any, batch: int, batches: int) -> int:
    t0 = ns()
    for _ in range(batches):
        calls = [target.ping() for _ in range(batch)]
        for call in calls:
            call.result()
    return ns() - t0


# ---------------------------------------------------------------------------------- baselines


def _ping() -> int:
    return 1


async def _aping() -> int:
    return 1


async def floor_sequential(b: asyncio.AbstractEventLoop, n: int) -> int:
    """Loop A (running this) hops to loop B, which runs the function and hops back."""
    a = asyncio.get_running_loop()

    def on_b(fut: asyncio.Future[int]) -> None:
        a.call_soon_threadsafe(fut.set_result, _ping())

    t0 = ns()
    for _ in range(n):
        fut = a.create_future()
        b.call_soon_threadsafe(on_b, fut)
        await fut
    return ns() - t0


async def naive_sequential(b: asyncio.AbstractEventLoop, n: int) -> int:
    t0 = ns()
    for _ in range(n):
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_aping(), b))
    return ns() - t0


async def naive_pipelined(b: asyncio.AbstractEventLoop, batch: int, batches: int) -> int:
    t0 = ns()
    for _ in range(batches):
        await asyncio.gather(*[asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_aping(), b))
                               for _ in range(batch)])
    return ns() - t0


class _BareSlot:
    """One call of the bare transport: the function, its result, and the caller's future once
    the caller waits on it."""

    __slots__ = ("done", "fn", "fut", "value")

    def __init__(self, fn: Callable[[], int]) -> None:
        self.fn = fn
        self.done = False
        self.value = 0
        self.fut: asyncio.Future[None] | None = None


class _BareInbox:
    """The batched transport with nothing else: a deque and one wake-up per batch. No
    exceptions, cancellation, causality, ordering guarantees or proxies; it bounds from below
    what any batched transport written in Python can cost per call on this machine."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: collections.deque[Callable[[], None]] = collections.deque()
        self.due = False

    def post(self, item: Callable[[], None]) -> None:
        self.queue.append(item)
        if not self.due:
            self.due = True
            self.loop.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        self.due = False
        queue = self.queue
        while queue:
            queue.popleft()()


async def bare_pipelined(b: asyncio.AbstractEventLoop, batch: int, batches: int) -> int:
    """Pipelined calls over :class:`_BareInbox` in both directions (the pipelined floor)."""
    to_b, to_a = _BareInbox(b), _BareInbox(asyncio.get_running_loop())

    def wake(fut: asyncio.Future[None]) -> None:
        if not fut.done():
            fut.set_result(None)

    def run_on_b(slot: _BareSlot) -> Callable[[], None]:
        def run() -> None:
            slot.value = slot.fn()
            slot.done = True
            fut = slot.fut
            if fut is not None:
                to_a.post(lambda: wake(fut))
        return run

    loop = asyncio.get_running_loop()
    t0 = ns()
    for _ in range(batches):
        slots = []
        for _ in range(batch):
            slot = _BareSlot(_ping)
            slots.append(slot)
            to_b.post(run_on_b(slot))
        for slot in slots:
            if not slot.done:
                slot.fut = fut = loop.create_future()
                if not slot.done:  # B reads fut after writing done: one of us sees the other
                    await fut
    return ns() - t0


if pykka is not None:

    class PykkaTarget(pykka.ThreadingActor):  # type: ignore[misc]
        def ping(self) -> int:
            return 1


def pykka_sequential(proxy: Any, n: int) -> int:
    t0 = ns()
    for _ in range(n):
        proxy.ping().get()
    return ns() - t0


def pykka_pipelined(proxy: Any, batch: int, batches: int) -> int:
    t0 = ns()
    for _ in range(batches):
        pykka.get_all([proxy.ping() for _ in range(batch)])
    return ns() - t0


def portal_sequential(portal: Any, fn: Any, n: int) -> int:
    t0 = ns()
    for _ in range(n):
        portal.call(fn)
    return ns() - t0


def portal_pipelined(portal: Any, batch: int, batches: int) -> int:
    t0 = ns()
    for _ in range(batches):
        futures = [portal.start_task_soon(_aping) for _ in range(batch)]
        for future in futures:
            future.result()
    return ns() - t0


# ---------------------------------------------------------------------------------- rounds

Timer = Callable[[int], Awaitable[int]]  # n units -> ns for them


async def _interleaved(timers: dict[str, Timer], per: int, chunk: int, chunks: int, loop: str,
                       results: Results) -> None:
    """One warm-up chunk of every timer, then ``chunks`` chunks, rotating the order, so aptio
    and its baselines see the same machine state; each chunk is one sample (ns / op)."""
    keys = list(timers)
    for key in keys:
        await timers[key](max(1, chunk // 4))
    for i in range(chunks):
        for j in range(len(keys)):
            key = keys[(i + j) % len(keys)]
            _record(results, loop, key, await timers[key](chunk) / (chunk * per))


async def _aptio_round(sizes: Sizes, loop: str, results: Results, progress: Progress) -> None:
    """One round, inside a batched-transport aptio runtime (the main STA runs this). The
    baselines that need no runtime of their own (floor, naive, anyio, Pykka) run interleaved."""
    uv = loop == "uvloop"
    batch = sizes.batch
    a = await aptio.start_sta("bench A")
    b = await aptio.start_sta("bench B")
    driver = await a.create(Driver)
    target = await b.create(Target)
    free = await aptio.create(FreeTarget)
    with contextlib.ExitStack() as stack:
        la, lb = LoopThread(uv, "bench loop A"), LoopThread(uv, "bench loop B")
        stack.callback(lb.close)
        stack.callback(la.close)

        async def floor(n: int) -> int:
            return la.run(floor_sequential(lb.loop, n))

        async def naive(n: int) -> int:
            return la.run(naive_sequential(lb.loop, n))

        async def naive_pipe(n: int) -> int:
            return la.run(naive_pipelined(lb.loop, batch, n))

        async def bare_pipe(n: int) -> int:
            return la.run(bare_pipelined(lb.loop, batch, n))

        seq: dict[str, Timer] = {
            "aptio.seq.sta_sta": lambda n: driver.sequential(target, n),
            "floor.seq": floor,
            "naive.seq": naive,
            "aptio.seq_async.sta_sta": lambda n: driver.sequential_async(target, n),
            "aptio.seq.sta_mta": lambda n: driver.sequential(free, n),
            "aptio.seq.thread_sta": lambda n: asyncio.to_thread(_thread_sequential, target, n),
        }
        pipe: dict[str, Timer] = {
            "aptio.pipe.sta_sta": lambda n: driver.pipelined(target, batch, n),
            "naive.pipe": naive_pipe,
            "bare.pipe": bare_pipe,
            "aptio.pipe_gather.sta_sta": lambda n: driver.pipelined_gather(target, batch, n),
            "aptio.pipe_async.sta_sta": lambda n: driver.pipelined_async(target, batch, n),
            "aptio.pipe.sta_mta": lambda n: driver.pipelined(free, batch, n),
            "aptio.pipe.thread_sta": lambda n: asyncio.to_thread(_thread_pipelined, target,
                                                                 batch, n),
        }
        if pykka is not None:
            ref = PykkaTarget.start()
            stack.callback(ref.stop)
            pproxy = ref.proxy()
            seq["pykka.seq"] = lambda n: asyncio.to_thread(pykka_sequential, pproxy, n)
            pipe["pykka.pipe"] = lambda n: asyncio.to_thread(pykka_pipelined, pproxy, batch, n)
        if start_blocking_portal is not None:
            portal = stack.enter_context(
                start_blocking_portal("asyncio", backend_options={"use_uvloop": uv}))
            seq["anyio.seq.sync_fn"] = lambda n: asyncio.to_thread(portal_sequential, portal,
                                                                   _ping, n)
            seq["anyio.seq.async_fn"] = lambda n: asyncio.to_thread(portal_sequential, portal,
                                                                    _aping, n)
            pipe["anyio.pipe.async_fn"] = lambda n: asyncio.to_thread(portal_pipelined, portal,
                                                                      batch, n)
        progress(f"{loop}: sequential round trips (aptio and baselines interleaved)")
        await _interleaved(seq, 1, sizes.seq_chunk, max(1, sizes.seq // sizes.seq_chunk), loop,
                           results)
        progress(f"{loop}: pipelined (aptio and baselines interleaved)")
        await _interleaved(pipe, batch, 1, sizes.batches, loop, results)

    progress(f"{loop}: aptio same-apartment calls")
    local = await driver.same_apartment(sizes.local)
    for name, value in local.items():
        _record(results, loop, f"local.{name}", value)

    progress(f"{loop}: aptio create")
    creates = sizes.creates
    for _ in range(2):  # warm up, then keep
        t0 = ns()
        for _ in range(creates):
            await aptio.create(Target)
        t1 = ns()
        for _ in range(creates):
            await b.create(Target)
        t2 = ns()
        for _ in range(creates):
            Target()
        t3 = ns()
    _record(results, loop, "create.same", (t1 - t0) / creates)
    _record(results, loop, "create.other_sta", (t2 - t1) / creates)
    _record(results, loop, "create.direct", (t3 - t2) / creates)

    progress(f"{loop}: STA start/stop (and a bare loop thread's)")
    for _ in range(sizes.starts):
        t0 = ns()
        sta = await aptio.start_sta()
        t1 = ns()
        await sta.shutdown()
        t2 = ns()
        bare = LoopThread(uv, "bench bare")
        bare.run(_aping())  # running
        t3 = ns()
        bare.close()
        t4 = ns()
        _record(results, loop, "sta.start", t1 - t0)
        _record(results, loop, "sta.stop", t2 - t1)
        _record(results, loop, "bare.start", t3 - t2)
        _record(results, loop, "bare.stop", t4 - t3)

    await a.shutdown()
    await b.shutdown()


async def _reference_round(sizes: Sizes, loop: str, results: Results) -> None:
    """The STA-to-STA rows on the reference transport (run_coroutine_threadsafe per call)."""
    batch = sizes.batch
    a = await aptio.start_sta("ref A")
    b = await aptio.start_sta("ref B")
    use_reference_transport(a)
    use_reference_transport(b)
    driver = await a.create(Driver)
    target = await b.create(Target)
    await _interleaved({"reference.seq.sta_sta": lambda n: driver.sequential(target, n)}, 1,
                       sizes.seq_chunk, max(1, sizes.seq // sizes.seq_chunk), loop, results)
    await _interleaved({"reference.pipe.sta_sta": lambda n: driver.pipelined(target, batch, n)},
                       batch, 1, sizes.batches, loop, results)


# ---------------------------------------------------------------------------------- scale


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return 0


def _fd_count() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return 0


@aptio.coclass
class Pinner:
    """Pins the thread of the apartment it lives in to one CPU (Linux)."""

    def pin(self, cpu: int) -> None:
        _pin_this_thread(cpu)


async def _apin(cpu: int) -> None:
    _pin_this_thread(cpu)


def _pin_this_thread(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


@dataclass
class _Pairs:
    """The thread pairs every scale round is timed on: a caller STA and a target STA, and the
    floor's two bare loop threads, all four pinned to one CPU. On these VMs a wake-up across
    CPUs takes about 100 us per round trip and one on the same CPU about 20 us; unpinned, the
    scheduler's placement picks the mode, and it changes as hundreds of threads start. Pinned,
    every N is timed in the same mode, so the rows show what the idle STAs cost."""

    driver: Any
    target: Any
    la: LoopThread
    lb: LoopThread


async def _scale_rounds(sizes: Sizes, loop: str, scale: dict[str, Any],
                        progress: Progress) -> None:
    uv = loop == "uvloop"
    caller = await aptio.start_sta("scale caller")
    target_sta = await aptio.start_sta("scale target")
    pairs = _Pairs(await caller.create(Driver), await target_sta.create(Target),
                   LoopThread(uv, "scale floor A"), LoopThread(uv, "scale floor B"))
    cpu = min(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    for sta in (caller, target_sta):
        await (await sta.create(Pinner)).pin(cpu)
    for loop_thread in (pairs.la, pairs.lb):
        loop_thread.run(_apin(cpu))
    try:
        for n in sizes.scale:
            progress(f"{loop}: scale {n} STAs")
            await _scale_round(sizes, n, loop, scale, progress, pairs)
    finally:
        pairs.la.close()
        pairs.lb.close()
        await caller.shutdown()
        await target_sta.shutdown()


async def _scale_round(sizes: Sizes, n: int, loop: str, scale: dict[str, Any],
                       progress: Progress, pairs: _Pairs) -> None:
    """Start ``n`` idle STAs, time the caller's round trip to the target next to the floor,
    then measure what the idle ones cost. Memory is measured in a second pass with tracemalloc
    on (which slows Python down), so it does not distort the timings."""
    entry: dict[str, Any] = {}
    gc.collect()
    rss0, fds0 = _rss_bytes(), _fd_count()
    starts: list[int] = []
    stas = []
    for i in range(n):
        t0 = ns()
        stas.append(await aptio.start_sta(f"scale {i}"))
        starts.append(ns() - t0)
        if i % 100 == 99:
            progress(f"{loop}: scale {n}: started {i + 1} STAs")
    gc.collect()
    entry["rss_per_sta"] = (_rss_bytes() - rss0) / n
    entry["fds_per_sta"] = (_fd_count() - fds0) / n
    entry["start_median"] = statistics.median(starts)
    entry["start_mean"] = sum(starts) / n
    samples: Results = {}

    async def rtt(count: int) -> int:
        elapsed: int = await pairs.driver.sequential(pairs.target, count)
        return elapsed

    async def floor(count: int) -> int:
        return pairs.la.run(floor_sequential(pairs.lb.loop, count))

    chunk = min(sizes.seq_chunk, sizes.scale_seq)
    await _interleaved({"seq": rtt, "floor": floor}, 1, chunk,
                       max(1, sizes.scale_seq // chunk) * sizes.scale_repeat, loop, samples)
    entry["seq_samples"] = samples[loop]["seq"]
    entry["seq"] = statistics.median(samples[loop]["seq"])
    entry["floor"] = statistics.median(samples[loop]["floor"])
    progress(f"{loop}: scale {n}: stopping")
    t0 = ns()
    for sta in stas:
        await sta.shutdown()
    entry["stop_mean"] = (ns() - t0) / n
    stas.clear()

    progress(f"{loop}: scale {n}: tracemalloc pass")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        stas.append(await aptio.start_sta(f"scale {i}"))
    gc.collect()
    entry["traced_per_sta"] = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    for sta in stas:
        await sta.shutdown()
    scale.setdefault(loop, {})[str(n)] = entry


# ---------------------------------------------------------------------------------- report

# (label, key, baseline key for the ratio column or None): ROWS, in bench_rows.py


@dataclass
class TargetCheck:
    loop: str
    name: str
    measured: float  # the ratio or value checked
    limit: float
    op: str  # "<=" or ">="
    detail: str
    passed: bool


def _median(results: Results, loop: str, key: str) -> float | None:
    samples = results.get(loop, {}).get(key)
    return statistics.median(samples) if samples else None


def _check_targets(results: Results, scale: dict[str, Any]) -> list[TargetCheck]:
    checks: list[TargetCheck] = []

    def add(loop: str, name: str, value: float | None, limit: float, op: str,
            detail: str) -> None:
        if value is None:
            return
        passed = value <= limit if op == "<=" else value >= limit
        checks.append(TargetCheck(loop, name, value, limit, op, detail, passed))

    for loop in results:
        def m(key: str, loop: str = loop) -> float | None:
            return _median(results, loop, key)

        def ratio(num: str, den: str) -> float | None:
            a, b = m(num), m(den)
            return None if a is None or b is None or b == 0 else a / b

        add(loop, "seq STA->STA / floor", ratio("aptio.seq.sta_sta", "floor.seq"), 1.2, "<=",
            "sequential round trip vs two bare call_soon_threadsafe hops")
        add(loop, "seq STA->STA / pykka", ratio("aptio.seq.sta_sta", "pykka.seq"), 0.6, "<=",
            "sequential round trip vs Pykka proxy .get()")
        add(loop, "  ceiling: floor / pykka", ratio("floor.seq", "pykka.seq"), 0.6, "<=",
            "the best any transport can reach: two bare hops vs Pykka")
        add(loop, "naive pipelined / aptio", ratio("naive.pipe", "aptio.pipe.sta_sta"), 25, ">=",
            "pipelined per-call: naive run_coroutine_threadsafe is N x slower")
        add(loop, "  ceiling: naive / bare deque", ratio("naive.pipe", "bare.pipe"), 25, ">=",
            "the best any batched transport can reach: a deque with no call semantics")
        add(loop, "pipelined STA->STA / bare deque", ratio("aptio.pipe.sta_sta", "bare.pipe"),
            1.5, "<=", "pipelined per-call vs a deque with one wake-up per batch, no semantics")
        add(loop, "pykka pipelined / aptio", ratio("pykka.pipe", "aptio.pipe.sta_sta"), 4, ">=",
            "pipelined per-call: Pykka is N x slower")
        add(loop, "same-apt proxy / direct await",
            ratio("local.proxy_async", "local.direct_await"), 3, "<=",
            "async method through a proxy in its own apartment vs awaiting it directly")
        add(loop, "same-apt sync proxy / done Future",
            ratio("local.proxy_sync", "local.done_future"), 3, "<=",
            "sync method through a proxy in its own apartment vs awaiting a done Future")
    for loop, by_n in scale.items():
        sizes = sorted(by_n, key=int)
        low, high = by_n[sizes[0]], by_n[sizes[-1]]
        if len(sizes) > 1:
            add(loop, f"seq with {sizes[-1]} STAs / {sizes[0]} STA", high["seq"] / low["seq"],
                1.2, "<=", "round trip with many idle STAs alive")
            add(loop, "  same, each over its floor", (high["seq"] / high["floor"])
                / (low["seq"] / low["floor"]), 1.2, "<=",
                "the same ratio, each figure divided by the floor measured alongside it")
        add(loop, f"STA start, {sizes[-1]} STAs (us)", high["start_median"] / 1000, 1000, "<=",
            "median start_sta() while that many run")
        if loop == "asyncio":
            add(loop, f"idle STA memory, {sizes[-1]} STAs (KiB)", high["rss_per_sta"] / 1024,
                64, "<=", "RSS delta per idle STA")
    return checks


def _fmt(value: float | None, unit: float = 1000.0) -> str:
    if value is None:
        return "-"
    v = value / unit
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}" if v < 10 else f"{v:.1f}"


def render(results: Results, scale: dict[str, Any], checks: list[TargetCheck]) -> str:
    loops = list(results)
    out: list[str] = []
    head = f"{'per call / op (median)':<40}" + "".join(
        f"{loop + ' us':>12}{'ratio':>8}" for loop in loops)
    out += ["", head, "-" * len(head)]
    for label, key, base in ROWS:
        if not any(results[loop].get(key) for loop in loops):
            continue
        line = f"{label:<40}"
        for loop in loops:
            value = _median(results, loop, key)
            ratio = "" if base is None or base == key else "-"
            if base is not None and base != key:
                b = _median(results, loop, base)
                if value is not None and b:
                    ratio = f"{value / b:.2f}x"
            line += f"{_fmt(value):>12}{ratio:>8}"
        out.append(line)
    out.append("ratio column: the row / its group's baseline (floor, naive pipelined, direct, "
               "bare loop thread)")
    if scale:
        out += ["", "scale (N idle STAs alive; one STA calls another: the same two every N, "
                "pinned to one CPU with the floor's two threads)"]
        head = (f"{'loop':<9}{'N':>6}{'seq us':>10}{'xN=1':>7}{'floor us':>10}{'/floor':>8}"
                f"{'start us':>10}{'stop us':>10}"
                f"{'RSS KiB/STA':>13}{'traced KiB':>12}{'fds/STA':>9}")
        out += [head, "-" * len(head)]
        for loop, by_n in scale.items():
            first = by_n[min(by_n, key=int)]
            for n in sorted(by_n, key=int):
                e = by_n[n]
                out.append(
                    f"{loop:<9}{n:>6}{e['seq'] / 1000:>10.1f}{e['seq'] / first['seq']:>6.2f}x"
                    f"{e['floor'] / 1000:>10.1f}{e['seq'] / e['floor']:>7.2f}x"
                    f"{e['start_median'] / 1000:>10.0f}{e['stop_mean'] / 1000:>10.0f}"
                    f"{e['rss_per_sta'] / 1024:>13.1f}{e['traced_per_sta'] / 1024:>12.1f}"
                    f"{e['fds_per_sta']:>9.2f}")
    if checks:
        out += ["", "targets"]
        head = f"{'loop':<9}{'target':<40}{'measured':>10}{'limit':>10}  result"
        out += [head, "-" * len(head)]
        for c in checks:
            out.append(f"{c.loop:<9}{c.name:<40}{c.measured:>10.2f}{c.op:>4}{c.limit:>6g}  "
                       f"{'pass' if c.passed else 'MISS'}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------- markdown

# The markdown tables: one per kind of baseline, so that every ratio column names its baseline.
# ROWS rows whose baseline is not listed here get a table of their own.
_MD_TABLES: dict[str, tuple[str, str]] = {  # baseline key -> (first column, ratio column)
    "floor.seq": ("sequential round trip, µs per call", "÷ floor"),
    "naive.pipe": ("pipelined (a batch sent, then awaited), µs per call", "÷ naive pipelined"),
    "local.direct_await": ("same-apartment call, µs per call", "÷ direct call or await"),
    "local.direct_sync": ("same-apartment call, µs per call", "÷ direct call or await"),
    "create.direct": ("creating an object, µs", "÷ direct construction"),
    "bare.start": ("starting and stopping an STA, µs", "÷ bare loop thread"),
    "bare.stop": ("starting and stopping an STA, µs", "÷ bare loop thread"),
}
_MD_METHODS = [  # (row, sync method key, async method key)
    ("sequential STA→STA", "aptio.seq.sta_sta", "aptio.seq_async.sta_sta"),
    ("pipelined STA→STA", "aptio.pipe.sta_sta", "aptio.pipe_async.sta_sta"),
    ("same-apartment proxy call", "local.proxy_sync", "local.proxy_async"),
]


def _md_table(head: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    align = ["---"] * text_columns + ["---:"] * (len(head) - text_columns)
    return ["| " + " | ".join(cells) + " |" for cells in (head, align, *rows)]


def render_markdown(results: Results, scale: dict[str, Any], checks: list[TargetCheck],
                    caption: str) -> str:
    """The tables of one run as markdown blocks between ``<!-- bench:NAME:begin -->`` and
    ``<!-- bench:NAME:end -->`` lines, which ``benchmarks/update_docs.py`` puts into the docs:
    ``calls`` (every row, one table per kind of baseline), ``scale``, ``targets``, and
    ``methods-X.Y`` (sync against async methods on this Python version)."""
    loops = list(results) or list(scale)
    blocks: dict[str, list[str]] = {}

    def ratio(value: float | None, base: float | None) -> str:
        if value is None or not base:
            return ""
        r = value / base
        return f"{r:.2f}x" if r < 10 else f"{r:.1f}x" if r < 100 else f"{r:,.0f}x"

    groups: dict[tuple[str, str], list[list[str]]] = {}
    for label, key, base in ROWS:
        if not any(results[loop].get(key) for loop in loops):
            continue
        base_key = key if base is None else base
        title = _MD_TABLES.get(base_key, (label.strip(), f"÷ {base_key}"))
        cells = [label.strip().replace("->", "→")]
        for loop in loops:
            value = _median(results, loop, key)
            cells += [_fmt(value), "" if base_key == key else
                      ratio(value, _median(results, loop, base_key))]
        groups.setdefault(title, []).append(cells)
    lines = [caption, ""]
    for (first, ratio_head), rows in groups.items():
        head = [first]
        for loop in loops:
            head += [loop, ratio_head]
        lines += [*_md_table(head, rows), ""]
    blocks["calls"] = lines[:-1]

    if scale:
        rows = []
        fewest = min(int(n) for by_n in scale.values() for n in by_n)
        for loop, by_n in scale.items():
            first = by_n[min(by_n, key=int)]
            for n in sorted(by_n, key=int):
                e = by_n[n]
                rows.append([loop, f"{int(n):,}", f"{e['seq'] / 1000:.1f}",
                             f"{e['seq'] / first['seq']:.2f}x", f"{e['floor'] / 1000:.1f}",
                             f"{e['seq'] / e['floor']:.2f}x", f"{e['start_median'] / 1000:.0f}",
                             f"{e['rss_per_sta'] / 1024:.1f}", f"{e['fds_per_sta']:.0f}"])
        blocks["scale"] = _md_table(
            ["loop", "idle STAs", "round trip µs", f"÷ with {fewest}",
             "floor µs", "round trip ÷ floor", "STA start µs", "RSS KiB per idle STA",
             "fds per STA"], rows)

    if checks:
        names = list(dict.fromkeys(c.name for c in checks))
        target_loops = list(dict.fromkeys(c.loop for c in checks))
        rows = []
        for name in names:
            by_loop = {c.loop: c for c in checks if c.name == name}
            some = next(iter(by_loop.values()))
            cells = [name.strip().replace("->", "→"), some.detail,
                     f"{'≤' if some.op == '<=' else '≥'} {some.limit:g}"]
            for loop in target_loops:
                c = by_loop.get(loop)
                cells.append("" if c is None else
                             f"{c.measured:.2f} {'met' if c.passed else '**missed**'}")
            rows.append(cells)
        blocks["targets"] = _md_table(["target", "what it compares", "limit", *target_loops],
                                      rows, text_columns=2)

    if results:
        rows = []
        for label, sync_key, async_key in _MD_METHODS:
            cells = [label]
            for loop in loops:
                sync_value = _median(results, loop, sync_key)
                async_value = _median(results, loop, async_key)
                cells += [_fmt(sync_value), _fmt(async_value), ratio(async_value, sync_value)]
            rows.append(cells)
        head = ["per call, µs"]
        for loop in loops:
            head += [f"{loop}, sync method", f"{loop}, async method", "async ÷ sync"]
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        blocks[f"methods-{version}"] = [f"Python {platform.python_version()}:", "",
                                        *_md_table(head, rows)]

    out: list[str] = []
    for name, body in blocks.items():
        out += [f"<!-- bench:{name}:begin -->", *body, f"<!-- bench:{name}:end -->", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------- main


def run_suite(sizes: Sizes, loops: list[str], progress: Progress) -> tuple[Results, dict[str, Any]]:
    results: Results = {loop: {} for loop in loops} if sizes.repeat else {}
    for r in range(sizes.repeat):
        for loop in loops:
            uv = loop == "uvloop"
            progress(f"round {r + 1}/{sizes.repeat}, {loop}")

            async def batched(loop: str = loop) -> None:
                await _aptio_round(sizes, loop, results, progress)

            async def reference(loop: str = loop) -> None:
                await _reference_round(sizes, loop, results)

            aptio.run(batched, use_uvloop=uv)
            progress(f"{loop}: aptio reference transport")
            aptio.run(reference, use_uvloop=uv)
    scale: dict[str, Any] = {}
    for loop in loops:
        if sizes.scale:

            async def scaled(loop: str = loop) -> None:
                await _scale_rounds(sizes, loop, scale, progress)

            aptio.run(scaled, use_uvloop=loop == "uvloop")
    return results, scale


def _parse(argv: list[str]) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(prog="python -m aptio bench",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--repeat", type=int, help="rounds per measurement (median reported)")
    parser.add_argument("--loops", default=None,
                        help="comma-separated loop kinds: asyncio,uvloop (default: both)")
    parser.add_argument("--scale", default=None,
                        help="comma-separated live-STA counts, e.g. 1,100,1000; empty: skip")
    parser.add_argument("--seq", type=int, help="sequential calls per sample")
    parser.add_argument("--batch", type=int, help="calls per pipelined batch")
    parser.add_argument("--only", choices=("calls", "scale", "processes", "sqlite"),
                        help="run only the call rows, the scale rows, the rows of calls into "
                        "server processes (python -m aptio bench processes has more options), "
                        "or the sqlite rows")
    parser.add_argument("--builds", action="store_true",
                        help="compare the compiled build with the pure-Python one: each round "
                             "runs the bench once in each, in turns (child processes)")
    parser.add_argument("--json", metavar="PATH", help="write every figure to this JSON file")
    parser.add_argument("--markdown", metavar="PATH",
                        help="write the docs' tables to this file (benchmarks/update_docs.py "
                        "puts them into README.md and the performance guide)")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    changes: dict[str, Any] = {}
    if args.repeat is not None:
        changes["repeat"] = max(1, args.repeat)
        changes["scale_repeat"] = max(1, args.repeat)
    if args.seq is not None:
        changes["seq"] = changes["scale_seq"] = max(1, args.seq)
        changes["seq_chunk"] = min(sizes.seq_chunk, changes["seq"])
    if args.batch is not None:
        changes["batch"] = max(1, args.batch)
    if args.only in ("scale", "processes", "sqlite"):
        changes["repeat"] = 0
    if args.only in ("processes", "sqlite"):
        changes["scale"] = ()
    if args.only == "calls":
        changes["scale"] = ()
    if args.scale is not None and args.only != "calls":
        changes["scale"] = tuple(int(x) for x in args.scale.split(",") if x.strip())
    if changes:
        sizes = Sizes(**{**asdict(sizes), **changes})
    return args, sizes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, sizes = _parse(argv)
    if args.builds:
        from bench_builds import compare_builds

        return compare_builds([a for a in argv if a != "--builds"], args.repeat or 3,
                              args.markdown)
    if args.loops:
        loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    else:
        loops = ["asyncio", "uvloop"] if uvloop_available() else ["asyncio"]
    for loop in loops:
        if loop not in ("asyncio", "uvloop"):
            raise SystemExit(f"unknown loop kind {loop!r}: use asyncio or uvloop")
        if loop == "uvloop" and not uvloop_available():
            raise SystemExit("uvloop is not installed")
    progress = Progress(not args.no_progress)
    t0 = time.monotonic()
    results, scale = run_suite(sizes, loops, progress)
    processes: dict[str, Any] = {}
    process_sizes = None
    if args.only in (None, "processes"):  # calls into server processes, in the same run
        import bench_processes

        process_sizes = bench_processes.QUICK if args.quick else bench_processes.Sizes()
        if args.repeat is not None:
            process_sizes = replace(process_sizes, repeat=max(1, args.repeat))
        processes = bench_processes.run(process_sizes, loops, progress)
    sqlite: dict[str, Any] = {}
    if args.only in (None, "sqlite"):  # a sqlite3 connection served to tasks, against aiosqlite
        sqlite_sizes = SQLITE_QUICK if args.quick else SqliteSizes(
            repeat=max(1, args.repeat) if args.repeat else SqliteSizes.repeat)
        sqlite = run_sqlite(sqlite_sizes, loops, progress)
    progress.done()
    checks = _check_targets(results, scale)
    print(f"aptio bench: Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {sizes.repeat} rounds (median), "
          f"{time.monotonic() - t0:.0f} s")
    print(f"aptio: {aptio._compiled.DESCRIPTION}")
    if results or scale:
        print(render(results, scale, checks), end="")
    if processes:
        print()
        print(bench_processes.render(processes))
    if sqlite:
        print(render_sqlite(sqlite), end="")
    if args.json:
        data = {
            "meta": {"python": platform.python_version(), "platform": platform.platform(),
                     "compiled": aptio.compiled,
                     "cpus": os.cpu_count(), "loops": loops, "sizes": asdict(sizes),
                     "unit": "ns per call/op (median of samples)"},
            "results": {loop: {key: {"median": statistics.median(v), "samples": v}
                               for key, v in by_key.items()}
                        for loop, by_key in results.items()},
            "scale": scale,
            "sqlite": {loop: {key: {"median": statistics.median(v), "samples": v}
                              for key, v in by_key.items()}
                       for loop, by_key in sqlite.items()},
            "targets": [asdict(c) for c in checks],
            "processes": processes,
        }
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    if args.markdown:
        caption = (f"CPython {platform.python_version()} on {os.cpu_count()} CPUs "
                   f"({platform.machine()}), median of {sizes.repeat} rounds; batches of "
                   f"{sizes.batch} calls for the pipelined rows.")
        with open(args.markdown, "w", encoding="utf-8") as f:
            # Only the blocks this run measured: an empty block would blank the docs' table
            # of that name (a run with --only sqlite measured no calls).
            if any(results.values()) or scale:
                f.write(render_markdown(results, scale, checks, caption))
            if processes and process_sizes is not None:
                f.write(bench_processes.render_markdown(processes,
                                                        bench_processes.caption(process_sizes)))
            if sqlite:
                f.write(render_sqlite_markdown(sqlite, (
                    f"CPython {platform.python_version()} on {os.cpu_count()} CPUs, "
                    f"{aptio._compiled.DESCRIPTION}; median of "
                    f"{sqlite_sizes.repeat} rounds, "
                    "wall-clock and process CPU time per operation.")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main", "render", "run_suite", "Sizes", "QUICK"]
