"""A Qt window on the main STA: Start fans work out to worker STAs, the MTA and a server
process, progress comes back through a proxy of a SINGLE-model UI object, Cancel cancels the
work in every apartment, the server's included.

The Qt sibling of ``tk_progress.py``. The window's thread is the main STA; the object that
owns the widgets lives there (a SINGLE-model class lands in the main STA whoever creates it),
and workers elsewhere hold a proxy to it. Each ``await view.report(...)`` from a worker is a call
into the Qt thread; it wakes Qt at once, and it waits for the UI to take it (backpressure). The
job in the server process holds the same kind of proxy: its reports cross the process boundary
(the server imports this file to find the job's class, as ``spawn`` does).

Run it (needs PySide6, ``pip install -e '.[qt]'`` in aptio's clone, and a display, or
``QT_QPA_PLATFORM=offscreen``):  python examples/qt_progress.py
Test mode, driven by tests/test_qt_progress.py:  python examples/qt_progress.py --test
  prints state lines on stdout (``ready``, ``started``, ``progress``, ``cancelled``, ...),
  reads commands on stdin: ``click start``, ``click cancel`` (QTest mouse clicks), ``dump``
  (the log), ``shot PATH`` (a screenshot of the window), ``close`` (as the close button).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import threading
import time
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

import aptio
import aptio.qt
from aptio import ThreadingModel

#: Each job does this many chunks of work, reporting after each one.
DEFAULT_STEPS = 300
#: One chunk of CPU work, in seconds: the workers really keep their threads busy.
CHUNK = 0.004

_BLOCK = bytes(range(256)) * 256  # 64 KiB


def crunch(seconds: float) -> bytes:
    """Real CPU work for about ``seconds``: hashing, which releases the GIL as numpy, zlib or
    I/O do, so the workers run in parallel and the Qt thread stays free."""
    end = time.perf_counter() + seconds
    digest = b""
    while time.perf_counter() < end:
        digest = hashlib.sha256(_BLOCK + digest).digest()
    return digest


def where() -> str:
    apartment = aptio.current_apartment()
    name = apartment.name if apartment is not None else "no apartment"
    return f"{name}, thread {threading.current_thread().name!r}, process {os.getpid()}"


@aptio.coclass(ThreadingModel.SINGLE)
class ProgressView:
    """The UI object. SINGLE: it lives in the main STA (the Qt thread) whoever creates it, so
    its methods, which touch widgets, always run there."""

    def __init__(self, layout: QtWidgets.QVBoxLayout, emit: Any) -> None:
        self._emit = emit
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 100)
        self.status = QtWidgets.QLabel("Idle. Press Start.")
        self.text = QtWidgets.QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        for widget in (self.bar, self.status, self.text):
            layout.addWidget(widget)
        self._done: dict[str, int] = {}
        self._total = 1
        self._shown = -1

    def begin(self, jobs: list[str], steps: int) -> None:
        self._done = dict.fromkeys(jobs, 0)
        self._total = len(jobs) * steps
        self._shown = -1
        self.bar.setValue(0)
        self.status.setText(f"Running {len(jobs)} jobs...")

    def report(self, job: str, done: int) -> int:
        """Called by the workers, through proxies, after each chunk. Returns the percentage."""
        self._done[job] = done
        percent = 100 * sum(self._done.values()) // self._total
        self.bar.setValue(percent)
        if percent != self._shown:
            self._shown = percent
            self.status.setText(f"{percent}% done")
            self._emit(f"progress {percent}")
        return percent

    def log(self, line: str) -> None:
        self.text.appendPlainText(line)
        self._emit(f"log {line}")

    def end(self, text: str) -> None:
        self.status.setText(text)

    def contents(self) -> str:
        return self.text.toPlainText()


@aptio.coclass  # APARTMENT: lives in the worker STA that creates it
class StaJob:
    async def run(self, view: Any, job: str, steps: int) -> str:
        await view.log(f"{job}: starting in {where()}")
        try:
            for step in range(1, steps + 1):
                crunch(CHUNK)
                await view.report(job, step)  # a call into the Qt thread; cancellable here
        except asyncio.CancelledError:
            await asyncio.shield(view.log(f"{job}: cancelled inside {where()}"))
            raise
        return job


@aptio.coclass(ThreadingModel.FREE)  # lives in the MTA; coroutine calls run on its loop thread
class MtaJob:
    async def run(self, view: Any, job: str, steps: int) -> str:
        await view.log(f"{job}: starting in {where()}")
        try:
            for step in range(1, steps + 1):
                crunch(CHUNK)
                await view.report(job, step)
        except asyncio.CancelledError:
            await asyncio.shield(view.log(f"{job}: cancelled inside {where()}"))
            raise
        return job


@aptio.coclass  # created in a server process: lives in that process's main STA
class ServerJob:
    async def run(self, view: Any, job: str, steps: int) -> str:
        await view.log(f"{job}: starting in {where()}")
        try:
            for step in range(1, steps + 1):
                crunch(CHUNK)
                await view.report(job, step)  # a call into the Qt thread of the client process
        except asyncio.CancelledError:
            await asyncio.shield(view.log(f"{job}: cancelled inside {where()}"))
            raise
        return job


class Ticker:
    """Measures responsiveness while the workers are busy: a Qt timer every 10 ms, and the
    longest gap between two ticks. It runs only while busy, so an idle window stays idle."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self._last = 0.0
        self._timer = QtCore.QTimer()
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self._last)
        self.ticks += 1
        self._last = now

    def start(self) -> None:
        self.max_gap, self.ticks = 0.0, 0
        self._last = time.perf_counter()
        self._timer.start(10)

    def stop(self) -> None:
        self._timer.stop()


