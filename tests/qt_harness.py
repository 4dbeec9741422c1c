"""Helpers for tests that run Qt (PySide6) offscreen: skip with the reason when PySide6 cannot
be imported, and one ``QApplication`` for the test process, on the offscreen platform."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytest

SKIP_REASON = (
    "PySide6 is not installed or cannot load ({error}); install aptio[qt] to run the Qt tests"
)


def require_pyside6() -> Any:
    """PySide6.QtWidgets, or skip the calling test with the reason."""
    try:
        from PySide6 import QtWidgets
    except ImportError as error:  # missing, or its Qt libraries cannot load here
        pytest.skip(SKIP_REASON.format(error=error))
    return QtWidgets


def offscreen_env(**extra: str) -> dict[str, str]:
    """The environment for a Qt subprocess: offscreen, no display needed."""
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", **extra}


def application() -> Any:
    """The process's ``QApplication``, created on first use on the offscreen platform."""
    QtWidgets = require_pyside6()
    qapp = QtWidgets.QApplication.instance()
    if qapp is None:
        saved = os.environ.get("QT_QPA_PLATFORM")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # read once, by the constructor
        try:
            qapp = QtWidgets.QApplication(["aptio-tests"])
        finally:
            if saved is None:
                del os.environ["QT_QPA_PLATFORM"]
            else:
                os.environ["QT_QPA_PLATFORM"] = saved
    return qapp


def long_run(qt_callbacks: int) -> None:
    """Calls from a worker STA into a SINGLE object on the Qt thread, one at a time, until Qt
    has called into Python ``qt_callbacks`` times; prints the counts. Run in a child process
    (``python qt_harness.py N``): a PySide6 that crashes kills the child, not the test run."""
    import asyncio

    import aptio
    import aptio.qt
    from aptio._gui.app import current_app

    application()

    @aptio.coclass(aptio.ThreadingModel.SINGLE)
    class Counter:
        def __init__(self) -> None:
            self.value = 0

        def hit(self) -> int:
            self.value += 1
            return self.value

    @aptio.coclass
    class Caller:
        async def hit_until(self, counter: Any, done: Any) -> int:
            calls = 0
            while not done():
                await counter.hit()
                calls += 1
            return calls

    async def main() -> None:
        app = current_app("aptio.qt")
        toolkit: Any = app.toolkit
        counter = await aptio.create(Counter)
        caller = await (await aptio.start_sta("caller")).create(Caller)
        start = time.perf_counter()
        calls = await caller.hit_until(counter, lambda: toolkit.callbacks >= qt_callbacks)
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0)
        print(f"calls={calls} value={aptio.unwrap(counter).value} steps={app.driver.steps} "
              f"qt_callbacks={toolkit.callbacks} seconds={elapsed:.1f}", flush=True)

    aptio.qt.run(main)


if __name__ == "__main__":
    long_run(int(sys.argv[1]))
