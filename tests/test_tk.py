"""aptio.tk: a Tkinter thread as the main STA. Real Tk under a private Xvfb; skipped without it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import tkinter
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pytest

import aptio
import aptio.tk
from aptio import ThreadingModel
from aptio._gui.app import current_app

from tk_harness import xvfb

pytestmark = pytest.mark.timeout(30)


def test_importing_aptio_tk_needs_no_display_and_no_tkinter() -> None:
    code = ("import sys, aptio.tk; assert 'tkinter' not in sys.modules; "
            "print(sorted(aptio.tk.__all__))")
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=20, check=True).stdout
    assert out.strip() == "['STEP_BUDGET', 'command', 'run', 'spawn', 'wait_closed']"


def test_spawn_outside_an_application_says_what_to_do() -> None:
    async def nothing() -> None:
        pass

    coro = nothing()
    with pytest.raises(aptio.NotInitializedError, match=r"^no aptio.tk application runs"):
        aptio.tk.spawn(coro)
    coro.close()


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    if sys.platform != "linux" or not _has("Xvfb"):
        pytest.skip("needs Xvfb (Debian: apt-get install xvfb)")
    with xvfb() as name:
        yield name


@pytest.fixture
def tk_root(display: str, monkeypatch: pytest.MonkeyPatch) -> tkinter.Tk:
    monkeypatch.setenv("DISPLAY", display)
    return tkinter.Tk()


def _has(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def _close_window(root: tkinter.Tk) -> None:
    """What the window manager's close button runs."""
    root.tk.call(root.protocol("WM_DELETE_WINDOW"))


@aptio.coclass(ThreadingModel.SINGLE)
class Label:
    def __init__(self, root: tkinter.Tk) -> None:
        self.widget = tkinter.Label(root, text="0")
        self.widget.pack()
        self.updates = 0

    def show(self, text: str) -> str:
        self.widget["text"] = text
        self.updates += 1
        return threading.current_thread().name


@aptio.coclass
class Worker:
    async def drive(self, label: Any, n: int) -> list[str]:
        return [await label.show(str(i)) for i in range(n)]