class App:
    """The controller: runs in the main STA, starts and cancels the jobs."""

    def __init__(self, view: Any, workers: list[aptio.Apartment],
                 server: asyncio.Task[aptio.Server], steps: int, emit: Any) -> None:
        self.view = view
        self.workers = workers
        self.server = server  # starting while the window shows
        self.steps = steps
        self.emit = emit
        self.task: asyncio.Task[Any] | None = None
        self.ticker = Ticker()

    async def start(self) -> None:
        """Start's handler: a coroutine, connected with ``aptio.qt.command``."""
        if self.task is not None and not self.task.done():
            return  # already running
        self.task = asyncio.current_task()
        await self.run_jobs()

    def on_cancel(self) -> None:  # a plain Qt slot: cancelling the task cancels every call
        if self.task is not None:
            self.task.cancel()

    async def run_jobs(self) -> None:
        jobs: list[tuple[str, Any]] = []
        for worker in self.workers:
            jobs.append((f"job on {worker.name}", await worker.create(StaJob)))
        for n in (1, 2):
            jobs.append((f"MTA job {n}", await aptio.create(MtaJob)))
        server = await self.server
        jobs.append((f"job in {server.name}", await server.create(ServerJob)))
        await self.view.begin([name for name, _ in jobs], self.steps)
        await self.view.log(f"Start pressed in {where()}")
        self.ticker.start()
        self.emit("started")
        calls = [job.run(self.view, name, self.steps) for name, job in jobs]
        try:
            await asyncio.gather(*calls)
        except asyncio.CancelledError:
            # gather cancelled every call: each job sees CancelledError in its own apartment
            # (and logs it); the caller does not wait for them to unwind.
            self.finish("Cancelled.")
            self.emit("cancelled")
            raise
        self.finish("Done.")
        self.emit("done")

    def finish(self, text: str) -> None:
        ticker = self.ticker
        ticker.stop()
        gap_ms = ticker.max_gap * 1000
        line = f"{text} Longest gap between 10 ms UI ticks while busy: {gap_ms:.1f} ms"
        aptio.unwrap(self.view).end(text)  # the view lives here, in the main STA
        aptio.unwrap(self.view).log(line)
        self.emit(f"ticks max_gap_ms={gap_ms:.2f} count={ticker.ticks}")


def make_emitter(enabled: bool) -> Any:
    def emit(line: str) -> None:
        if enabled:
            print(line, flush=True)

    return emit


async def main(args: argparse.Namespace) -> None:
    emit = make_emitter(args.test)
    window = QtWidgets.QWidget()
    window.setWindowTitle("aptio: Qt main STA")
    window.resize(620, 420)
    layout = QtWidgets.QVBoxLayout(window)
    view = await aptio.create(ProgressView, layout, emit)  # SINGLE: here, in the main STA
    buttons = QtWidgets.QHBoxLayout()
    start = QtWidgets.QPushButton("Start")
    cancel = QtWidgets.QPushButton("Cancel")
    buttons.addWidget(start)
    buttons.addWidget(cancel)
    buttons.addStretch()
    layout.addLayout(buttons)
    workers = [await aptio.start_sta(f"worker-{n}") for n in (1, 2)]
    server = asyncio.create_task(aptio.start_server("server"))  # a process: ready by Start
    app = App(view, workers, server, args.steps, emit)
    start.clicked.connect(aptio.qt.command(app.start))  # user input starts a coroutine
    cancel.clicked.connect(app.on_cancel)
    window.show()
    await view.log(f"The UI runs in {where()}. Press Start.")

    if args.test:
        _test_mode(window, {"start": start, "cancel": cancel}, view, emit)
    await aptio.qt.wait_closed()
    emit("closing")


def _test_mode(window: QtWidgets.QWidget, buttons: dict[str, QtWidgets.QPushButton],
               view: Any, emit: Any) -> None:
    """Obey stdin commands; each click is a real mouse event, sent from Qt's event loop."""
    from PySide6.QtTest import QTest

    loop = asyncio.get_running_loop()

    def click(button: QtWidgets.QPushButton) -> None:
        QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)

    # stdin is asyncio I/O on the Qt thread's loop: it wakes Qt like any other event.
    def on_stdin() -> None:
        line = sys.stdin.readline()
        command, _, argument = line.strip().partition(" ")
        if not line or command == "close":
            loop.remove_reader(sys.stdin.fileno())
            window.close()  # as the window's close button
        elif command == "click":
            QtCore.QTimer.singleShot(0, lambda: click(buttons[argument]))
        elif command == "dump":
            for text in aptio.unwrap(view).contents().splitlines():
                emit(f"dump {text}")
            emit("dump-end")
        elif command == "shot":
            saved = window.grab().save(argument)
            emit(f"shot saved={saved} size={window.width()}x{window.height()}")

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    emit(f"ready pid={os.getpid()} qt={QtCore.qVersion()}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--test", action="store_true", help="print state lines for a driver")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="chunks per job")
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse_args()
    aptio.qt.run(main(options))
    if options.test:
        left = [t.name for t in threading.enumerate() if t.name.startswith("aptio ")]
        print(f"exited threads_left={len(left)}", flush=True)
