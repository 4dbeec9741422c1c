"""Qt's GUI thread as aptio's main STA (PySide6).

:func:`run` makes the thread that runs the ``QApplication`` aptio's main STA, as
:func:`aptio.tk.run` does for Tkinter: Qt's own event loop (``QApplication.exec()``) drives the
thread, and a stock asyncio selector loop runs inside it in steps, with full asyncio (sockets,
subprocesses, ``add_reader``) and aptio's calls from other apartments served between Qt's
events. UI objects are ``SINGLE`` coclasses living there; workers reach them through proxies,
and every such call wakes the Qt thread at once.

How the two loops share the thread (no polling, so an idle application uses no CPU): a
``QSocketNotifier`` watches the asyncio selector's descriptor, which any asyncio I/O and every
wake-up from another thread make readable; one precise single-shot ``QTimer`` stands for the
loop's next deadline; a step runs asyncio callbacks for at most :data:`STEP_BUDGET` seconds, and
between two steps Qt handles its pending events (a zero-interval timer resumes the steps). No
Qt object is touched from another thread. :mod:`aptio._gui.stepping` has the rules.

Supported: PySide6 6.7 to 6.11 on Python 3.11, 6.7 to 6.12 on 3.12 and newer (the ``qt`` extra:
``pip install -e '.[qt]'`` in aptio's clone). PySide6 6.12.0 on Python 3.11 crashes a process
after Qt has called Python about 100,000 times (a reference-count error); the extra keeps 3.11
below it.

Everything Qt-specific is imported lazily: ``import aptio.qt`` works without PySide6.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ._gui import app as _app
from ._gui.stepping import STEP_BUDGET
from ._runtime.entry import DEFAULT_SHUTDOWN_TIMEOUT
from ._values.errors import WrongApartmentError

if TYPE_CHECKING:
    import asyncio

    from PySide6 import QtCore, QtGui

__all__ = ["STEP_BUDGET", "command", "run", "spawn", "wait_closed"]

T = TypeVar("T")

_HOST = "aptio.qt"


def _import_qt() -> None:
    """Import PySide6, or say how to install it."""
    try:
        import PySide6.QtWidgets  # noqa: F401 - QtCore and QtGui come with it
    except ImportError as error:
        raise ImportError(
            f"aptio.qt needs PySide6 ({error}); install aptio's qt extra: "
            "pip install -e '.[qt]' in aptio's clone"
        ) from error


class _QtToolkit:
    """The toolkit interface of :mod:`aptio._gui.toolkit` on a ``QCoreApplication``.

    Every Qt-to-Python callback goes through :meth:`_guarded`, so no error escapes into Qt:
    ``SystemExit`` and ``KeyboardInterrupt`` end :meth:`run` and are raised from it, other
    errors go to :meth:`report_error`, as the toolkit interface asks.
    """

    host = _HOST

    def __init__(self, qapp: QtCore.QCoreApplication) -> None:
        from PySide6 import QtCore

        self.qapp = qapp
        self._notifier: QtCore.QSocketNotifier | None = None
        self._on_readable: Callable[[], None] | None = None
        self._timer = QtCore.QTimer()
        self._timer.setSingleShot(True)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._fire_timer)
        self._on_timeout: Callable[[], None] | None = None
        self._idle = QtCore.QTimer()
        self._idle.setSingleShot(True)
        self._idle.setInterval(0)
        self._idle.timeout.connect(self._fire_idle)
        self._on_idle: Callable[[], None] | None = None
        self._on_close: Callable[[], None] | None = None
        self._gui_app: QtGui.QGuiApplication | None = None  # whose close signal we took
        self._quit_on_last_window_closed = True
        self._error: BaseException | None = None
        #: Times Qt has called into Python through this adapter (the long-run test counts them).
        self.callbacks = 0

    def _guarded(self, callback: Callable[[], None] | None) -> None:
        self.callbacks += 1
        if callback is None:
            return
        try:
            callback()
        except Exception as error:
            self.report_error(error)
        except BaseException as error:
            if self._error is None:
                self._error = error
            self.quit()

    def _fire_readable(self, *_signal_args: object) -> None:
        self._guarded(self._on_readable)

    def _fire_timer(self) -> None:
        self._guarded(self._on_timeout)

    def _fire_idle(self) -> None:
        self._guarded(self._on_idle)

    def _fire_close(self) -> None:
        self._guarded(self._on_close)

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        self._on_readable = on_readable
        notifier = self._notifier
        if notifier is None or notifier.socket() != fd:
            from PySide6 import QtCore

            self.unwatch()
            notifier = QtCore.QSocketNotifier(fd, QtCore.QSocketNotifier.Type.Read)
            notifier.activated.connect(self._fire_readable)
            self._notifier = notifier
        notifier.setEnabled(True)

    def unwatch(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)

    def start_timer(self, milliseconds: int, on_timeout: Callable[[], None]) -> None:
        self._on_timeout = on_timeout
        self._timer.start(milliseconds)  # restarts a timer still pending

    def cancel_timer(self) -> None:
        self._timer.stop()

    def request_idle(self, on_idle: Callable[[], None]) -> None:
        self._on_idle = on_idle
        self._idle.start()

    def cancel_idle(self) -> None:
        self._idle.stop()

    def on_close_request(self, callback: Callable[[], None]) -> None:
        from PySide6 import QtGui

        self._on_close = callback
        if isinstance(self.qapp, QtGui.QGuiApplication):
            # Closing the last window asks aptio to close instead of quitting Qt's loop.
            self._gui_app = self.qapp
            self._quit_on_last_window_closed = self.qapp.quitOnLastWindowClosed()
            self.qapp.setQuitOnLastWindowClosed(False)
            self.qapp.lastWindowClosed.connect(self._fire_close)

    def run(self) -> None:
        self._error = None
        self.qapp.exec()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def quit(self) -> None:
        from PySide6 import QtCore

        QtCore.QCoreApplication.exit(0)

    def report_error(self, error: BaseException) -> None:
        # As PySide6 reports an error that escapes a slot: through sys.excepthook.
        sys.excepthook(type(error), error, error.__traceback__)

    def hide(self) -> None:
        from PySide6 import QtGui, QtWidgets

        if isinstance(self.qapp, QtWidgets.QApplication):
            for widget in QtWidgets.QApplication.topLevelWidgets():
                if widget.isVisible():
                    widget.hide()
        elif isinstance(self.qapp, QtGui.QGuiApplication):
            for window in QtGui.QGuiApplication.topLevelWindows():
                if window.isVisible():
                    window.hide()

    def close(self) -> None:
        self.hide()  # no Qt loop serves them any more
        self.unwatch()
        self.cancel_timer()
        self.cancel_idle()
        self._notifier = None  # deleted with its wrapper (the loop's descriptor is closed)
        gui_app, self._gui_app = self._gui_app, None
        if gui_app is not None:
            gui_app.lastWindowClosed.disconnect(self._fire_close)
            gui_app.setQuitOnLastWindowClosed(self._quit_on_last_window_closed)
        self._on_readable = self._on_timeout = self._on_idle = self._on_close = None


def spawn(awaitable: Awaitable[T]) -> asyncio.Task[T]:
    """Start ``awaitable`` (a coroutine, or a proxy call) as a Task on the Qt thread's loop, in
    the main STA, and return it.

    Call it from a Qt slot or from a coroutine. The task is cancelled when the application
    ends; if it fails, the error goes to ``sys.excepthook``, as PySide6 reports a failing slot.
    """
    return _app.current_app(_HOST).spawn(awaitable)


def command(fn: Callable[..., Awaitable[object]], *args: Any,
            input_synchronized: bool = False) -> Callable[..., None]:
    """A Qt slot that starts ``fn(*args)`` as a task (as :func:`spawn` does) each time a
    signal calls it; the signal's own arguments are not passed on.

    ``fn`` is a coroutine function or a proxy method:
    ``button.clicked.connect(aptio.qt.command(go))``. ``input_synchronized``: the handler's
    calls are input-synchronized (see ``aptio.input_synchronized``): while one is out, this
    STA takes no other incoming call, and its callee may not call back here.
    """

    def slot(*_signal_args: object) -> None:
        _app.current_app(_HOST).start_input_handler(fn, args, input_synchronized)

    return slot


async def wait_closed() -> None:
    """Return when the user closes the application's last window.

    While ``main`` awaits this, closing the window makes it return instead of cancelling
    ``main``, so the code after it runs normally (for example to save settings).
    """
    await _app.wait_closed(_HOST)


def run(
    main: Coroutine[Any, Any, T] | Callable[[], Awaitable[T]],
    *,
    use_uvloop: bool | None = None,
    mta_workers: int | None = None,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    debug: bool | None = None,
) -> T | None:
    """Run a Qt application whose GUI thread is aptio's main STA; return ``main``'s result.

    ``main`` is a coroutine function (called with no arguments) or a coroutine: it builds and
    shows the windows, then either returns or awaits :func:`wait_closed`. Qt events and calls
    from other apartments are served on this thread until ``main`` is done. The application is
    ``QApplication.instance()``, or a new ``QApplication(sys.argv)`` when there is none; call
    ``run`` on its thread (the main thread).

    Closing the last window cancels ``main`` (unless it awaits :func:`wait_closed`, which then
    returns); ``run`` then returns None. On the way out, tasks started with :func:`spawn` are
    cancelled, every apartment is shut down (threads joined) and the windows are hidden; the
    ``QApplication`` stays, so ``run`` may be called again. Ctrl+C in the terminal closes the
    application the same way and then raises ``KeyboardInterrupt``. ``use_uvloop`` applies to
    the other STAs only: the Qt thread always runs an asyncio selector loop. ``debug`` is
    :func:`aptio.run`'s.
    """
    try:
        _app.check_can_run(_HOST)
        _import_qt()
    except BaseException:
        if isinstance(main, Coroutine):
            main.close()  # never awaited: close it so no "never awaited" warning follows
        raise
    from PySide6 import QtCore

    qapp = QtCore.QCoreApplication.instance()
    if qapp is None:
        from PySide6 import QtWidgets

        qapp = QtWidgets.QApplication(sys.argv)
    elif qapp.thread() != QtCore.QThread.currentThread():
        if isinstance(main, Coroutine):
            main.close()
        raise WrongApartmentError(
            "aptio.qt.run() must be called on the thread of the QApplication (the thread that "
            "created it, normally the main thread)"
        )
    toolkit = _QtToolkit(qapp)
    start: Callable[[], Awaitable[T]] = (lambda: main) if isinstance(main, Coroutine) else main
    return _app.run_app(toolkit, start, use_uvloop=use_uvloop, mta_workers=mta_workers,
                        shutdown_timeout=shutdown_timeout, debug=debug)
