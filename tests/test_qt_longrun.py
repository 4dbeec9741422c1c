"""A long run of aptio.qt guards the PySide6 versions that aptio[qt] admits: PySide6 6.12.0 on
Python 3.11 kills the process with a reference-count error ("deallocating None") after Qt has
called into Python about 100,000 times. Marked slow: CI runs it; ``-m "not slow"`` skips it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qt_harness import offscreen_env, require_pyside6

HARNESS = Path(__file__).resolve().parent / "qt_harness.py"
QT_CALLBACKS = 200_000

pytestmark = [pytest.mark.qt, pytest.mark.slow, pytest.mark.timeout(300)]


def test_qt_calls_python_200_000_times_and_the_process_survives() -> None:
    require_pyside6()
    from PySide6 import __version__ as pyside_version

    completed = subprocess.run(
        [sys.executable, str(HARNESS), str(QT_CALLBACKS)], env=offscreen_env(),
        capture_output=True, text=True, timeout=280, check=False,
    )
    assert completed.returncode == 0, (
        f"PySide6 {pyside_version} on Python {sys.version.split()[0]}: the process died "
        f"({completed.returncode}) during the long run; stderr: {completed.stderr[-3000:]}"
    )
    match = re.fullmatch(
        r"calls=(\d+) value=(\d+) steps=(\d+) qt_callbacks=(\d+) seconds=([\d.]+)",
        completed.stdout.strip(),
    )
    assert match is not None, completed.stdout + completed.stderr
    calls, value, steps, qt_callbacks = (int(match[n]) for n in range(1, 5))
    assert qt_callbacks >= QT_CALLBACKS
    assert value == calls >= QT_CALLBACKS // 4  # every call arrived, in the Qt thread
    print(f"\nPySide6 {pyside_version}: {calls} calls, {steps} steps, {qt_callbacks} Qt "
          f"callbacks in {match[5]} s")
