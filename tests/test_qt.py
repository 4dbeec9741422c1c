"""aptio.qt: Qt's GUI thread as the main STA. Real PySide6 on the offscreen platform; skipped,
with the reason, where PySide6 is missing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Any

import pytest

import aptio
import aptio.qt
from aptio import ThreadingModel
from aptio._gui.app import current_app

from qt_harness import application, require_pyside6

pytestmark = [pytest.mark.qt, pytest.mark.timeout(60)]


def test_importing_aptio_qt_needs_no_pyside6_and_run_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['PySide6'] = None\n"
        "import aptio.qt; print(sorted(aptio.qt.__all__))\n"
        "async def main(): pass\n"
        "try:\n"
        "    aptio.qt.run(main())\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    completed = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                               text=True, timeout=20, check=True)
    lines = completed.stdout.splitlines()
    assert lines[0] == "['STEP_BUDGET', 'command', 'run', 'spawn', 'wait_closed']"
    assert lines[1].startswith("aptio.qt needs PySide6 (")
    assert lines[1].endswith("); install aptio's qt extra: pip install -e '.[qt]' in aptio's clone")
    assert completed.stderr == ""  # the coroutine was closed: no "never awaited" warning


def test_spawn_outside_an_application_says_what_to_do() -> None:
    async def nothing() -> None:
        pass

    coro = nothing()
    with pytest.raises(aptio.NotInitializedError, match=r"^no aptio.qt application runs"):
        aptio.qt.spawn(coro)
    coro.close()


@pytest.fixture
def qt() -> Any:
    """PySide6's modules, with the test process's QApplication created."""
    require_pyside6()
    application()
    from PySide6 import QtCore, QtWidgets

    class Modules:
        core = QtCore
        widgets = QtWidgets

    return Modules


def _later(qt: Any, callback: Any, milliseconds: int = 1) -> None:
    """Run ``callback`` from Qt's event loop (a Qt timer), outside any asyncio step."""
    qt.core.QTimer.singleShot(milliseconds, callback)


@aptio.coclass(ThreadingModel.SINGLE)
class Label:
    def __init__(self) -> None:
        from PySide6 import QtWidgets

        self.widget = QtWidgets.QLabel("0")
        self.updates = 0

    def show(self, text: str) -> str:
        self.widget.setText(text)
        self.updates += 1
        return threading.current_thread().name


@aptio.coclass
class Worker:
    async def drive(self, label: Any, n: int) -> list[str]:
        return [await label.show(str(i)) for i in range(n)]


def test_run_returns_mains_result_and_calls_reach_the_qt_thread(qt: Any) -> None:
    async def main() -> tuple[set[str], int, str]:
        here = aptio.current_apartment()
        assert here is not None and here.kind is aptio.ApartmentKind.MAIN_STA
        label = await aptio.create(Label)  # SINGLE: lands here, on the Qt thread
        worker = await (await aptio.start_sta("qt-worker")).create(Worker)
        threads = await worker.drive(label, 200)  # 200 calls into the Qt thread
        await asyncio.sleep(0.01)  # a timer, served by the Qt timer
        return set(threads), aptio.unwrap(label).updates, aptio.unwrap(label).widget.text()

    assert aptio.qt.run(main) == ({threading.current_thread().name}, 200, "199")


def test_run_takes_a_coroutine_and_hides_the_windows_on_the_way_out(qt: Any) -> None:
    window = qt.widgets.QWidget()

    async def main() -> bool:
        window.show()
        return bool(window.isVisible())

    assert aptio.qt.run(main()) is True
    assert not window.isVisible()


def test_closing_the_last_window_cancels_main_and_run_returns_none(qt: Any) -> None:
    seen: list[str] = []
    window = qt.widgets.QWidget()

    async def main() -> str:
        await aptio.start_sta("to be shut down")
        window.show()
        _later(qt, window.close)  # as the window manager's close button
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "not reached"

    assert aptio.qt.run(main) is None
    assert seen == ["cancelled"]
    app = qt.widgets.QApplication.instance()
    assert app.quitOnLastWindowClosed()  # Qt's own setting is given back


def test_wait_closed_returns_when_the_last_window_is_closed(qt: Any) -> None:
    window = qt.widgets.QWidget()

    async def main() -> str:
        window.show()
        _later(qt, window.close)
        await aptio.qt.wait_closed()
        await asyncio.sleep(0)  # main goes on normally after the close
        return "saved settings"

    assert aptio.qt.run(main) == "saved settings"


