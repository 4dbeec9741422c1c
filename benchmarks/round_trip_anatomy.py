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
``perf`` with access to the ``syscalls`` tracepoints (root, or ``kernel.perf_event_paranoid``
at -1); exits with status 2 saying so when it has not. Tracing adds its own cost to every
system call, so the parts read a little longer than untraced, and more so for a contender
that makes more calls per operation.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_sqlite as sqlite_bench  # beside this file

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


def _returned_value(event: Event) -> int:
    """A system call's return value, from its exit event (negative for an error)."""
    try:
        value = int(event.args.split()[0].rstrip(","), 16)
    except (IndexError, ValueError):
        return -1
    return value - (1 << 64) if value >= 1 << 63 else value


def _is_wake_call(event: Event) -> bool:
    """An entry into a call that wakes another thread: a ``write`` to an event loop's
    eventfd, a ``sendto`` to asyncio's self-pipe, a ``futex`` wake of a blocked lock."""
    if event.name in ("write", "sendto"):
        return True
    return event.name == "futex" and _futex_op(event.args) in _FUTEX_WAKE_OPS


@dataclass
class _Thread:
    resumed_at: float | None = None  # when the other thread's request or reply got it running
    posted: bool = False  # it has made its wake-up call since it resumed
    pending_since: float | None = None  # its wake-up call, until the other thread resumes
    in_futex_wait: bool = False
    turnarounds: list[float] = field(default_factory=list)
    wake_ups: list[float] = field(default_factory=list)  # the other's call -> its resuming


@dataclass(frozen=True)
class Anatomy:
    """Medians, in microseconds per operation."""

    caller_turnaround: float
    owner_turnaround: float
    owner_wake_up: float  # the caller's wake-up call -> the connection's thread resuming
    caller_wake_up: float
    operations: int

    @property
    def total(self) -> float:
        return (self.caller_turnaround + self.owner_turnaround + self.owner_wake_up
                + self.caller_wake_up)


def _resumes(event: Event, thread: _Thread) -> bool:
    """Whether ``event`` returns ``thread`` from a wait with something to do: an ``epoll``
    that reports an event, or a ``futex`` wait. (Polls that report nothing, and the returns
    of calls that do not wait, do not count.)"""
    if event.name in ("epoll_wait", "epoll_pwait"):
        return _returned_value(event) > 0
    return event.name == "futex" and thread.in_futex_wait


def anatomy(events: Iterable[Event], caller: int, start: float = 0.0,
            end: float = float("inf")) -> Anatomy:
    """Split the round trips between thread ``caller`` and the busiest other thread, from the
    events between ``start`` and ``end``.

    A thread resumes at the first return from a wait after the other thread's wake-up call
    (whether or not it slept by then); its turnaround runs from there to its own first wake-up
    call. Waits in between (for the interpreter lock, say) stay inside the turnaround."""
    chosen = [event for event in events if start <= event.time <= end]
    counts = collections.Counter(event.tid for event in chosen)
    others = [tid for tid, _ in counts.most_common() if tid != caller]
    if caller not in counts or not others:
        raise ValueError("the trace holds no round trips between two threads")
    owner = others[0]
    threads = {caller: _Thread(), owner: _Thread()}
    for event in chosen:
        thread = threads.get(event.tid)
        if thread is None:
            continue
        other = threads[owner if event.tid == caller else caller]
        if event.edge == "enter":
            if event.name == "futex":
                thread.in_futex_wait = _futex_op(event.args) in _FUTEX_WAIT_OPS
            if _is_wake_call(event) and not thread.posted:
                thread.posted = True
                thread.pending_since = event.time
                if thread.resumed_at is not None:
                    thread.turnarounds.append(event.time - thread.resumed_at)
        elif other.pending_since is not None and _resumes(event, thread):
            thread.wake_ups.append(event.time - other.pending_since)
            other.pending_since = None
            thread.resumed_at, thread.posted = event.time, False

    def median(values: list[float], what: str) -> float:
        if not values:
            raise ValueError(f"the trace shows no {what}")
        return statistics.median(values)

    return Anatomy(median(threads[caller].turnarounds, "turnaround of the caller"),
                   median(threads[owner].turnarounds, "turnaround of the serving thread"),
                   median(threads[owner].wake_ups, "wake-up of the serving thread"),
                   median(threads[caller].wake_ups, "wake-up of the caller"),
                   len(threads[caller].turnarounds))


