"""examples/tk_progress.py in a real Tk window under Xvfb, driven with real mouse clicks.

The example prints state lines in ``--test`` mode; the test waits for each line it needs (no
sleeps), clicks Start and Cancel where the example says the buttons are, and checks the
progress and the log. It reports (and only loosely bounds) two figures: the longest gap between
10 ms Tk timer ticks while the workers are busy, and the CPU time the process uses over one
idle second. Both, and a screenshot, go to ``artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from tk_harness import (
    LineProcess,
    capture_screen,
    click,
    cpu_seconds,
    require_tools,
    xvfb,
    xwd_to_png,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tk_progress.py"
ARTIFACTS = ROOT / "artifacts"
WAIT = 20.0  # seconds for any one expected line: generous, only hit when something is broken

pytestmark = [
    pytest.mark.gui,
    pytest.mark.timeout(55),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Xvfb and /proc: Linux"),
]


def _idle_cpu(pid: int, seconds: float = 1.0) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)  # measuring the other process's CPU over a wall-clock second
    return cpu_seconds(pid) - before


def _point(text: str) -> tuple[int, int]:
    x, y = text.split(",")
    return int(x), int(y)


def test_tk_progress_start_cancel_close_under_xvfb() -> None:
    require_tools("Xvfb", "xdotool", "xwd")
    metrics: dict[str, object] = {}
    with xvfb() as display:
        env = {**os.environ, "DISPLAY": display, "PYTHONUNBUFFERED": "1"}
        # Enough work that it cannot finish before the test cancels it.
        app = LineProcess([sys.executable, str(EXAMPLE), "--test", "--steps", "5000"],
                          env=env, cwd=ROOT)
        try:
            ready = app.expect(lambda line: line.startswith("ready "), WAIT, "the window")
            fields = dict(item.split("=", 1) for item in ready.split()[1:])
            pid = int(fields["pid"])

            metrics["idle_cpu_s_before_start"] = _idle_cpu(pid)

            click(display, *_point(fields["start"]))
            app.expect(lambda line: line == "started", WAIT, "the jobs to start")
            # Progress crosses apartments into the UI object: wait for a few percent of it.
            app.expect(lambda line: line == "progress 3", WAIT * 2, "3% progress")
            raw_screen = capture_screen(display)  # the window mid-run (converted later)
            app.expect(lambda line: line == "progress 4", WAIT * 2, "4% progress")

            click(display, *_point(fields["cancel"]))
            app.expect(lambda line: line == "cancelled", WAIT, "the cancellation")
            ticks = app.expect(lambda line: line.startswith("ticks "), WAIT, "tick figures")
            for n in (1, 2):  # every job sees the cancellation in its own apartment
                for job in (f"job on worker-{n}", f"MTA job {n}"):
                    app.expect(lambda line, job=job: line.startswith(f"log {job}: cancelled in"),
                               WAIT, f"{job} to see the cancellation")

            metrics["idle_cpu_s_after_cancel"] = _idle_cpu(pid)

            app.send("dump")
            app.expect(lambda line: line == "dump-end", WAIT, "the log dump")
            app.send("close")  # runs the window manager's WM_DELETE_WINDOW handler
            app.expect(lambda line: line == "closing", WAIT, "main to see the close")
            exited = app.expect(lambda line: line.startswith("exited "), WAIT, "the exit")
            assert app.process.wait(timeout=WAIT) == 0, app.stderr
        finally:
            app.kill()

    assert "Traceback" not in app.stderr, app.stderr
    assert exited == "exited threads_left=0"
    lines = app.lines
    percents = [int(line.split()[1]) for line in lines if line.startswith("progress ")]
    assert percents == sorted(percents) and percents[-1] < 100, percents
    assert "done" not in lines

    log = [line[len("dump "):] for line in lines if line.startswith("dump ")]
    assert log[0] == "The UI runs in main STA, thread 'MainThread'. Press Start."
    assert "Start pressed in main STA, thread 'MainThread'" in log
    for n in (1, 2):
        assert any(re.fullmatch(rf"job on worker-{n}: starting in worker-{n}, thread "
                                rf"'aptio worker-{n}'", line) for line in log), log
        assert any(line.startswith(f"MTA job {n}: starting in MTA, thread 'aptio MTA")
                   for line in log), log
        assert any(line.startswith(f"job on worker-{n}: cancelled inside worker-{n}")
                   for line in log), log
    assert any(line.startswith("Cancelled. Longest gap") for line in log), log

    match = re.fullmatch(r"ticks max_gap_ms=([\d.]+) count=(\d+)", ticks)
    assert match is not None, ticks
    metrics["busy_max_tick_gap_ms"] = float(match[1])
    metrics["busy_ticks"] = int(match[2])

    ARTIFACTS.mkdir(exist_ok=True)
    width, height = xwd_to_png(raw_screen, ARTIFACTS / "tk_progress.png")
    metrics["screenshot"] = f"artifacts/tk_progress.png ({width}x{height})"
    (ARTIFACTS / "tk_progress_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"\ntk_progress metrics: {json.dumps(metrics)}")

    # Loose bounds only: these catch a frozen UI or a busy-polling loop, not a slow machine.
    assert float(match[1]) < 2000.0, metrics
    assert metrics["idle_cpu_s_before_start"] < 0.25, metrics  # type: ignore[operator]
    assert metrics["idle_cpu_s_after_cancel"] < 0.25, metrics  # type: ignore[operator]
