"""Tkinter's main thread as aptio's main STA.

A COM GUI application serves its window messages and incoming COM calls from one message loop
on the UI thread. :func:`run` does the same for Tkinter: Tk's own event loop stays the driver of
the main thread, and an asyncio loop runs *inside* it, adopted as the main STA. UI objects are
``SINGLE`` (or ``APARTMENT``) coclasses that live there; worker STAs and the MTA reach them
through proxies, and every such call wakes the Tk thread at once.

How the two loops share the thread (no polling, so an idle application uses no CPU):

* The asyncio loop's selector is an epoll (or kqueue) selector, and the selector's own file
  descriptor is registered with Tk (``createfilehandler``). It becomes readable when any asyncio
  I/O is ready, including the loop's self-pipe, which ``call_soon_threadsafe`` writes: that is
  how another thread (an aptio reply or call) wakes the loop, and therefore Tk.
* When Tk reports the descriptor readable, a *step* runs the asyncio loop until it would block
  (or for at most :data:`STEP_BUDGET` seconds). asyncio tells its selector how long it would
  block; the selector here never blocks, it records that time instead, and a single Tk
  ``after`` timer is armed for the loop's next deadline.
* Fairness: after a step that Tk's file handler started, the handler is re-armed from a Tk idle
  callback, so between two asyncio steps Tk always gets to handle its pending events and
  redraw. A step that used its whole budget continues from an idle callback the same way.

Everything Tk-specific is imported lazily: ``import aptio.tk`` works without a display.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import selectors
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import Context
from typing import TYPE_CHECKING, Any, Final, TypeVar, TypeVarTuple, Unpack

from ._runtime.entry import DEFAULT_SHUTDOWN_TIMEOUT, main_sta
from ._threads.loops import running_loop
from ._values.errors import ChangedModeError, NotInitializedError

if TYPE_CHECKING:
    import tkinter

    from _typeshed import FileDescriptorLike

__all__ = ["STEP_BUDGET", "command", "run", "spawn", "wait_closed"]

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")

#: The longest stretch, in seconds, that one step runs asyncio callbacks before Tk gets a turn
#: (input, redraws, its timers). The step resumes from a Tk idle callback.
STEP_BUDGET: Final = 0.010


class _TkSelector(selectors.BaseSelector):
    """The asyncio loop's selector. With a driver attached, ``select`` never blocks: Tk waits
    in its place, on :meth:`fileno` and a timer. Without one it is the plain inner selector
    (used to finish the loop's work once Tk has gone)."""

    def __init__(self, inner: selectors.BaseSelector) -> None:
        self._inner = inner
        self.driver: _TkDriver | None = None

    def fileno(self) -> int:
        fileno: Callable[[], int] | None = getattr(self._inner, "fileno", None)
        if fileno is None:  # pragma: no cover - select()/poll() based platforms
            raise RuntimeError(
                f"aptio.tk needs a selector with a file descriptor (epoll or kqueue); this "
                f"platform's default is {type(self._inner).__name__}"
            )
        return fileno()

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        driver = self.driver
        if driver is None:
            return self._inner.select(timeout)
        return driver._select(self._inner, timeout)

    def get_key(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class _TkLoop(asyncio.SelectorEventLoop):
    """The Tk thread's asyncio loop. Tk callbacks run between steps, when the loop is not
    running: a callback that schedules work (``task.cancel()``, ``event.set()``, a new Task,
    a timer) would wait for some unrelated wake-up. So scheduling from the Tk thread outside a
    step asks the driver for a step."""

    def __init__(self, selector: _TkSelector) -> None:
        super().__init__(selector)
        self.driver: _TkDriver | None = None

    def call_soon(
        self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.Handle:
        handle = super().call_soon(callback, *args, context=context)
        driver = self.driver
        if driver is not None and not driver._stepping:
            driver._wake()
        return handle

    def call_at(
        self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        driver = self.driver
        if driver is not None and not driver._stepping:
            driver._wake()  # the step after it re-arms the Tk timer for the new deadline
        return handle


#: ``_TkDriver._wait`` before the loop said how long it would block.
_UNKNOWN: Final = -1.0


class _TkDriver:
    """Runs an asyncio loop in steps from Tk callbacks on Tk's thread (see the module doc)."""

    def __init__(self, root: tkinter.Misc) -> None:
        self._root = root
        self._selector = _TkSelector(selectors.DefaultSelector())
        self._fd = self._selector.fileno()
        self.loop = _TkLoop(self._selector)
        self._thread_id = threading.get_ident()
        self._stepping = False
        self._budget_end = 0.0
        self._wait: float | None = _UNKNOWN  # what the loop would block for after this step
        self._more = False  # the last step ran out of budget with work left
        self._watching = False
        self._timer: str | None = None
        self._timer_due = 0.0
        self._idle: str | None = None
        self._attached = False
        self.steps = 0

    # ------------------------------------------------------------------ attach / detach

    def attach(self) -> None:
        """Start serving the loop from Tk: watch the selector's descriptor, step once soon."""
        self._selector.driver = self
        self.loop.driver = self
        self._attached = True
        self._watch()
        self._more = True  # the first step runs from Tk's first idle pass
        self._request_idle()

    def detach(self) -> None:
        """Stop serving the loop from Tk (safe to call twice); the loop then runs on its own."""
        if not self._attached:
            return
        self._attached = False
        self._selector.driver = None
        self.loop.driver = None
        self._unwatch()
        for handle in (self._timer, self._idle):
            if handle is not None:
                try:
                    self._root.after_cancel(handle)
                except Exception:  # the interpreter may already be destroyed
                    pass
        self._timer = self._idle = None

    def _watch(self) -> None:
        if not self._watching and self._attached:
            import tkinter

            self._root.tk.createfilehandler(self._fd, tkinter.READABLE, self._on_readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            try:
                self._root.tk.deletefilehandler(self._fd)
            except Exception:  # the interpreter may already be destroyed
                pass

    # ------------------------------------------------------------------ Tk callbacks

    def _on_readable(self, fd: int, mask: int) -> None:
        # Fairness: stop watching until Tk has had an idle pass, so a stream of wake-ups from
        # other threads cannot starve Tk's input handling and redraws (both wait for idle).
        self._unwatch()
        self._request_idle()
        self._step()

    def _on_idle(self) -> None:
        self._idle = None
        self._watch()
        if self._more:
            self._step()

    def _on_timer(self) -> None:
        self._timer = None
        self._step()

    def _wake(self) -> None:
        """Work was scheduled outside a step: run one from Tk's next idle pass."""
        if threading.get_ident() == self._thread_id:
            self._more = True
            self._request_idle()

    def _request_idle(self) -> None:
        if self._idle is None and self._attached:
            self._idle = self._root.after_idle(self._on_idle)

    # ------------------------------------------------------------------ stepping

    def _step(self) -> None:
        """Run the asyncio loop until it would block, or for STEP_BUDGET seconds."""
        if self._stepping or not self._attached or self.loop.is_closed():
            # Re-entered from a nested Tk loop (a dialog, ``update()``) run by a callback of
            # this very step: the step in progress, or its successor, will see the work.
            return
        self._stepping = True
        self._more = False
        self._wait = _UNKNOWN
        self._budget_end = time.monotonic() + STEP_BUDGET
        self.steps += 1
        try:
            self.loop.run_forever()  # returns once _select (or user code) stops it
        finally:
            self._stepping = False
        if self._selector.driver is not self:  # detached by a callback of this step
            return
        wait = self._wait
        if self._more or wait == _UNKNOWN:
            # Out of budget, or stopped by someone else: continue after Tk had its turn.
            self._more = True
            self._request_idle()
        else:
            self._arm_timer(wait)

    def _select(
        self, inner: selectors.BaseSelector, timeout: float | None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        """The loop's ``select`` during a step: poll, and stop the loop where it would block.

        ``timeout`` is what asyncio computed: 0 when callbacks are ready, the time to the next
        timer otherwise, None when there is no timer. The loop finishes the current iteration
        after ``stop()``, so work already due still runs in this step.
        """
        events = inner.select(0)
        if not events and (timeout is None or timeout > 0):
            self._wait = timeout
            self.loop.stop()
        elif time.monotonic() >= self._budget_end:
            self._more = True
            self.loop.stop()
        return events

    def _arm_timer(self, wait: float | None) -> None:
        """Keep one Tk timer for the loop's next deadline (None: no timer needed)."""
        if wait is None:
            if self._timer is not None:
                self._root.after_cancel(self._timer)
                self._timer = None
            return
        due = time.monotonic() + wait
        if self._timer is not None:
            if self._timer_due <= due + 0.0005:
                return  # it fires in time (or a little early, which costs one empty step)
            self._root.after_cancel(self._timer)
        self._timer_due = due
        self._timer = self._root.after(max(1, math.ceil(wait * 1000)), self._on_timer)


class _App:
    """The state of one :func:`run`: its root, loop driver, main task and spawned tasks."""

    def __init__(self, root: tkinter.Tk, driver: _TkDriver) -> None:
        self.root = root
        self.driver = driver
        self.loop = driver.loop
        self.thread_id = threading.get_ident()
        self.main_task: asyncio.Future[Any] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closed = asyncio.Event()
        self.close_waiters = 0
        self.close_requested = False
        self.interrupted = False

    def on_delete_window(self) -> None:
        """The window manager's close button (a Tk callback, outside any step)."""
        self.request_close()

    def request_close(self) -> None:
        if self.close_requested:
            return
        self.close_requested = True
        try:
            self.root.withdraw()  # answer the click at once; apartments shut down behind it
        except Exception:
            pass
        self.closed.set()
        if self.close_waiters == 0 and self.main_task is not None:
            self.main_task.cancel()

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

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # Report it as Tk reports a failing callback (overridable per root).
            self.root.report_callback_exception(type(error), error, error.__traceback__)

    async def cancel_tasks(self) -> None:
        while self.tasks:
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _wait_for(awaitable: Awaitable[T]) -> T:
    return await awaitable


_apps: dict[int, _App] = {}


def _current_app() -> _App:
    app = _apps.get(threading.get_ident())
    if app is None:
        raise NotInitializedError(
            "no aptio.tk application runs on this thread; call this from code that "
            "aptio.tk.run(main) runs (main, a coroutine it awaits, or a Tk callback)"
        )
    return app


def spawn(awaitable: Awaitable[T]) -> asyncio.Task[T]:
    """Start ``awaitable`` (a coroutine, or a proxy call) as a Task on the Tk thread's loop, in
    the main STA, and return it.

    Call it from a Tk callback (a button's ``command``, a key binding) or from a coroutine.
    The task is cancelled when the application ends; if it fails, the error is reported
    with ``root.report_callback_exception``, as Tk reports a failing callback.
    """
    return _current_app().spawn(awaitable)


def command(fn: Callable[..., Awaitable[object]], *args: Any) -> Callable[[], None]:
    """A Tk callback that starts ``fn(*args)`` with :func:`spawn` each time it is invoked.

    ``fn`` is a coroutine function or a proxy method. For a widget's ``command=``:
    ``ttk.Button(root, text="Go", command=aptio.tk.command(go))``.
    """

    def callback() -> None:
        spawn(fn(*args))

    return callback


async def wait_closed() -> None:
    """Return when the user closes the application's window.

    While ``main`` awaits this, closing the window makes it return instead of cancelling
    ``main``, so the code after it runs normally (for example to save settings).
    """
    app = _current_app()
    app.close_waiters += 1
    try:
        await app.closed.wait()
    finally:
        app.close_waiters -= 1


def run(
    main: Callable[[tkinter.Tk], Awaitable[T]],
    *,
    root: tkinter.Tk | None = None,
    use_uvloop: bool | None = None,
    mta_workers: int | None = None,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
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
    runs an asyncio selector loop.
    """
    if running_loop() is not None:
        raise ChangedModeError(
            "aptio.tk.run() cannot be called from a running event loop; it runs its own, "
            "inside Tk's"
        )
    if threading.get_ident() in _apps:
        raise ChangedModeError("an aptio.tk application already runs on this thread")
    import tkinter

    if root is None:
        root = tkinter.Tk()
    driver = _TkDriver(root)
    loop = driver.loop
    app = _App(root, driver)
    _apps[app.thread_id] = app
    interrupt_installed = False
    try:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            loop.add_signal_handler(signal.SIGINT, app.on_interrupt)
            interrupt_installed = True
        root.protocol("WM_DELETE_WINDOW", app.on_delete_window)
        body = loop.create_task(_body(app, main, use_uvloop, mta_workers, shutdown_timeout))
        body.add_done_callback(lambda _: _quit(root))
        driver.attach()
        root.mainloop()  # returns once ``body`` is done (or every Tk window was destroyed)
        driver.detach()
        if not body.done():  # the root was destroyed under us: finish without Tk
            loop.run_until_complete(body)
        result = body.result()
        if app.interrupted:
            raise KeyboardInterrupt
        return result
    finally:
        driver.detach()
        try:
            _finish_loop(loop)
        finally:
            if interrupt_installed:
                loop.remove_signal_handler(signal.SIGINT)
            loop.close()
            del _apps[app.thread_id]
            try:
                root.destroy()
            except tkinter.TclError:  # already destroyed
                pass


async def _body(
    app: _App,
    main: Callable[[tkinter.Tk], Awaitable[T]],
    use_uvloop: bool | None,
    mta_workers: int | None,
    shutdown_timeout: float | None,
) -> T | None:
    async with main_sta(use_uvloop=use_uvloop, mta_workers=mta_workers,
                        shutdown_timeout=shutdown_timeout):
        main_task = asyncio.ensure_future(main(app.root))
        app.main_task = main_task
        try:
            return await main_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if app.close_requested and current is not None and not current.cancelling():
                return None  # the window was closed while main ran: a normal way to end
            raise
        finally:
            await app.cancel_tasks()


def _quit(root: tkinter.Misc) -> None:
    try:
        root.quit()
    except Exception:  # the interpreter may already be destroyed
        pass


def _finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    """As ``asyncio.Runner.close``: cancel what is left, then close async generators and the
    default executor."""
    if loop.is_closed():
        return
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
