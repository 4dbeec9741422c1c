"""examples/qt_progress.py in a real Qt window on the offscreen platform, driven with QTest
mouse clicks.

The example prints state lines in ``--test`` mode and takes commands on stdin; the test waits
for each line it needs (no sleeps), clicks Start and Cancel, and checks the progress and the
log. It reports (and only loosely bounds) two figures: the longest gap between 10 ms Qt timer
ticks while the workers are busy, and the CPU time the process uses over one idle second. Both,
and a screenshot of the window mid-run, go to ``artifacts/``.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from qt_harness import offscreen_env, require_pyside6
from tk_harness import LineProcess, cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "qt_progress.py"
ARTIFACTS = ROOT / "artifacts"
WAIT = 20.0  # seconds for any one expected line: generous, only hit when something is broken

pytestmark = [
    pytest.mark.qt,
    pytest.mark.timeout(55),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: Linux"),
]


def _idle_cpu(pid: int, seconds: float = 1.0) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)  # measuring the other process's CPU over a wall-clock second
    return cpu_seconds(pid) - before


def test_qt_progress_start_cancel_close_offscreen() -> None:
    require_pyside6()
    metrics: dict[str, object] = {}
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "qt_progress.png"
    screenshot.unlink(missing_ok=True)
    # Enough work that it cannot finish before the test cancels it.
    app = LineProcess([sys.executable, str(EXAMPLE), "--test", "--steps", "5000"],
                      env=offscreen_env(PYTHONUNBUFFERED="1"), cwd=ROOT)
    try:
        ready = app.expect(lambda line: line.startswith("ready "), WAIT, "the window")
        fields = dict(item.split("=", 1) for item in ready.split()[1:])
        pid = int(fields["pid"])
        metrics["qt"] = fields["qt"]

        metrics["idle_cpu_s_before_start"] = _idle_cpu(pid)

        app.send("click start")
        app.expect(lambda line: line == "started", WAIT, "the jobs to start")
        # Progress crosses apartments into the UI object: wait for a few percent of it.
        app.expect(lambda line: line == "progress 3", WAIT * 2, "3% progress")
        app.send(f"shot {screenshot}")
        shot = app.expect(lambda line: line.startswith("shot "), WAIT, "the screenshot")
        app.expect(lambda line: line == "progress 4", WAIT * 2, "4% progress")

        app.send("click cancel")
        app.expect(lambda line: line == "cancelled", WAIT, "the cancellation")
        ticks = app.expect(lambda line: line.startswith("ticks "), WAIT, "tick figures")
        # every job sees the cancellation in its own apartment, the server's in its process
        for job in ("job on worker-1", "MTA job 1", "job on worker-2", "MTA job 2",
                    "job in server"):
            app.expect(lambda line, job=job: line.startswith(f"log {job}: cancelled in"),
                       WAIT, f"{job} to see the cancellation")

        metrics["idle_cpu_s_after_cancel"] = _idle_cpu(pid)

        app.send("dump")
        app.expect(lambda line: line == "dump-end", WAIT, "the log dump")
        app.send("close")  # closes the window as its close button does
        app.expect(lambda line: line == "closing", WAIT, "main to see the close")
        exited = app.expect(lambda line: line.startswith("exited "), WAIT, "the exit")
        assert app.process.wait(timeout=WAIT) == 0, app.stderr
    finally:
        app.kill()

    assert "Traceback" not in app.stderr, app.stderr
    assert exited == "exited threads_left=0"
    assert shot.startswith("shot saved=True "), shot
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    lines = app.lines
    percents = [int(line.split()[1]) for line in lines if line.startswith("progress ")]
    assert percents == sorted(percents) and percents[-1] < 100, percents
    assert "done" not in lines

    log = [line[len("dump "):] for line in lines if line.startswith("dump ")]
    here = f"main STA, thread 'MainThread', process {pid}"
    assert log[0] == f"The UI runs in {here}. Press Start."
    assert f"Start pressed in {here}" in log
    server_start = [line for line in log if line.startswith("job in server: starting in ")]
    assert len(server_start) == 1, log
    match = re.fullmatch(r"job in server: starting in main STA, thread 'MainThread', "
                         r"process (\d+)", server_start[0])  # the server's own main STA
    assert match is not None and int(match[1]) != pid, server_start
    assert any(line.startswith("job in server: cancelled inside main STA")
               for line in log), log
    for n in (1, 2):
        assert any(re.fullmatch(rf"job on worker-{n}: starting in worker-{n}, thread "
                                rf"'aptio worker-{n}', process {pid}", line)
                   for line in log), log
        assert any(line.startswith(f"MTA job {n}: starting in MTA, thread 'aptio MTA")
                   for line in log), log
        assert any(line.startswith(f"job on worker-{n}: cancelled inside worker-{n}")
                   for line in log), log
    assert any(line.startswith("Cancelled. Longest gap") for line in log), log

    match = re.fullmatch(r"ticks max_gap_ms=([\d.]+) count=(\d+)", ticks)
    assert match is not None, ticks
    metrics["busy_max_tick_gap_ms"] = float(match[1])
    metrics["busy_ticks"] = int(match[2])
    metrics["screenshot"] = f"artifacts/qt_progress.png ({shot.split('size=')[1]})"
    (ARTIFACTS / "qt_progress_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"\nqt_progress metrics: {json.dumps(metrics)}")

    # Loose bounds only: these catch a frozen UI or a busy-polling loop, not a slow machine.
    assert float(match[1]) < 2000.0, metrics
    assert metrics["idle_cpu_s_before_start"] < 0.25, metrics  # type: ignore[operator]
    assert metrics["idle_cpu_s_after_cancel"] < 0.25, metrics  # type: ignore[operator]
