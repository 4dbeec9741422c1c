"""A Tk window on the main STA: Start fans work out to worker STAs and the MTA, progress comes
back through a proxy of a SINGLE-model UI object, Cancel cancels the work in every apartment.

This is how a COM GUI application is built: the window's thread is the main STA, the object that
owns the widgets lives there (a SINGLE-model class lands in the main STA whoever creates it),
and workers elsewhere hold a proxy to it. Each ``await view.report(...)`` from a worker is a call
into the Tk thread; it wakes Tk at once, and it waits for the UI to take it (backpressure).

Run it (needs a display):  python examples/tk_progress.py
Test mode, driven by tests/test_tk_progress.py:  python examples/tk_progress.py --test
  prints state lines on stdout (``ready``, ``started``, ``progress``, ``cancelled``, ...),
  reads commands on stdin (``close``: close the window as the window manager's button does).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import threading
import time
import tkinter
from tkinter import ttk
from typing import Any

import aptio
import aptio.tk
from aptio import ThreadingModel

#: Each job does this many chunks of work, reporting after each one.
DEFAULT_STEPS = 300
#: One chunk of CPU work, in seconds: the workers really keep their threads busy.
CHUNK = 0.004
#: ``--pure-python``: crunch with a Python loop that holds the GIL (to see the difference).
PURE_PYTHON = False


_BLOCK = bytes(range(256)) * 256  # 64 KiB


def crunch(seconds: float) -> bytes:
    """Real CPU work for about ``seconds``: hashing, which releases the GIL as numpy, zlib or
    I/O do, so the workers run in parallel and the Tk thread stays free. (Pure-Python loops in
    worker threads would take turns with the UI thread for the GIL instead.)"""
    if PURE_PYTHON:
        end = time.perf_counter() + seconds
        total = 0
        while time.perf_counter() < end:
            total += sum(range(500))
        return total.to_bytes(16, "little")
    end = time.perf_counter() + seconds
    digest = b""
    while time.perf_counter() < end:
        digest = hashlib.sha256(_BLOCK + digest).digest()
    return digest


def where() -> str:
    apartment = aptio.current_apartment()
    name = apartment.name if apartment is not None else "no apartment"
    return f"{name}, thread {threading.current_thread().name!r}"


@aptio.coclass(ThreadingModel.SINGLE)
class ProgressView:
    """The UI object. SINGLE: it lives in the main STA (the Tk thread) whoever creates it, so
    its methods, which touch widgets, always run there."""

    def __init__(self, parent: tkinter.Misc, emit: Any) -> None:
        self._emit = emit
        self.bar = ttk.Progressbar(parent, length=420, mode="determinate", maximum=100)
        self.bar.pack(fill="x", padx=10, pady=(10, 4))
        self.status = ttk.Label(parent, text="Idle. Press Start.")
        self.status.pack(anchor="w", padx=10)
        self.text = tkinter.Text(parent, height=14, width=72, font=("TkFixedFont", 9))
        self.text.pack(fill="both", expand=True, padx=10, pady=(4, 10))
        self._done: dict[str, int] = {}
        self._total = 1
        self._shown = -1

    def begin(self, jobs: list[str], steps: int) -> None:
        self._done = dict.fromkeys(jobs, 0)
        self._total = len(jobs) * steps
        self._shown = -1
        self.bar["value"] = 0
        self.status["text"] = f"Running {len(jobs)} jobs..."

    def report(self, job: str, done: int) -> int:
        """Called by the workers, through proxies, after each chunk. Returns the percentage."""
        self._done[job] = done
        percent = 100 * sum(self._done.values()) // self._total
        self.bar["value"] = percent
        if percent != self._shown:
            self._shown = percent
            self.status["text"] = f"{percent}% done"
            self._emit(f"progress {percent}")
        return percent

    def log(self, line: str) -> None:
        self.text.insert("end", line + "\n")
        self.text.see("end")
        self._emit(f"log {line}")

    def end(self, text: str) -> None:
        self.status["text"] = text

    def contents(self) -> str:
        return self.text.get("1.0", "end-1c")


@aptio.coclass  # APARTMENT: lives in the worker STA that creates it
class StaJob:
    async def run(self, view: Any, job: str, steps: int) -> str:
        await view.log(f"{job}: starting in {where()}")
        try:
            for step in range(1, steps + 1):
                crunch(CHUNK)
                await view.report(job, step)  # a call into the Tk thread; cancellable here
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


class Ticker:
    """Measures responsiveness while the workers are busy: a Tk timer every 10 ms, and the
    longest gap between two ticks. It runs only while busy, so an idle window stays idle."""

    def __init__(self, root: tkinter.Misc) -> None:
        self.root = root
        self.busy = False
        self.max_gap = 0.0
        self.ticks = 0
        self._last = 0.0
        self._timer: str | None = None

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self._last)
        self.ticks += 1
        self._last = now
        self._timer = self.root.after(10, self._tick)

    def start(self) -> None:
        self.stop()
        self.busy, self.max_gap, self.ticks = True, 0.0, 0
        self._last = time.perf_counter()
        self._timer = self.root.after(10, self._tick)

    def stop(self) -> None:
        self.busy = False
        if self._timer is not None:
            self.root.after_cancel(self._timer)
            self._timer = None


class App:
    """The controller: runs in the main STA, starts and cancels the jobs."""

    def __init__(self, root: tkinter.Tk, view: Any, workers: list[aptio.Apartment],
                 steps: int, emit: Any) -> None:
        self.root = root
        self.view = view
        self.workers = workers
        self.steps = steps
        self.emit = emit
        self.task: asyncio.Task[None] | None = None
        self.ticker = Ticker(root)

    def on_start(self) -> None:  # a Tk callback
        if self.task is None or self.task.done():
            self.task = aptio.tk.spawn(self.run_jobs())

    def on_cancel(self) -> None:  # a Tk callback: cancelling the task cancels every call
        if self.task is not None:
            self.task.cancel()

    async def run_jobs(self) -> None:
        jobs: list[tuple[str, Any]] = []
        for worker in self.workers:
            jobs.append((f"job on {worker.name}", await worker.create(StaJob)))
        for n in (1, 2):
            jobs.append((f"MTA job {n}", await aptio.create(MtaJob)))
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


async def main(root: tkinter.Tk, args: argparse.Namespace) -> None:
    emit = make_emitter(args.test)
    root.title("aptio: Tk main STA")
    root.geometry("+40+40")
    view = await aptio.create(ProgressView, root, emit)  # SINGLE: here, in the main STA
    buttons = ttk.Frame(root)
    buttons.pack(fill="x", padx=10, pady=(0, 10))
    workers = [await aptio.start_sta(f"worker-{n}") for n in (1, 2)]
    app = App(root, view, workers, args.steps, emit)
    start = ttk.Button(buttons, text="Start", command=app.on_start)
    cancel = ttk.Button(buttons, text="Cancel", command=app.on_cancel)
    start.pack(side="left")
    cancel.pack(side="left", padx=6)
    await view.log(f"The UI runs in {where()}. Press Start.")

    if args.test:
        await _test_mode(root, start, cancel, view, emit)
    await aptio.tk.wait_closed()
    emit("closing")


async def _test_mode(root: tkinter.Tk, start: ttk.Button, cancel: ttk.Button, view: Any,
                     emit: Any) -> None:
    """Print where the buttons are once the window is on screen; obey stdin commands."""
    mapped = asyncio.Event()
    root.bind("<Map>", lambda event: mapped.set(), add=True)
    if not root.winfo_ismapped():
        await mapped.wait()
    root.update_idletasks()

    def centre(widget: tkinter.Misc) -> str:
        x = widget.winfo_rootx() + widget.winfo_width() // 2
        y = widget.winfo_rooty() + widget.winfo_height() // 2
        return f"{x},{y}"

    emit(f"ready pid={os.getpid()} start={centre(start)} cancel={centre(cancel)} "
         f"window={root.winfo_id()}")

    loop = asyncio.get_running_loop()
    # stdin is asyncio I/O on the Tk thread's loop: it wakes Tk like any other event.
    def on_stdin() -> None:
        line = sys.stdin.readline()
        command = line.strip()
        if not line or command == "close":
            loop.remove_reader(sys.stdin.fileno())
            # Exactly what the window manager's close button runs.
            root.tk.call(root.protocol("WM_DELETE_WINDOW"))
        elif command == "dump":
            for text in aptio.unwrap(view).contents().splitlines():
                emit(f"dump {text}")
            emit("dump-end")

    loop.add_reader(sys.stdin.fileno(), on_stdin)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--test", action="store_true", help="print state lines for a driver")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="chunks per job")
    parser.add_argument("--pure-python", action="store_true",
                        help="crunch in pure Python (holds the GIL) instead of hashing")
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse_args()
    PURE_PYTHON = options.pure_python
    aptio.tk.run(lambda root: main(root, options))
    if options.test:
        left = [t.name for t in threading.enumerate() if t.name.startswith("aptio ")]
        print(f"exited threads_left={len(left)}", flush=True)