def test_a_main_that_ends_by_dropping_its_window_keeps_its_result(qt: Any) -> None:
    """Qt closes a visible window whose last reference main's frame held as the frame is
    cleared, inside main's last step; that close must not turn main's result into a cancel."""

    async def main() -> str:
        window = qt.widgets.QWidget()
        window.show()
        await asyncio.sleep(0)
        return "result"

    assert aptio.qt.run(main) == "result"


def test_qt_callbacks_that_schedule_asyncio_work_wake_the_loop(qt: Any) -> None:
    """A Qt slot runs between steps; event.set(), task.cancel() and a command from there must
    not wait for an unrelated wake-up (there is none here: no timers, no other threads)."""

    async def main() -> list[str]:
        order: list[str] = []
        event = asyncio.Event()
        _later(qt, event.set)
        await event.wait()
        order.append("event")

        blocked = aptio.qt.spawn(asyncio.Event().wait())
        await asyncio.sleep(0)
        _later(qt, blocked.cancel)
        with pytest.raises(asyncio.CancelledError):
            await blocked
        order.append("cancel")

        done = asyncio.Event()

        async def job(text: str) -> None:
            order.append(text)
            done.set()

        button = qt.widgets.QPushButton("Go")
        button.clicked.connect(aptio.qt.command(job, "command"))
        _later(qt, button.click)
        await done.wait()
        return order

    assert aptio.qt.run(main) == ["event", "cancel", "command"]


def test_a_failing_spawned_task_goes_to_sys_excepthook(
    qt: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[BaseException] = []

    def hook(exc: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        reported.append(value)

    monkeypatch.setattr(sys, "excepthook", hook)

    async def fail() -> None:
        raise ValueError("boom")

    async def main() -> None:
        task = aptio.qt.spawn(fail())
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback runs after the waiters

    aptio.qt.run(main)
    assert [str(error) for error in reported] == ["boom"]


def test_main_s_exception_propagates_after_a_clean_shutdown(qt: Any) -> None:
    async def main() -> None:
        await aptio.start_sta("will stop")
        raise LookupError("from main")

    with pytest.raises(LookupError, match=r"^from main$"):
        aptio.qt.run(main)


def test_run_inside_a_running_loop_is_refused(qt: Any) -> None:
    async def main() -> None:
        pass

    async def outer() -> None:
        with pytest.raises(aptio.ChangedModeError, match=r"running event loop"):
            aptio.qt.run(main())  # the coroutine is closed: no "never awaited" warning

    asyncio.run(outer())


def test_run_on_another_thread_than_the_qapplication_s_is_refused(qt: Any) -> None:
    errors: list[BaseException] = []

    async def main() -> None:
        pass

    def other_thread() -> None:
        try:
            aptio.qt.run(main)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], aptio.WrongApartmentError), errors
    assert str(errors[0]).startswith("aptio.qt.run() must be called on the thread of the")


def test_an_idle_application_makes_no_steps(qt: Any) -> None:
    """No polling: with nothing scheduled, Qt waits and the asyncio loop is not stepped."""

    async def main() -> int:
        await aptio.start_sta("idle worker")
        driver = current_app("aptio.qt").driver
        idle = asyncio.Event()
        await asyncio.sleep(0.05)  # let everything settle
        before = driver.steps
        _later(qt, idle.set, 300)  # a Qt timer: nothing in asyncio runs meanwhile
        await idle.wait()
        return driver.steps - before

    steps = aptio.qt.run(main)
    assert steps is not None and steps <= 2  # the wake-up for idle.set (and its idle pass)


def test_command_takes_a_proxy_method(qt: Any) -> None:
    async def main() -> str:
        worker = await aptio.start_sta("qt-command")
        label = await aptio.create(Label)
        driver = await worker.create(Worker)
        button = qt.widgets.QPushButton("Go")
        button.clicked.connect(aptio.qt.command(driver.drive, label, 3))
        _later(qt, button.click)
        while aptio.unwrap(label).updates < 3:
            await asyncio.sleep(0.01)
        return str(aptio.unwrap(label).widget.text())

    assert aptio.qt.run(main) == "2"


