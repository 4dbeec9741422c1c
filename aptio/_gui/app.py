"""One GUI application on its thread: the main task, the tasks it spawned, the close and Ctrl+C
handling, and the run skeleton that :func:`aptio.tk.run` and :func:`aptio.qt.run` share.

How an application ends, whichever way it does:

* ``main`` returns or raises: the toolkit's loop is told to quit.
* The user closes the window (the toolkit calls :meth:`GuiApp.request_close`): the windows are
  hidden at once, :func:`wait_closed` returns, or, when nothing awaits it, ``main`` is
  cancelled; a cancelled ``main`` then counts as a normal end and ``run`` returns None.
* Ctrl+C (SIGINT, through the loop's signal handler): the same as a close, and ``run`` raises
  ``KeyboardInterrupt`` once everything is shut down.
* The toolkit's loop ends under us (its windows destroyed, its ``quit`` called by user code):
  the same as a close, and the rest runs on the asyncio loop alone.

On the way out the spawned tasks are cancelled and awaited, every apartment is shut down (threads
joined), and what is left on the loop is cancelled and finished as ``asyncio.Runner`` does.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .._call.context import thread_apartment
from .._call.input_sync import input_synchronized
from .._runtime.entry import main_sta
from .._threads.loops import finish_loop, running_loop
from .._values.errors import ChangedModeError, NotInitializedError
from .stepping import Driver
from .toolkit import Toolkit

__all__ = ["GuiApp", "check_can_run", "current_app", "run_app", "wait_closed"]

T = TypeVar("T")


class GuiApp:
    """The state of one GUI application: its toolkit, loop driver, main task, spawned tasks."""

    def __init__(self, toolkit: Toolkit, driver: Driver) -> None:
        self.toolkit = toolkit
        self.driver = driver
        self.loop = driver.loop
        self.thread_id = threading.get_ident()
        self.main_task: asyncio.Future[Any] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = asyncio.Event()
        self.close_waiters = 0
        self.close_requested = False
        self.interrupted = False

    def request_close(self) -> None:
        """The user closed the window: a toolkit callback, between steps, or inside one when
        code closes the window (Qt emits its close signal at once)."""
        if self.close_requested:
            return
        self.close_requested = True
        try:
            self.toolkit.hide()  # answer the click at once; apartments shut down behind it
        except Exception:
            pass
        self.closed.set()
        if self.close_waiters == 0 and self.main_task is not None:
            # Not at once: the close may come from inside main's own last step (Qt closes a
            # window whose widget main's frame held, as that frame is cleared), and cancelling
            # a Task during its last step replaces its result with CancelledError.
            self.loop.call_soon(self.main_task.cancel)

    def on_interrupt(self) -> None:
        self.interrupted = True
        self.request_close()
        if self.main_task is not None:
            self.main_task.cancel()

    def spawn(self, awaitable: Awaitable[T]) -> asyncio.Task[T]:
        coro = awaitable if inspect.iscoroutine(awaitable) else _wait_for(awaitable)
        task: asyncio.Task[T] = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def start_input_handler(self, fn: Callable[..., Awaitable[object]], args: tuple[Any, ...],
                            synchronized: bool = False) -> asyncio.Task[object]:
        """Start a user-input handler: ``fn(*args)`` as a spawned task.

        Every handler that a widget starts through the hosts' helpers (``aptio.tk.command``,
        ``aptio.qt.command``) starts here, and only here. ``synchronized``: the calls it makes
        (in the task too) are input-synchronized (``aptio.input_synchronized``).
        """
        if not synchronized:
            return self.spawn(fn(*args))
        with input_synchronized():  # the context the task copies has it too
            return self.spawn(fn(*args))

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.toolkit.report_error(error)  # as the toolkit reports a failing callback

    async def cancel_tasks(self) -> None:
        while self.tasks:
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _wait_for(awaitable: Awaitable[T]) -> T:
    return await awaitable


_apps: dict[int, GuiApp] = {}


def current_app(host: str) -> GuiApp:
    """The application of ``host`` (``"aptio.tk"``, ``"aptio.qt"``) on this thread."""
    app = _apps.get(threading.get_ident())
    if app is None or app.toolkit.host != host:
        raise NotInitializedError(
            f"no {host} application runs on this thread; call this from code that "
            f"{host}.run(main) runs (main, a coroutine it awaits, or a GUI callback)"
        )
    return app


async def wait_closed(host: str) -> None:
    """Return when the user closes the application's window (see the hosts' docs)."""
    app = current_app(host)
    app.close_waiters += 1
    try:
        await app.closed.wait()
    finally:
        app.close_waiters -= 1


def check_can_run(host: str) -> None:
    """Refuse to start an application where none can run (before any toolkit object exists)."""
    if running_loop() is not None:
        raise ChangedModeError(
            f"{host}.run() cannot be called from a running event loop; it runs its own, "
            f"inside the toolkit's"
        )
    if threading.get_ident() in _apps:
        raise ChangedModeError(f"a GUI application already runs on this thread ({host}.run)")
    here = thread_apartment()
    if here is not None:
        raise ChangedModeError(
            f"{host}.run() cannot be called on a thread of apartment {here.name!r}; call it "
            f"on the thread that runs the GUI, outside aptio.run()"
        )


def run_app(
    toolkit: Toolkit,
    main: Callable[[], Awaitable[T]],
    *,
    use_uvloop: bool | None,
    mta_workers: int | None,
    shutdown_timeout: float | None,
    debug: bool | None,
) -> T | None:
    """The skeleton of the hosts' ``run``: serve ``main()`` and the toolkit on this thread."""
    check_can_run(toolkit.host)
    driver = Driver(toolkit)
    loop = driver.loop
    app = GuiApp(toolkit, driver)
    _apps[app.thread_id] = app
    interrupt_installed = False
    try:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            loop.add_signal_handler(signal.SIGINT, app.on_interrupt)
            interrupt_installed = True
        toolkit.on_close_request(app.request_close)
        body = loop.create_task(
            _body(app, main, use_uvloop, mta_workers, shutdown_timeout, debug))
        body.add_done_callback(lambda _: toolkit.quit())
        driver.attach()
        toolkit.run()  # returns once ``body`` is done (or the toolkit's loop ended)
        driver.detach()
        if not body.done():  # the toolkit's loop ended under us: finish without it
            app.request_close()
            loop.run_until_complete(body)
        result = body.result()
        if app.interrupted:
            raise KeyboardInterrupt
        return result
    finally:
        driver.detach()
        try:
            if not loop.is_closed():
                finish_loop(loop, "aptio GUI loop")
        finally:
            if interrupt_installed:
                loop.remove_signal_handler(signal.SIGINT)
            loop.close()
            del _apps[app.thread_id]
            toolkit.close()


async def _body(
    app: GuiApp,
    main: Callable[[], Awaitable[T]],
    use_uvloop: bool | None,
    mta_workers: int | None,
    shutdown_timeout: float | None,
    debug: bool | None,
) -> T | None:
    async with main_sta(use_uvloop=use_uvloop, mta_workers=mta_workers,
                        shutdown_timeout=shutdown_timeout, debug=debug):
        main_task = asyncio.ensure_future(main())
        app.main_task = main_task
        if app.close_requested:
            main_task.cancel()  # closed before main started (the toolkit's loop ended early)
        try:
            return await main_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if app.close_requested and current is not None and not current.cancelling():
                return None  # the window was closed while main ran: a normal way to end
            raise
        finally:
            await app.cancel_tasks()
