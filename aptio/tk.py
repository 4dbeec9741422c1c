"""Tkinter's main thread as aptio's main STA.

A COM GUI application serves its window messages and incoming COM calls from one message loop
on the UI thread. :func:`run` does the same for Tkinter: Tk's own event loop stays the driver of
the main thread, and an asyncio loop runs *inside* it, adopted as the main STA. UI objects are
``SINGLE`` (or ``APARTMENT``) coclasses that live there; worker STAs and the MTA reach them
through proxies, and every such call wakes the Tk thread at once.

How the two loops share the thread (no polling, so an idle application uses no CPU): the asyncio
loop's selector descriptor is registered with Tk (``createfilehandler``), so a call from another
thread wakes Tk; one Tk ``after`` timer stands for the loop's next deadline; a step runs asyncio
callbacks for at most :data:`STEP_BUDGET` seconds, and between two steps Tk always gets an idle
pass (``after_idle``) to handle input and redraw. :mod:`aptio.qt` shares all of this; only the
Tk calls are here.

Everything Tk-specific is imported lazily: ``import aptio.tk`` works without a display.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._gui import app as _app
from ._gui.stepping import STEP_BUDGET
from ._runtime.entry import DEFAULT_SHUTDOWN_TIMEOUT

if TYPE_CHECKING:
    import asyncio
    import tkinter

__all__ = ["STEP_BUDGET", "command", "run", "spawn", "wait_closed"]

T = TypeVar("T")

_HOST = "aptio.tk"

#: The Tcl interpreters (``root.tk``) of the roots :func:`run` ran, with the thread each was
#: made on. Tcl aborts the whole process when an interpreter is freed on another thread than
#: its own, and a root often ends in reference cycles (a traceback's frames, widgets and their
#: callbacks) that the garbage collector may free on any thread, an apartment's included.
#: Invariant: an interpreter listed here is freed only by :func:`_free_interpreters`, on its
#: own thread, once nothing but this list holds it (else at exit, on the main thread).
_interpreters: list[tuple[int, Any]] = []
_interpreters_lock = threading.Lock()


def _keep_interpreter(root: tkinter.Tk) -> None:
    with _interpreters_lock:
        _interpreters.append((threading.get_ident(), root.tk))


def _free_interpreters() -> None:
    """Let go of this thread's interpreters that only :data:`_interpreters` still holds
    (three references: the list's tuple, the loop variable, ``getrefcount``'s argument); they
    are freed right here, on their own thread, as the list drops them."""
    here = threading.get_ident()
    with _interpreters_lock:
        _interpreters[:] = [(thread, interp) for thread, interp in _interpreters
                            if thread != here or sys.getrefcount(interp) > 3]


class _TkToolkit:
    """The toolkit interface of :mod:`aptio._gui.toolkit` on a Tk root."""

    host = _HOST

    def __init__(self, root: tkinter.Tk) -> None:
        self.root = root
        self._watched: int | None = None
        self._timer: str | None = None
        self._idle: str | None = None

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        import tkinter

        self.root.tk.createfilehandler(fd, tkinter.READABLE, lambda _fd, _mask: on_readable())
        self._watched = fd

    def unwatch(self) -> None:
        fd, self._watched = self._watched, None
        if fd is not None:
            try:
                self.root.tk.deletefilehandler(fd)
            except Exception:  # the interpreter may already be destroyed
                pass

    def start_timer(self, milliseconds: int, on_timeout: Callable[[], None]) -> None:
        self.cancel_timer()

        def fire() -> None:
            self._timer = None
            on_timeout()

        self._timer = self.root.after(milliseconds, fire)

    def cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            self._after_cancel(timer)

    def request_idle(self, on_idle: Callable[[], None]) -> None:
        self.cancel_idle()

        def fire() -> None:
            self._idle = None
            on_idle()

        self._idle = self.root.after_idle(fire)

    def cancel_idle(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None:
            self._after_cancel(idle)

    def _after_cancel(self, handle: str) -> None:
        try:
            self.root.after_cancel(handle)
        except Exception:  # the interpreter may already be destroyed
            pass

    def on_close_request(self, callback: Callable[[], None]) -> None:
        self.root.protocol("WM_DELETE_WINDOW", callback)

    def run(self) -> None:
        self.root.mainloop()

    def quit(self) -> None:
        try:
            self.root.quit()
        except Exception:  # the interpreter may already be destroyed
            pass

    def report_error(self, error: BaseException) -> None:
        # As Tk reports a failing callback (overridable per root).
        self.root.report_callback_exception(type(error), error, error.__traceback__)

    def hide(self) -> None:
        self.root.withdraw()

    def close(self) -> None:
        import tkinter

        try:
            self.root.destroy()
        except tkinter.TclError:  # already destroyed
            pass


def spawn(awaitable: Awaitable[T]) -> asyncio.Task[T]:
    """Start ``awaitable`` (a coroutine, or a proxy call) as a Task on the Tk thread's loop, in
    the main STA, and return it.

    Call it from a Tk callback (a button's ``command``, a key binding) or from a coroutine.
    The task is cancelled when the application ends; if it fails, the error is reported
    with ``root.report_callback_exception``, as Tk reports a failing callback.
    """
    return _app.current_app(_HOST).spawn(awaitable)


def command(fn: Callable[..., Awaitable[object]], *args: Any,
            input_synchronized: bool = False) -> Callable[[], None]:
    """A Tk callback that starts ``fn(*args)`` as a task (as :func:`spawn` does) each time it
    is invoked.

    ``fn`` is a coroutine function or a proxy method. For a widget's ``command=``:
    ``ttk.Button(root, text="Go", command=aptio.tk.command(go))``. ``input_synchronized``:
    the handler's calls are input-synchronized (see ``aptio.input_synchronized``): while one
    is out, this STA takes no other incoming call, and its callee may not call back here.
    """

    def callback() -> None:
        _app.current_app(_HOST).start_input_handler(fn, args, input_synchronized)

    return callback


async def wait_closed() -> None:
    """Return when the user closes the application's window.

    While ``main`` awaits this, closing the window makes it return instead of cancelling
    ``main``, so the code after it runs normally (for example to save settings).
    """
    await _app.wait_closed(_HOST)


def run(
    main: Callable[[tkinter.Tk], Awaitable[T]],
    *,
    root: tkinter.Tk | None = None,
    use_uvloop: bool | None = None,
    mta_workers: int | None = None,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    debug: bool | None = None,
) -> T | None:
    """Run a Tkinter application whose thread is aptio's main STA; return ``main``'s result.

    ``main(root)`` is a coroutine function: it builds the UI on ``root`` (a new ``tkinter.Tk``
    unless one is given) and then either returns or awaits :func:`wait_closed`. Tk events and
    calls from other apartments are served on this thread until ``main`` is done.

    Closing the window cancels ``main`` (unless it awaits :func:`wait_closed`, which then
    returns); ``run`` then returns None. On the way out, tasks started with :func:`spawn` are
    cancelled, every apartment is shut down (threads joined) and the root window is destroyed.
    Ctrl+C in the terminal closes the application the same way and then raises
    ``KeyboardInterrupt``. ``use_uvloop`` applies to the other STAs only: the Tk thread always
    runs an asyncio selector loop. ``debug`` is :func:`aptio.run`'s.
    """
    _app.check_can_run(_HOST)
    import tkinter

    _free_interpreters()  # those of earlier runs on this thread that are garbage by now
    if root is None:
        root = tkinter.Tk()
    _keep_interpreter(root)
    toolkit = _TkToolkit(root)
    return _app.run_app(toolkit, lambda: main(toolkit.root), use_uvloop=use_uvloop,
                        mta_workers=mta_workers, shutdown_timeout=shutdown_timeout, debug=debug)
