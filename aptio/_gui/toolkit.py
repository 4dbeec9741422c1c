"""The toolkit interface: what the GUI host needs from a toolkit's event loop, and nothing more.

An adapter (:mod:`aptio.tk`, :mod:`aptio.qt`) implements it on the toolkit's thread. Every
method is called on that thread only: no toolkit call is ever made from another thread (aptio's
other threads wake the GUI thread through the asyncio loop's file descriptor, which the toolkit
watches).

The driver (:mod:`.stepping`) keeps at most one of each at a time, so an adapter holds a single
watch, a single timer and a single idle callback, and may replace or drop them freely:

* a *watch* calls back whenever the descriptor is readable, until :meth:`Toolkit.unwatch`;
* the *timer* calls back once, after at least the given number of milliseconds, unless
  :meth:`Toolkit.cancel_timer` came first;
* the *idle callback* calls back once, after the toolkit has handled the events (input,
  redraws, its own timers) that were pending when it was requested, unless cancelled.

Callbacks from the toolkit may raise: ``SystemExit`` and ``KeyboardInterrupt`` must end
:meth:`Toolkit.run` and propagate from it; other errors go to :meth:`Toolkit.report_error`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Toolkit"]


class Toolkit(Protocol):
    """One GUI toolkit's event loop on its own thread, as the GUI host uses it."""

    #: The public module's name, for messages: ``"aptio.tk"``, ``"aptio.qt"``.
    host: str

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Call ``on_readable`` whenever ``fd`` is readable, until :meth:`unwatch`."""

    def unwatch(self) -> None:
        """Stop watching the descriptor (a no-op when not watching)."""

    def start_timer(self, milliseconds: int, on_timeout: Callable[[], None]) -> None:
        """Call ``on_timeout`` once after ``milliseconds`` (replaces a timer still pending)."""

    def cancel_timer(self) -> None:
        """Drop the pending timer, if any."""

    def request_idle(self, on_idle: Callable[[], None]) -> None:
        """Call ``on_idle`` once the toolkit has handled its pending events."""

    def cancel_idle(self) -> None:
        """Drop the pending idle callback, if any."""

    def on_close_request(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the user closes the application's window (instead of the
        toolkit closing it on its own); :meth:`close` undoes this."""

    def run(self) -> None:
        """Run the toolkit's event loop until :meth:`quit` (or until the toolkit ends it)."""

    def quit(self) -> None:
        """Make :meth:`run` return (a no-op when the toolkit has gone)."""

    def report_error(self, error: BaseException) -> None:
        """Report an error the way the toolkit reports a failing callback."""

    def hide(self) -> None:
        """Hide the application's windows: the answer to a close request, given at once."""

    def close(self) -> None:
        """Release what the adapter holds in the toolkit (the end of ``run``)."""
