"""The round-trip anatomy tool: its split of a trace into turnarounds and wake-ups, and (where
``perf`` may record system calls) a short run of it."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
from typing import Any

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
TOOL = BENCHMARKS / "round_trip_anatomy.py"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("round_trip_anatomy", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["round_trip_anatomy"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


anatomy_tool = _load()

CALLER, OWNER = 100, 101
WAIT = "epfd: 0x00000003, events: 0x7ffe, maxevents: 0x00000400, timeout: 0xffffffff, sigmask: 0x0"
POLL = "epfd: 0x00000003, events: 0x7ffe, maxevents: 0x00000400, timeout: 0x00000000, sigmask: 0x0"
FUTEX_WAIT = "uaddr: 0x7f00, op: 0x00000089, val: 0x00000000, utime: 0x00000000"
FUTEX_WAKE = "uaddr: 0x7f00, op: 0x00000081, val: 0x00000001, utime: 0x00000000"


def _line(tid: int, micros: float, edge: str, name: str, args: str = "0x1") -> str:
    seconds = micros / 1e6
    return (f"          python {tid:6d} [001] {seconds:.9f}: syscalls:sys_{edge}_{name}: "
            f"{args}")


def _round_trips(count: int, caller_turn: float, owner_turn: float, to_owner: float,
                 to_caller: float, owner_waits_on_lock: bool = False) -> str:
    """A trace of ``count`` round trips with the given parts (microseconds), plus what a real
    trace also has: a return with nothing before the first request, polls that report
    nothing, a second wake-up call in one turnaround, a wait for the interpreter lock inside
    the owner's turnaround. ``owner_waits_on_lock``: the owner is a plain thread blocked on a
    queue's lock, which the caller wakes with ``futex`` (aiosqlite's shape), and it replies
    with a ``write`` to the caller's loop."""
    lines = []
    now = 1000.0
    owner_wait = ("futex", FUTEX_WAIT) if owner_waits_on_lock else ("epoll_pwait", WAIT)
    caller_post = ("futex", FUTEX_WAKE) if owner_waits_on_lock else ("write", "fd: 0x5")
    lines.append(_line(CALLER, now - 4, "exit", "epoll_pwait", "0x1"))  # never entered
    lines.append(_line(CALLER, now - 3, "enter", "epoll_pwait", WAIT))
    lines.append(_line(CALLER, now, "exit", "epoll_pwait", "0x1"))  # the caller starts
    lines.append(_line(OWNER, now - 5, "enter", *owner_wait))
    for _ in range(count):
        lines.append(_line(CALLER, now + 0.5, "enter", "epoll_pwait", POLL))  # reports none
        lines.append(_line(CALLER, now + 2.5, "exit", "epoll_pwait", "0x0"))
        posted = now + caller_turn
        lines.append(_line(CALLER, posted, "enter", *caller_post))
        lines.append(_line(CALLER, posted + 0.2, "enter", "write", "fd: 0x5"))  # not the first
        lines.append(_line(CALLER, posted + 0.4, "enter", "epoll_pwait", POLL))  # nothing yet
        lines.append(_line(CALLER, posted + 0.6, "exit", "epoll_pwait", "0x0"))
        lines.append(_line(CALLER, posted + 1, "enter", "epoll_pwait", WAIT))
        owner_up = posted + to_owner
        lines.append(_line(OWNER, owner_up, "exit", owner_wait[0], "0x0" if owner_waits_on_lock
                           else "0x1"))
        lines.append(_line(OWNER, owner_up + 1, "enter", "futex", FUTEX_WAIT))  # the GIL
        lines.append(_line(OWNER, owner_up + 3, "exit", "futex", "0x0"))
        replied = owner_up + owner_turn
        lines.append(_line(OWNER, replied, "enter", "write", "fd: 0x7"))
        lines.append(_line(OWNER, replied + 1, "enter", *owner_wait))
        now = replied + to_caller
        lines.append(_line(CALLER, now, "exit", "epoll_pwait", "0x1"))
    return "\n".join(lines) + "\n"


def test_a_trace_splits_into_its_four_parts() -> None:
    events = anatomy_tool.parse_perf_script(_round_trips(25, 7.0, 11.0, 30.0, 33.0))
    parts = anatomy_tool.anatomy(events, CALLER)
    assert parts.caller_turnaround == pytest.approx(7.0, abs=1e-3)
    assert parts.owner_turnaround == pytest.approx(11.0, abs=1e-3)
    assert parts.owner_wake_up == pytest.approx(30.0, abs=1e-3)
    assert parts.caller_wake_up == pytest.approx(33.0, abs=1e-3)
    assert parts.total == pytest.approx(81.0, abs=1e-3)
    assert parts.operations == 24  # the first request follows no reply: no turnaround


