"""An asyncio loop run in steps from a GUI toolkit's callbacks, on the toolkit's thread.

The toolkit's event loop drives the thread; the asyncio loop is a stock selector loop that
runs only in *steps*. No polling, so an idle application uses no CPU:

* The loop's selector is an epoll (or kqueue) selector, and its own file descriptor is watched
  by the toolkit. It becomes readable when any asyncio I/O is ready, including the loop's
  self-pipe, which ``call_soon_threadsafe`` writes: that is how another thread (an aptio call
  or reply) wakes the loop, and so the toolkit.
* A step runs the asyncio loop until it would block, or for at most :data:`STEP_BUDGET`
  seconds. asyncio tells its selector how long it would block; during a step the selector never
  blocks, it records that time instead, and one toolkit timer is armed for the loop's next
  deadline.
* Fairness: a step started by the watch stops the watch until the toolkit's next idle callback,
  so between two steps the toolkit always handles its pending input, redraws and timers; a step
  that used its whole budget continues from an idle callback the same way. A stream of
  wake-ups from other threads therefore cannot starve the toolkit, nor the toolkit the loop.
  The budget is checked between asyncio iterations: a step ends with the iteration in which it
  ran out, and an iteration runs every callback that was ready when it began. aptio's inbox
  hands over at most 256 calls per iteration; callbacks that a thread posts with raw
  ``call_soon_threadsafe`` all run in the iteration that finds them, as on any asyncio loop.
* Work scheduled from a toolkit callback (outside a step: ``task.cancel()``, ``event.set()``,
  a new task, a timer) asks for a step from the next idle callback: nothing else would wake
  the loop for it.
* A toolkit loop nested inside a step (a modal dialog opened by a coroutine) cannot run
  another step: the steps it would start return at once, and the watch stays off until the
  outer step has ended, so the nested loop does not spin on a readable descriptor.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import Context
from typing import TYPE_CHECKING, Any, Final, TypeVarTuple, Unpack

from .toolkit import Toolkit

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = ["STEP_BUDGET", "Driver", "SteppedLoop"]

_Ts = TypeVarTuple("_Ts")

#: The longest stretch, in seconds, that one step runs asyncio callbacks before the toolkit
#: gets a turn (input, redraws, its timers). The step resumes from an idle callback.
STEP_BUDGET: Final = 0.010

#: ``Driver._wait`` before the loop said how long it would block.
_UNKNOWN: Final = -1.0


class _SteppedSelector(selectors.BaseSelector):
    """The asyncio loop's selector. With a driver attached, ``select`` never blocks: the toolkit
    waits in its place, on :meth:`fileno` and a timer. Without one it is the plain inner
    selector (used to finish the loop's work once the toolkit's loop has ended)."""

    def __init__(self, inner: selectors.BaseSelector, host: str) -> None:
        self._inner = inner
        self._host = host
        self.driver: Driver | None = None

    def fileno(self) -> int:
        fileno: Callable[[], int] | None = getattr(self._inner, "fileno", None)
        if fileno is None:  # pragma: no cover - select()/poll() based platforms
            raise RuntimeError(
                f"{self._host} needs a selector with a file descriptor (epoll or kqueue); "
                f"this platform's default is {type(self._inner).__name__}"
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


class SteppedLoop(asyncio.SelectorEventLoop):
    """The GUI thread's asyncio loop. Toolkit callbacks run between steps, when the loop is not
    running: a callback that schedules work would wait for some unrelated wake-up. So scheduling
    from the GUI thread outside a step asks the driver for a step."""

    def __init__(self, selector: _SteppedSelector) -> None:
        super().__init__(selector)
        self.driver: Driver | None = None

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
            driver._wake()  # the step after it re-arms the toolkit timer for the new deadline
        return handle


class Driver:
    """Runs a :class:`SteppedLoop` in steps from a toolkit's callbacks (see the module doc)."""

    def __init__(self, toolkit: Toolkit) -> None:
        self._toolkit = toolkit
        self._selector = _SteppedSelector(selectors.DefaultSelector(), toolkit.host)
        self._fd = self._selector.fileno()
        self.loop = SteppedLoop(self._selector)
        self._thread_id = threading.get_ident()
        self._stepping = False
        self._budget_end = 0.0
        self._wait: float | None = _UNKNOWN  # what the loop would block for after this step
        self._more = False  # the last step ran out of budget (or was asked for) with work left
        self._watching = False
        self._timer_due: float | None = None  # when the toolkit timer fires; None: no timer
        self._idle_pending = False
        self._attached = False
        #: Steps run so far (tests use it to show that an idle application makes none).
        self.steps = 0

    # ------------------------------------------------------------------ attach / detach

    def attach(self) -> None:
        """Start serving the loop from the toolkit: watch the descriptor, step once soon."""
        self._selector.driver = self
        self.loop.driver = self
        self._attached = True
        self._watch()
        self._more = True  # the first step runs from the toolkit's first idle callback
        self._request_idle()

    def detach(self) -> None:
        """Stop serving the loop from the toolkit (safe to call twice); the loop then runs on
        its own."""
        if not self._attached:
            return
        self._attached = False
        self._selector.driver = None
        self.loop.driver = None
        self._unwatch()
        if self._timer_due is not None:
            self._timer_due = None
            self._toolkit.cancel_timer()
        if self._idle_pending:
            self._idle_pending = False
            self._toolkit.cancel_idle()

    def _watch(self) -> None:
        if not self._watching and self._attached:
            self._toolkit.watch(self._fd, self._on_readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._toolkit.unwatch()

    # ------------------------------------------------------------------ toolkit callbacks

    def _on_readable(self) -> None:
        # Fairness: stop watching until the toolkit's next idle callback, so a stream of
        # wake-ups from other threads cannot starve its input handling and redraws.
        self._unwatch()
        self._request_idle()
        self._step()

    def _on_idle(self) -> None:
        self._idle_pending = False
        if self._stepping:
            # A toolkit loop nested in a step: the outer step re-arms the watch when it ends.
            return
        self._watch()
        if self._more:
            self._step()

    def _on_timer(self) -> None:
        self._timer_due = None
        self._step()

    def _wake(self) -> None:
        """Work was scheduled outside a step: run one from the toolkit's next idle callback."""
        if threading.get_ident() == self._thread_id:
            self._more = True
            self._request_idle()

    def _request_idle(self) -> None:
        if not self._idle_pending and self._attached:
            self._idle_pending = True
            self._toolkit.request_idle(self._on_idle)

    # ------------------------------------------------------------------ stepping

    def _step(self) -> None:
        """Run the asyncio loop until it would block, or for STEP_BUDGET seconds."""
        if self._stepping or not self._attached or self.loop.is_closed():
            # Re-entered from a toolkit loop nested in a callback of this very step (a dialog,
            # Tk's ``update()``): the step in progress, or its successor, will see the work.
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
            # Out of budget, or stopped by someone else: continue after the toolkit's turn.
            self._more = True
            self._request_idle()
        else:
            self._arm_timer(wait)
            if not self._watching:
                self._request_idle()  # the idle callback that re-arms the watch

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
        """Keep one toolkit timer for the loop's next deadline (None: no timer needed)."""
        if wait is None:
            if self._timer_due is not None:
                self._timer_due = None
                self._toolkit.cancel_timer()
            return
        due = time.monotonic() + wait
        if self._timer_due is not None and self._timer_due <= due + 0.0005:
            return  # it fires in time (or a little early, which costs one empty step)
        self._timer_due = due
        self._toolkit.start_timer(max(1, math.ceil(wait * 1000)), self._on_timer)
