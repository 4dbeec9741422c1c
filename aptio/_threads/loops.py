"""Event-loop factories (uvloop when installed and wanted, asyncio otherwise), and each non-STA
thread's private loop."""

from __future__ import annotations

import _thread  # noqa: F401  (compiled, a subclass of threading.local needs its module)
import asyncio
import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

from mypy_extensions import mypyc_attr

__all__ = ["CANCEL_GRACE", "EAGER_TASKS", "close_thread_private_loop", "finish_loop",
           "loop_factory", "running_loop", "thread_private_loop", "uvloop_available"]

#: Seconds a stopping loop gives its cancelled tasks to unwind: a task that ignores
#: cancellation cannot hold the loop's thread.
CANCEL_GRACE: Final = 1.0

#: 3.12+ can start a Task eagerly: its first step runs inside the constructor, so calls start
#: in the order they arrive with no extra loop iteration. 3.11 keeps that order with the code
#: in :mod:`aptio._threads.ordering_311`.
EAGER_TASKS: Final = sys.version_info >= (3, 12)

running_loop = asyncio._get_running_loop  # the fast, non-raising lookup asyncio itself uses

#: uvloop, imported the first time a loop is made (importing aptio does not import it: the
#: pytest plugin loads with aptio in every test session); None while not looked for yet.
_uvloop: Any = None
_uvloop_looked_for = False


def _load_uvloop() -> Any:
    global _uvloop, _uvloop_looked_for
    if not _uvloop_looked_for:
        found: Any
        try:  # pragma: no cover - depends on the platform
            # Not `import uvloop as found`: compiled with mypyc, an import inside a function
            # binds a module global, and the local would stay unbound.
            found = importlib.import_module("uvloop")
        except ImportError:  # pragma: no cover
            found = None
        _uvloop = found
        _uvloop_looked_for = True
    return _uvloop


def uvloop_available() -> bool:
    """True when uvloop can be imported on this interpreter (it is imported to find out)."""
    return _load_uvloop() is not None


def loop_factory(use_uvloop: bool | None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory for a new loop: uvloop if ``use_uvloop`` is true or None and it is installed."""
    if use_uvloop is False:
        return asyncio.new_event_loop
    uvloop = _load_uvloop()
    if uvloop is None:
        if use_uvloop:
            raise RuntimeError(
                "use_uvloop=True but uvloop is not installed; install it or pass use_uvloop=False"
            )
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


class _LoopHolder:
    """Owns one thread's private loop; closes it when the thread's locals are dropped (the
    thread ended), so a plain thread that ran a coroutine method leaves nothing unclosed."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def close(self) -> None:
        loop = self.loop
        if not loop.is_closed() and not loop.is_running():
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown, or a loop in an unusable state
            pass


# A Python class even where this module is compiled: a compiled subclass of threading.local
# would keep its attributes in the object itself, shared by every thread.
@mypyc_attr(native_class=False)
class _PrivateLoops(threading.local):
    holder: _LoopHolder | None = None


_private = _PrivateLoops()


def thread_private_loop(use_uvloop: bool | None) -> asyncio.AbstractEventLoop:
    """A loop owned by the calling non-STA thread, made on first use, for running coroutine
    methods to completion there (an MTA worker, or a plain thread calling a FREE or NEUTRAL
    object). Invariant: never running when this is called from outside it."""
    holder = _private.holder
    if holder is None or holder.loop.is_closed():
        holder = _LoopHolder(loop_factory(use_uvloop)())
        _private.holder = holder
    return holder.loop


def close_thread_private_loop() -> None:
    """Close the calling thread's private loop, if it made one (pool workers call this on exit)."""
    holder = _private.holder
    _private.holder = None
    if holder is not None:
        holder.close()


def finish_loop(loop: asyncio.AbstractEventLoop, owner: str) -> None:
    """End a loop that stopped running, as ``asyncio.Runner.close`` does, but bounded: cancel
    the tasks left (user tasks, waiters) and let them unwind for at most CANCEL_GRACE seconds,
    then close async generators and the default executor. A task that ignored cancellation is
    abandoned and one that failed is reported, both to the loop's exception handler; ``owner``
    names the loop's owner there ("aptio apartment", ...). The caller closes the loop."""
    tasks = asyncio.all_tasks(loop)
    if tasks:
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.wait(tasks, timeout=CANCEL_GRACE))
        for task in tasks:
            if not task.done():
                loop.call_exception_handler({
                    "message": f"a task of a stopping {owner} ignored cancellation; it is "
                               "abandoned",
                    "task": task,
                })
            elif not task.cancelled() and task.exception() is not None:
                loop.call_exception_handler({
                    "message": f"unhandled exception in a task of a stopping {owner}",
                    "exception": task.exception(),
                    "task": task,
                })
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
