"""A test that times out explains itself: with pytest-timeout, an aptio test's timeout prints
``aptio.format_calls()`` (every call in flight, what each waits on) and each apartment's
statistics, as the timeout strikes.

pytest-timeout lets a plugin set the timer itself (its ``pytest_timeout_set_timer`` hook); this
one does it for aptio tests only and hands over to pytest-timeout's own handlers, which then
do what they always do: the "thread" method dumps every thread's stack and ends the process
(the dump goes to the captured standard error, which that output shows), the "signal" method
fails the test (the dump is a section of its report). Other tests keep pytest-timeout's timer.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

import pytest

from .._diagnostics import format_calls
from .._runtime.entry import current_runtime
from .._values.enums import ApartmentKind
from .options import TestKind, kind_of

__all__ = ["TimeoutDump", "call_dump"]


def call_dump() -> str:
    """What aptio is doing right now, as text (any thread; never raises)."""
    try:
        runtime = current_runtime()
        if runtime is None:
            return "aptio: no runtime was running at the timeout"
        lines = ["aptio calls in flight at the timeout (oldest first):", format_calls(),
                 "aptio apartments:"]
        for apartment in runtime.apartments():
            if apartment.kind is ApartmentKind.NEUTRAL:
                continue
            stats = apartment.statistics()
            lines.append(f"  {stats.kind.name} {stats.name!r}: {stats.queued} queued, "
                         f"{stats.running} running, awaiting {stats.awaiting} calls"
                         + (" (closed)" if stats.closed else ""))
        return "\n".join(lines)
    except Exception as error:  # a snapshot taken while everything moves: say so, go on
        return f"aptio: the call dump failed ({error!r})"


class TimeoutDump:
    """Registered as a plugin when pytest-timeout is loaded."""

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        if kind_of(item) is TestKind.NONE:
            return None
        try:
            import pytest_timeout  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - the hook comes from it
            return None
        on_thread = getattr(pytest_timeout, "timeout_timer", None)
        on_signal = getattr(pytest_timeout, "timeout_sigalrm", None)
        if on_thread is None or on_signal is None:  # another pytest-timeout: its own timer
            return None
        method = settings.method
        if method == "signal" and threading.current_thread() is not threading.main_thread():
            method = "thread"
        if method == "signal":
            def handler(signum: int, frame: FrameType | None) -> None:
                __tracebackhide__ = True
                item.add_report_section("call", "aptio calls at the timeout", call_dump())
                on_signal(item, settings)

            def cancel_signal() -> None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)

            item.cancel_timeout = cancel_signal  # type: ignore[attr-defined]
            signal.signal(signal.SIGALRM, handler)
            signal.setitimer(signal.ITIMER_REAL, settings.timeout)
            return True

        def fire() -> None:
            debugging = getattr(pytest_timeout, "is_debugging", lambda: False)
            if settings.disable_debugger_detection or not debugging():
                try:
                    sys.stderr.write(f"\n{call_dump()}\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
            on_thread(item, settings)

        timer = threading.Timer(settings.timeout, fire)
        timer.name = f"pytest_timeout with the aptio call dump {item.nodeid}"

        def cancel_thread() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel_thread  # type: ignore[attr-defined]
        timer.start()
        return True