def test_callbacks_from_another_thread_arrive_in_order(qt: Any) -> None:
    count = 20_000

    async def main() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        seen: list[int] = []
        done = asyncio.Event()

        def deliver(n: int) -> None:
            seen.append(n)
            if n == count - 1:
                done.set()

        def post() -> None:
            for n in range(count):
                loop.call_soon_threadsafe(deliver, n)

        sender = threading.Thread(target=post)
        started = time.perf_counter()
        sender.start()
        await done.wait()
        elapsed = time.perf_counter() - started
        sender.join()
        return seen, elapsed

    result = aptio.qt.run(main)
    assert result is not None
    seen, elapsed = result
    assert seen == list(range(count))
    print(f"\n{count} cross-thread callbacks into the Qt thread: "
          f"{elapsed * 1e6 / count:.1f} us each")


def test_sockets_and_subprocesses_work_on_the_qt_thread(qt: Any) -> None:
    async def main() -> tuple[bytes, bytes]:
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

    assert aptio.qt.run(main) == (b"over loopback\n", b"from a child" + os.linesep.encode())


@aptio.coclass(ThreadingModel.SINGLE)
class _Busy:
    def work(self) -> None:
        end = time.perf_counter() + 0.0002
        while time.perf_counter() < end:
            pass


@aptio.coclass
class _Flooder:
    async def flood(self, target: Any, enough: threading.Event, limit: int) -> int:
        sent = 0
        while not enough.is_set() and sent < limit:
            await asyncio.gather(*[target.work() for _ in range(500)])  # 500 calls in flight
            sent += 500
        return sent


def test_a_flood_of_calls_from_another_apartment_cannot_starve_qt(qt: Any) -> None:
    """A worker keeps 500 calls at a time in flight into the Qt thread, each taking 0.2 ms;
    a 10 ms Qt timer must still tick (the inbox delivers at most 256 calls per loop iteration,
    and a step ends with the iteration in which it used up STEP_BUDGET)."""
    ticks_wanted = 10
    flood_limit = 100_000  # about 20 s of work: the flood ends here if Qt never got a turn

    async def main() -> tuple[int, bool]:
        enough_ticks = threading.Event()
        ticks = 0

        def tick() -> None:
            nonlocal ticks
            ticks += 1
            if ticks == ticks_wanted:
                enough_ticks.set()
                timer.stop()

        timer = qt.core.QTimer()
        timer.timeout.connect(tick)
        timer.start(10)
        target = await aptio.create(_Busy)
        flooder = await (await aptio.start_sta("flooder")).create(_Flooder)
        sent = await flooder.flood(target, enough_ticks, flood_limit)
        return ticks, sent < flood_limit

    assert aptio.qt.run(main) == (ticks_wanted, True)


def test_a_task_that_never_lets_the_loop_idle_cannot_starve_qt(qt: Any) -> None:
    """A hog Task keeps asyncio callbacks ready at all times; each step still ends after
    STEP_BUDGET, so a 10 ms Qt timer keeps ticking (without the budget: no tick at all)."""
    ticks_wanted = 20
    hog_limit = 40_000  # about 20 s of hogging: the hog gives up here if Qt never ticked

    async def main() -> tuple[int, int]:
        ticks = 0

        def tick() -> None:
            nonlocal ticks
            ticks += 1
            if ticks == ticks_wanted:
                timer.stop()

        timer = qt.core.QTimer()
        timer.timeout.connect(tick)
        timer.start(10)
        rounds = 0
        while ticks < ticks_wanted and rounds < hog_limit:
            end = time.perf_counter() + 0.0005
            while time.perf_counter() < end:
                pass
            rounds += 1
            await asyncio.sleep(0)  # ready again at once: the loop never would block
        return ticks, rounds

    result = aptio.qt.run(main)
    assert result is not None
    ticks, rounds = result
    assert ticks == ticks_wanted and rounds < hog_limit, result


def test_a_nested_qt_loop_in_a_slot_keeps_serving_calls(qt: Any) -> None:
    """A modal loop (QDialog.exec, QMessageBox) opened from a plain slot: calls from other
    apartments into the main STA are still served while it runs."""

    @aptio.coclass(ThreadingModel.SINGLE)
    class Modal:
        def __init__(self) -> None:
            self.nested = qt.core.QEventLoop()
            self.served_in_nested_loop = False

        def ping(self) -> str:
            self.served_in_nested_loop = self.nested.isRunning()
            self.nested.quit()
            return "pong"

    async def main() -> tuple[str, bool]:
        modal = await aptio.create(Modal)
        worker = await aptio.start_sta("caller")
        opened = threading.Event()

        def open_modal() -> None:  # a plain slot, outside any step
            opened.set()
            aptio.unwrap(modal).nested.exec()

        async def call_in() -> str:
            await asyncio.get_running_loop().run_in_executor(None, opened.wait)
            return str(await modal.ping())

        _later(qt, open_modal)
        reply = await worker.create(_Runner)
        answer = await reply.run(call_in)
        return answer, aptio.unwrap(modal).served_in_nested_loop

    assert aptio.qt.run(main) == ("pong", True)