def test_a_thread_blocked_on_a_lock_and_woken_by_futex() -> None:
    trace = _round_trips(9, 5.0, 12.0, 20.0, 40.0, owner_waits_on_lock=True)
    parts = anatomy_tool.anatomy(anatomy_tool.parse_perf_script(trace), CALLER)
    assert (parts.caller_turnaround, parts.owner_turnaround) == pytest.approx((5.0, 12.0))
    assert (parts.owner_wake_up, parts.caller_wake_up) == pytest.approx((20.0, 40.0))


def test_only_a_wait_that_returns_with_work_resumes_a_thread() -> None:
    """A request can arrive while the owner still runs (here inside a futex wake call of its
    own), and a caller's wait can end with nothing (a timer): neither is a resumption."""
    lines = [
        _line(CALLER, 0.0, "enter", "epoll_pwait", WAIT),
        _line(OWNER, 1.0, "enter", "epoll_pwait", WAIT),
    ]
    for trip in range(3):
        t = 100.0 * trip
        lines += [
            _line(CALLER, t + 10, "exit", "epoll_pwait", "0x1"),  # resumed by the reply
            _line(OWNER, t + 19, "enter", "futex", FUTEX_WAKE),  # the owner still runs
            _line(CALLER, t + 20, "enter", "write", "fd: 0x5"),  # caller's turnaround: 10
            _line(OWNER, t + 21, "exit", "futex", "0x0"),  # not a wait: not its resumption
            _line(OWNER, t + 22, "enter", "epoll_pwait", WAIT),
            _line(CALLER, t + 23, "enter", "epoll_pwait", WAIT),
            _line(OWNER, t + 24, "exit", "epoll_pwait", "0x1"),  # resumed: wake-up 4
            _line(OWNER, t + 40, "enter", "write", "fd: 0x7"),  # owner's turnaround: 16
            _line(CALLER, t + 60, "exit", "epoll_pwait", "0x0"),  # a timer, nothing to do
            _line(CALLER, t + 61, "enter", "epoll_pwait", WAIT),
            _line(OWNER, t + 62, "enter", "epoll_pwait", WAIT),
        ]
    lines.append(_line(CALLER, 310.0, "exit", "epoll_pwait", "0x1"))  # the last reply
    parts = anatomy_tool.anatomy(anatomy_tool.parse_perf_script("\n".join(lines)), CALLER)
    assert (parts.caller_turnaround, parts.owner_turnaround) == pytest.approx((10.0, 16.0))
    assert (parts.owner_wake_up, parts.caller_wake_up) == pytest.approx((4.0, 70.0))


def test_only_the_measured_window_counts() -> None:
    slow = _round_trips(10, 50.0, 50.0, 50.0, 50.0)
    events = anatomy_tool.parse_perf_script(slow)
    later = [anatomy_tool.Event(event.time + 10_000, event.tid, event.edge, event.name,
                                event.args)
             for event in anatomy_tool.parse_perf_script(_round_trips(10, 4.0, 6.0, 8.0, 9.0))]
    parts = anatomy_tool.anatomy(events + later, CALLER, start=10_500, end=float("inf"))
    assert parts.total == pytest.approx(27.0)


def test_a_trace_without_round_trips_says_so() -> None:
    lonely = "\n".join(_line(CALLER, t, "enter", "write", "fd: 0x5") for t in (1.0, 2.0))
    with pytest.raises(ValueError, match="no round trips"):
        anatomy_tool.anatomy(anatomy_tool.parse_perf_script(lonely), CALLER)


def test_an_unknown_contender_is_refused() -> None:
    with pytest.raises(SystemExit):
        anatomy_tool.main(["sqlite3"])


@pytest.mark.timeout(120)
def test_a_short_traced_run() -> None:
    reason = anatomy_tool._perf_usable()
    if reason is not None:
        pytest.skip(reason)
    done = subprocess.run([sys.executable, str(TOOL), "--runs", "1", "--ops", "200", "aptio",
                           "loopshape"], capture_output=True, text=True, timeout=110,
                          check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("  1 ")]
    assert [row[1] for row in rows] == ["aptio", "loopshape"]
    for row in rows:
        wall, *parts, total = (float(value) for value in row[2:])
        assert all(part > 0 for part in parts), row
        assert total == pytest.approx(sum(parts), abs=0.25)  # each printed to 0.1
        assert wall > 0
