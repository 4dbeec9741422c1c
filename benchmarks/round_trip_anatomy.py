"""Where a sequential round trip's time goes: each thread's own work against the wake-ups.

    python benchmarks/round_trip_anatomy.py [--ops N] [--runs R] [--loop uvloop|asyncio]
                                            [CONTENDER ...]

Serves the sqlite bench's sequential operations (``bench_sqlite.py``) with one contender per
process (aptio, aiosqlite, loopshape, queueshape; all four by default, in turns, ``--runs``
times), each under ``perf record`` with the system calls' tracepoints, and splits an operation
into four parts from their timestamps:

* the caller's turnaround: from the caller's wake-up (the return of the ``epoll`` or
  ``futex`` wait it slept in) to its next request's wake-up call (the ``write`` to an event
  loop's eventfd, ``sendto`` to asyncio's self-pipe, or a ``futex`` wake of a thread blocked
  on a queue);
* the wake-up of the connection's thread: from that call to the thread's return from its wait;
* the connection thread's turnaround (the same, with the statement), and
* the wake-up of the caller.

Each part is the median over the run's operations; the wall time is the run's own. Needs
``perf`` with access to the ``syscalls`` tracepoints (root, or ``perf_event_paranoid`` at -1);
exits with status 2 saying so when it has not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

CONTENDERS = ("aptio", "aiosqlite", "loopshape", "queueshape")

#: The tracepoints recorded: the waits a thread sleeps in and the calls that wake another.
TRACEPOINTS = ",".join(
    f"syscalls:sys_{edge}_{name}"
    for name in ("epoll_wait", "epoll_pwait", "futex", "write", "sendto")
    for edge in ("enter", "exit"))

_FUTEX_WAIT_OPS = (0, 9)  # FUTEX_WAIT, FUTEX_WAIT_BITSET (the private flag masked off)
_FUTEX_WAKE_OPS = (1, 10)  # FUTEX_WAKE, FUTEX_WAKE_BITSET
_EVENT = re.compile(
    r"^\s*\S.*?\s+(?P<tid>\d+)\s+\[\d+\]\s+(?P<time>\d+\.\d+):\s+syscalls:sys_"
    r"(?P<edge>enter|exit)_(?P<name>\w+):\s*(?P<args>.*)$")


@dataclass(frozen=True)
class Event:
    """One system call's entry or exit on one thread (times in microseconds)."""

    time: float
    tid: int
    edge: str  # "enter" or "exit"
    name: str
    args: str


def parse_perf_script(text: str) -> list[Event]:
    """The events of ``perf script`` output, in time order."""
    events = []
    for line in text.splitlines():
        match = _EVENT.match(line)
        if match:
            events.append(Event(float(match["time"]) * 1e6, int(match["tid"]), match["edge"],
                                match["name"], match["args"]))
    events.sort(key=lambda event: event.time)
    return events


def _futex_op(args: str) -> int:
    match = re.search(r"op: (0x[0-9a-f]+)", args)
    return int(match.group(1), 16) & 0x7F if match else -1


def _is_wait(event: Event) -> bool:
    """An entry into a call that may sleep until another thread wakes this one."""
    if event.name in ("epoll_wait", "epoll_pwait"):
        return "timeout: 0x00000000," not in event.args + ","
    return event.name == "futex" and _futex_op(event.args) in _FUTEX_WAIT_OPS


def _is_wake_call(event: Event) -> bool:
    """An entry into a call that wakes another thread."""
    if event.name in ("write", "sendto"):
        return True
    return event.name == "futex" and _futex_op(event.args) in _FUTEX_WAKE_OPS


@dataclass
class _Thread:
    woke_at: float | None = None  # when it last returned from a wait
    posted_at: float | None = None  # its first wake-up call since then
    waiting_since: float | None = None
    turnarounds: list[float] = field(default_factory=list)
    wake_ups: list[float] = field(default_factory=list)  # the other's call -> this one's return


@dataclass(frozen=True)
class Anatomy:
    """Medians, in microseconds per operation."""

    caller_turnaround: float
    owner_turnaround: float
    owner_wake_up: float  # the caller's wake-up call -> the connection's thread running
    caller_wake_up: float
    operations: int

    @property
    def total(self) -> float:
        return (self.caller_turnaround + self.owner_turnaround + self.owner_wake_up
                + self.caller_wake_up)


def anatomy(events: Iterable[Event], caller: int, start: float = 0.0,
            end: float = float("inf")) -> Anatomy:
    """Split the round trips between thread ``caller`` and the busiest other thread, from the
    events between ``start`` and ``end``. A wait that returns within a microsecond did not
    sleep and counts as no wake-up."""
    chosen = [event for event in events if start <= event.time <= end]
    counts: dict[int, int] = {}
    for event in chosen:
        counts[event.tid] = counts.get(event.tid, 0) + 1
    others = sorted((tid for tid in counts if tid != caller), key=lambda tid: -counts[tid])
    if caller not in counts or not others:
        raise ValueError("the trace holds no round trips between two threads")
    owner = others[0]
    threads = {caller: _Thread(), owner: _Thread()}
    for event in chosen:
        thread = threads.get(event.tid)
        if thread is None:
            continue
        other = threads[owner if event.tid == caller else caller]
        if event.edge == "enter" and _is_wait(event):
            thread.waiting_since = event.time
        elif event.edge == "exit" and thread.waiting_since is not None:
            slept = event.time - thread.waiting_since > 1.0
            thread.waiting_since = None
            if slept:
                if other.posted_at is not None and other.posted_at <= event.time:
                    thread.wake_ups.append(event.time - other.posted_at)
                thread.woke_at, thread.posted_at = event.time, None
        elif (event.edge == "enter" and _is_wake_call(event) and thread.woke_at is not None
              and thread.posted_at is None):
            thread.posted_at = event.time
            thread.turnarounds.append(event.time - thread.woke_at)

    def median(values: list[float], what: str) -> float:
        if not values:
            raise ValueError(f"the trace shows no {what}")
        return statistics.median(values)

    return Anatomy(median(threads[caller].turnarounds, "turnaround of the caller"),
                   median(threads[owner].turnarounds, "turnaround of the serving thread"),
                   median(threads[owner].wake_ups, "wake-up of the serving thread"),
                   median(threads[caller].wake_ups, "wake-up of the caller"),
                   len(threads[caller].turnarounds))