@aptio.coclass
class _Runner:
    async def run(self, fn: Any) -> Any:
        return await fn()


def test_a_nested_qt_loop_inside_a_step_does_not_spin(qt: Any) -> None:
    """A coroutine that runs a nested Qt loop holds the asyncio loop (a documented thing to
    avoid); the descriptor is readable meanwhile, yet the nested loop must not spin on it."""

    async def main() -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        toolkit = current_app("aptio.qt").toolkit
        posted = threading.Event()
        ran: list[str] = []
        threading.Thread(
            target=lambda: (loop.call_soon_threadsafe(ran.append, "posted"), posted.set())
        ).start()
        posted.wait()  # the descriptor is readable now
        nested = qt.core.QEventLoop()
        qt.core.QTimer.singleShot(200, nested.quit)
        before = toolkit.callbacks
        nested.exec()
        during = toolkit.callbacks - before
        await asyncio.sleep(0)
        return during, ran == ["posted"]

    result = aptio.qt.run(main)
    assert result is not None
    during, delivered = result
    assert delivered
    assert during <= 5, f"{during} Qt callbacks in 200 ms: the nested loop spun"


def test_the_qt_loop_ending_under_main_closes_the_application(qt: Any) -> None:
    """User code quits Qt's loop while main awaits wait_closed: run still ends cleanly."""

    async def main() -> str:
        await aptio.start_sta("still running")
        _later(qt, qt.widgets.QApplication.quit)
        await aptio.qt.wait_closed()
        return "closed"

    assert aptio.qt.run(main) == "closed"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to oneself: POSIX")
def test_ctrl_c_closes_the_application_then_raises_keyboard_interrupt(qt: Any) -> None:
    seen: list[str] = []

    async def main() -> None:
        await aptio.start_sta("interrupted")
        _later(qt, lambda: signal.raise_signal(signal.SIGINT))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    # Python leaves SIGINT ignored when the process that started it ignored it (a job that a
    # non-interactive shell put in the background, as CI may): then there is no Ctrl+C to
    # handle, and run() rightly leaves it alone. This test wants a terminal's Ctrl+C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            aptio.qt.run(main)
        assert seen == ["cancelled"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_system_exit_from_a_loop_callback_ends_run_after_a_clean_shutdown(qt: Any) -> None:
    """asyncio lets SystemExit out of a step; it must not vanish into Qt: run ends, shuts every
    apartment down, and raises it."""

    async def main() -> None:
        await aptio.start_sta("shut down on the way out")
        asyncio.get_running_loop().call_soon(sys.exit, 3)
        await asyncio.Event().wait()

    with pytest.raises(SystemExit) as raised:
        aptio.qt.run(main)
    assert raised.value.code == 3


def test_an_input_synchronized_command_refuses_callbacks_into_the_qt_thread(qt: Any) -> None:
    async def main() -> tuple[object, object]:
        worker = await aptio.start_sta("qt-input-sync")
        label = await aptio.create(Label)
        driver = await worker.create(Worker)
        outcomes: asyncio.Queue[object] = asyncio.Queue()

        async def handler() -> None:
            try:  # drive() calls label.show() back on this thread
                outcomes.put_nowait(await driver.drive(label, 1))
            except aptio.InputSyncError as error:
                outcomes.put_nowait(type(error).__name__)

        synchronized = qt.widgets.QPushButton("Synchronized")
        synchronized.clicked.connect(aptio.qt.command(handler, input_synchronized=True))
        plain = qt.widgets.QPushButton("Plain")
        plain.clicked.connect(aptio.qt.command(handler))
        _later(qt, synchronized.click)
        first = await outcomes.get()
        _later(qt, plain.click)
        return first, await outcomes.get()

    assert aptio.qt.run(main) == ("InputSyncError", [threading.current_thread().name])