def test_run_returns_mains_result_and_calls_reach_the_tk_thread(tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> tuple[set[str], int, bool]:
        assert aptio.current_apartment() is not None
        assert aptio.current_apartment().kind is aptio.ApartmentKind.MAIN_STA  # type: ignore[union-attr]
        label = await aptio.create(Label, root)  # SINGLE: lands here, on the Tk thread
        worker = await (await aptio.start_sta("tk-worker")).create(Worker)
        threads = await worker.drive(label, 200)  # 200 calls into the Tk thread
        await asyncio.sleep(0.01)  # a timer, served by a Tk ``after``
        return set(threads), aptio.unwrap(label).updates, bool(root.winfo_exists())

    result = aptio.tk.run(main, root=tk_root)
    assert result == ({threading.current_thread().name}, 200, True)


def _root_alive(root: tkinter.Tk) -> bool:
    try:
        root.winfo_exists()
    except tkinter.TclError:
        return False
    return True


def test_run_destroys_the_root_window(tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> None:
        pass

    assert aptio.tk.run(main, root=tk_root) is None
    assert not _root_alive(tk_root)


def test_closing_the_window_cancels_main_and_run_returns_none(tk_root: tkinter.Tk) -> None:
    seen: list[str] = []

    async def main(root: tkinter.Tk) -> str:
        await aptio.start_sta("to be shut down")
        root.after(1, _close_window, root)  # a Tk callback, between asyncio steps
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "not reached"

    assert aptio.tk.run(main, root=tk_root) is None
    assert seen == ["cancelled"]


def test_wait_closed_returns_when_the_window_is_closed(tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> str:
        root.after(1, _close_window, root)
        await aptio.tk.wait_closed()
        await asyncio.sleep(0)  # main goes on normally after the close
        return "saved settings"

    assert aptio.tk.run(main, root=tk_root) == "saved settings"


def test_tk_callbacks_that_schedule_asyncio_work_wake_the_loop(tk_root: tkinter.Tk) -> None:
    """A Tk callback runs between steps; event.set(), task.cancel() and spawn() from there must
    not wait for an unrelated wake-up (there is none here: no timers, no other threads)."""

    async def main(root: tkinter.Tk) -> list[str]:
        order: list[str] = []
        event = asyncio.Event()
        root.after(1, event.set)
        await event.wait()
        order.append("event")

        blocked = aptio.tk.spawn(asyncio.Event().wait())
        await asyncio.sleep(0)
        root.after(1, blocked.cancel)
        with pytest.raises(asyncio.CancelledError):
            await blocked
        order.append("cancel")

        done = asyncio.Event()

        async def job(text: str) -> None:
            order.append(text)
            done.set()

        button = tkinter.Button(root, command=aptio.tk.command(job, "command"))
        root.after(1, button.invoke)
        await done.wait()
        return order

    assert aptio.tk.run(main, root=tk_root) == ["event", "cancel", "command"]


def test_a_failing_spawned_task_is_reported_as_tk_reports_callbacks(tk_root: tkinter.Tk) -> None:
    reported: list[BaseException] = []

    def report(exc: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        reported.append(value)

    tk_root.report_callback_exception = report  # type: ignore[method-assign]

    async def fail() -> None:
        raise ValueError("boom")

    async def main(root: tkinter.Tk) -> None:
        task = aptio.tk.spawn(fail())
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback runs after the waiters

    aptio.tk.run(main, root=tk_root)
    assert [str(error) for error in reported] == ["boom"]


def test_main_s_exception_propagates_after_a_clean_shutdown(tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> None:
        await aptio.start_sta("will stop")
        raise LookupError("from main")

    with pytest.raises(LookupError, match=r"^from main$"):
        aptio.tk.run(main, root=tk_root)


def test_run_inside_a_running_loop_is_refused(tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> None:
        pass

    async def outer() -> None:
        with pytest.raises(aptio.ChangedModeError, match=r"running event loop"):
            aptio.tk.run(main, root=tk_root)

    asyncio.run(outer())
    tk_root.destroy()


def test_an_idle_application_makes_no_steps(tk_root: tkinter.Tk) -> None:
    """No polling: with nothing scheduled, Tk waits and the asyncio loop is not stepped."""

    async def main(root: tkinter.Tk) -> int:
        await aptio.start_sta("idle worker")
        driver = current_app("aptio.tk").driver
        idle = asyncio.Event()
        # Let everything settle, then count steps across a Tk-only wait of 300 ms.
        await asyncio.sleep(0.05)
        before = driver.steps
        root.after(300, idle.set)  # a Tk timer: nothing in asyncio runs meanwhile
        await idle.wait()
        return driver.steps - before

    steps = aptio.tk.run(main, root=tk_root)
    assert steps is not None and steps <= 2  # the wake-up for idle.set (and its idle pass)


def test_command_takes_a_proxy_method(tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> str:
        worker = await aptio.start_sta("tk-command")
        label = await aptio.create(Label, root)
        driver = await worker.create(Worker)
        button = tkinter.Button(root, command=aptio.tk.command(driver.drive, label, 3))
        root.after(1, button.invoke)
        while aptio.unwrap(label).updates < 3:
            await asyncio.sleep(0.01)
        return str(aptio.unwrap(label).widget["text"])

    assert aptio.tk.run(main, root=tk_root) == "2"


def test_the_root_destroyed_under_main_closes_the_application(tk_root: tkinter.Tk) -> None:
    """User code destroys the root (Tk's mainloop ends) while main awaits wait_closed: run
    still ends cleanly, every apartment shut down."""

    async def main(root: tkinter.Tk) -> str:
        await aptio.start_sta("still running")
        root.after(1, root.destroy)
        await aptio.tk.wait_closed()
        return "closed"

    assert aptio.tk.run(main, root=tk_root) == "closed"


def test_sockets_and_subprocesses_work_on_the_tk_thread(tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> tuple[bytes, bytes]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"over loopback\n")
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('from a child')", stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        return line, out

    assert aptio.tk.run(main, root=tk_root) == (b"over loopback\n",
                                                 b"from a child" + os.linesep.encode())


def test_an_input_synchronized_command_refuses_callbacks_into_the_tk_thread(
        tk_root: tkinter.Tk) -> None:
    async def main(root: tkinter.Tk) -> tuple[object, object]:
        worker = await aptio.start_sta("tk-input-sync")
        label = await aptio.create(Label, root)
        driver = await worker.create(Worker)
        outcomes: asyncio.Queue[object] = asyncio.Queue()

        async def handler() -> None:
            try:  # drive() calls label.show() back on this thread
                outcomes.put_nowait(await driver.drive(label, 1))
            except aptio.InputSyncError as error:
                outcomes.put_nowait(type(error).__name__)

        synchronized = tkinter.Button(
            root, command=aptio.tk.command(handler, input_synchronized=True))
        plain = tkinter.Button(root, command=aptio.tk.command(handler))
        root.after(1, synchronized.invoke)
        first = await outcomes.get()
        root.after(1, plain.invoke)
        return first, await outcomes.get()

    assert aptio.tk.run(main, root=tk_root) == (
        "InputSyncError", [threading.current_thread().name])


def test_a_root_left_in_garbage_is_never_freed_on_another_thread(display: str) -> None:
    """Tcl aborts the process when an interpreter is freed on another thread than its own;
    a root held only by reference cycles is freed by whichever thread collects garbage (an
    apartment's, often). aptio.tk keeps the interpreters it ran until their own thread can
    let them go."""
    code = (
        "import gc, threading, tkinter, aptio, aptio.tk\n"
        "class Cycle: pass\n"
        "async def main(root): return 1\n"
        "def once():\n"
        "    root = tkinter.Tk()\n"
        "    aptio.tk.run(main, root=root)\n"
        "    c = Cycle(); c.self = c; c.root = root  # only a cycle holds the root now\n"
        "for _ in range(3): once()\n"
        "collector = threading.Thread(target=gc.collect); collector.start(); collector.join()\n"
        "assert aptio.tk.run(main) == 1  # the next run frees what only aptio held, here\n"
        "print('survived')\n"
    )
    env = {**os.environ, "DISPLAY": display}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "survived"