def _serve(contender: str, loop: str, ops: int) -> None:
    """The child: the contender's sequential operations, then one line: wall microseconds per
    operation and the measured phase's CLOCK_MONOTONIC bounds in microseconds."""
    import bench_sqlite as sqlite_bench

    import aptio

    async def main(path: str) -> None:
        operations = sqlite_bench.operations(ops)
        closing: list[Callable[[], Awaitable[Any]]] = []
        if contender == "aptio":
            sta = await aptio.start_sta("anatomy")
            store = await sta.create(sqlite_bench.Store, path)
            runner = lambda o, w: sqlite_bench._aptio_ops(store, o, w)  # noqa: E731
            closing = [store.close, sta.shutdown]
        elif contender == "aiosqlite":
            import aiosqlite

            db = await aiosqlite.connect(path)
            await db.execute("PRAGMA synchronous=OFF")
            runner = lambda o, w: sqlite_bench._aiosqlite_ops(db, o, w)  # noqa: E731
            closing = [db.close]
        else:
            shape: sqlite_bench._LoopShape | sqlite_bench._QueueShape = (
                sqlite_bench._LoopShape(path, loop == "uvloop") if contender == "loopshape"
                else sqlite_bench._QueueShape(path))
            runner = lambda o, w: sqlite_bench._shape_ops(shape, o, w)  # noqa: E731
        await sqlite_bench._timed(runner, operations[: max(1, ops // 10)], 1)
        start = time.monotonic()
        wall, _ = await sqlite_bench._timed(runner, operations, 1)
        end = time.monotonic()
        for close in closing:
            await close()
        if contender.endswith("shape"):
            shape.close()
        print(f"{wall / 1000:.3f} {start * 1e6:.1f} {end * 1e6:.1f}")

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "anatomy.sqlite3")
        sqlite_bench._prepare(path)
        aptio.run(main(path), use_uvloop=loop == "uvloop")


def _traced(contender: str, loop: str, ops: int) -> tuple[float, Anatomy]:
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "perf.data")
        child = subprocess.run(
            ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-e", TRACEPOINTS, "-o", data,
             "--", sys.executable, os.path.abspath(__file__), "--serve", contender,
             "--loop", loop, "--ops", str(ops)],
            capture_output=True, text=True, check=False)
        if child.returncode != 0:
            raise SystemExit(f"perf record failed ({child.returncode}): "
                             f"{child.stderr.strip()[-400:]}")
        wall, start, end = (float(word) for word in child.stdout.split()[-3:])
        script = subprocess.run(["perf", "script", "--ns", "-i", data], capture_output=True,
                                text=True, check=True).stdout
    events = parse_perf_script(script)
    caller = _main_thread(events)
    return wall, anatomy(events, caller, start, end)


def _main_thread(events: list[Event]) -> int:
    """The child's main thread (its tid is the process id, the smallest of its threads)."""
    return min(event.tid for event in events)


def _perf_usable() -> str | None:
    """None if ``perf`` can record the tracepoints here, else why not."""
    if shutil.which("perf") is None:
        return "perf is not installed"
    probe = subprocess.run(["perf", "record", "-q", "-e", "syscalls:sys_enter_write",
                            "-o", os.devnull, "--", "true"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        return ("perf cannot record the syscalls tracepoints here (run as root, or set "
                f"kernel.perf_event_paranoid to -1): {probe.stderr.strip()[-300:]}")
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("contenders", nargs="*", metavar="CONTENDER",
                        help=f"any of {', '.join(CONTENDERS)} (default: all)")
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--serve", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.contenders) - set(CONTENDERS))
    if unknown:
        parser.error(f"unknown contender {', '.join(unknown)}: choose from {', '.join(CONTENDERS)}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if args.serve:
        _serve(args.serve, args.loop, args.ops)
        return
    reason = _perf_usable()
    if reason is not None:
        print(f"round_trip_anatomy: {reason}", file=sys.stderr)
        raise SystemExit(2)
    contenders = args.contenders or list(CONTENDERS)
    print(f"{args.loop}, {args.ops} sequential operations per run; medians in microseconds")
    print(f"{'run':>3}  {'contender':10} {'wall':>7} {'caller':>7} {'owner':>7} "
          f"{'wake->owner':>11} {'wake->caller':>12} {'sum':>7}")
    for run in range(args.runs):
        order = contenders if run % 2 == 0 else contenders[::-1]
        for contender in order:
            wall, parts = _traced(contender, args.loop, args.ops)
            print(f"{run + 1:>3}  {contender:10} {wall:7.1f} {parts.caller_turnaround:7.1f} "
                  f"{parts.owner_turnaround:7.1f} {parts.owner_wake_up:11.1f} "
                  f"{parts.caller_wake_up:12.1f} {parts.total:7.1f}", flush=True)
    print("caller/owner: each thread's turnaround, from its wake-up to its wake-up call; "
          "wake->: from that call to the other thread's return from its wait")


if __name__ == "__main__":
    main()
