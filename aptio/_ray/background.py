"""The aptio runtime of a process that received a proxy through Ray without running one: a
plain Ray task's worker, a plain Ray actor, a driver outside ``aptio.run``.

The proxy that arrives needs a runtime to call through, so the first one brings it up: its
main STA on a thread of its own (``aptio background``), the node's I/O thread, and the MTA and
STAs as usual once something needs them. It lives until the process exits: an ``atexit``
handler shuts it down then (releasing what this process held, so the owners need not wait
for its silence). A process that runs ``aptio.run`` itself afterwards is refused
(``ChangedModeError``): its runtime is this one, for as long as it lives.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable
from typing import Final

from .._runtime.entry import current_runtime, get_runtime, run
from .._runtime.runtime import Runtime
from .._values.errors import NotInitializedError

__all__ = ["runtime_here"]

#: How long the runtime gets to start, and to stop at exit.
_START_TIMEOUT: Final = 30.0
_STOP_TIMEOUT: Final = 10.0

_lock = threading.Lock()


class _Background:
    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.failure: BaseException | None = None
        self._stop: Callable[[], None] | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="aptio background",
                                       daemon=True)

    def start(self) -> Runtime:
        self.thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self.runtime is None:
            raise NotInitializedError(
                "the aptio runtime this process needs for a proxy it received through Ray "
                f"did not start ({self.failure or 'it timed out'})")
        atexit.register(self.stop)
        return self.runtime

    def _main(self) -> None:
        try:
            run(self._serve())
        except BaseException as error:  # reported by ``start``
            self.failure = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop_soon() -> None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # stopped already
                pass

        self._stop = stop_soon
        self.runtime = get_runtime()
        self._ready.set()
        await stop.wait()

    def stop(self) -> None:
        """Shut the runtime down and wait for it (at exit)."""
        if self._stop is not None:
            self._stop()
        self.thread.join(_STOP_TIMEOUT)


def runtime_here() -> Runtime:
    """This process's aptio runtime: the running one, else one started now in the
    background (see the module docstring)."""
    runtime = current_runtime()
    if runtime is not None:
        return runtime
    with _lock:
        runtime = current_runtime()
        if runtime is not None:
            return runtime
        return _Background().start()