#: The contenders this tool splits: not aptio with an idle spin, whose connection thread makes
#: no wait to split its part at when the next request finds it still polling.
TRACEABLE = tuple(name for name in sqlite_bench.CONTENDERS if name != "aptiospin")


def _serve(contender: str, loop: str, ops: int) -> None:
    """The child: the contender's sequential operations, then one line: wall microseconds per
    operation, the measured phase's CLOCK_MONOTONIC bounds in microseconds and the calling
    (main) thread's id."""
    import aptio

    async def main(path: str) -> None:
        operations = sqlite_bench.operations(ops)
        served = await sqlite_bench.open_contender(contender, path, loop == "uvloop")
        try:
            await sqlite_bench._timed(served.run, operations[: max(1, ops // 10)], 1)
            start = time.monotonic()
            wall, _ = await sqlite_bench._timed(served.run, operations, 1)
            end = time.monotonic()
        finally:
            await served.close()
        print(f"{wall / 1000:.3f} {start * 1e6:.1f} {end * 1e6:.1f} {threading.get_native_id()}")

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "anatomy.sqlite3")
        sqlite_bench._prepare(path)
        aptio.run(main(path), use_uvloop=loop == "uvloop")


#: How long one traced run may take before it is stopped (its operations take well under a
#: second per thousand; perf's start and its script of the trace take seconds).
RUN_TIMEOUT = 300.0


def _traced(contender: str, loop: str, ops: int) -> tuple[float, Anatomy]:
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "perf.data")
        command = ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-e", TRACEPOINTS,
                   "-o", data, "--", sys.executable, os.path.abspath(__file__), "--serve",
                   contender, "--loop", loop, "--ops", str(ops)]
        stdout, stderr, status = _run_in_own_group(command)
        if status != 0:
            raise SystemExit(f"round_trip_anatomy: the traced run of {contender} failed "
                             f"({status}): {stderr.strip()[-400:]}")
        wall, start, end, caller = stdout.split()[-4:]
        script, stderr, status = _run_in_own_group(["perf", "script", "--ns", "-i", data])
        if status != 0:
            raise SystemExit(f"round_trip_anatomy: perf script failed ({status}): "
                             f"{stderr.strip()[-400:]}")
    return float(wall), anatomy(parse_perf_script(script), int(caller), float(start),
                                float(end))


def _run_in_own_group(command: list[str]) -> tuple[str, str, int]:
    """Run ``command`` in a process group of its own; past RUN_TIMEOUT the whole group is
    killed (perf and the traced child with it) and this exits saying so."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise SystemExit(f"round_trip_anatomy: {' '.join(command[:2])} took over "
                         f"{RUN_TIMEOUT:.0f} s and was stopped") from None
    return stdout, stderr, process.returncode


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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("contenders", nargs="*", metavar="CONTENDER",
                        help=f"any of {', '.join(TRACEABLE)} (default: all)")
    parser.add_argument("--ops", type=_positive, default=5000)
    parser.add_argument("--runs", type=_positive, default=3)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--serve", choices=TRACEABLE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.contenders) - set(TRACEABLE))
    if unknown:
        parser.error(f"unknown contender {', '.join(unknown)}: "
                     f"choose from {', '.join(TRACEABLE)}")
    if args.serve:
        _serve(args.serve, args.loop, args.ops)
        return
    reason = _perf_usable()
    if reason is not None:
        print(f"round_trip_anatomy: {reason}", file=sys.stderr)
        raise SystemExit(2)
    contenders = args.contenders or list(TRACEABLE)
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
