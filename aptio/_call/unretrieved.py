"""Errors nobody retrieves: a call that failed and was never awaited, never asked for its
``result()`` or ``exception()``, is reported once, when it is freed, as asyncio reports a Future
whose "exception was never retrieved".

The report is made by a small guard that only failed calls carry, so calls that succeed pay
nothing. It goes to the caller's apartment (an STA hands it to its loop's exception handler)
or, for a caller with no loop, to the ``aptio`` logger.

Invariant (a cancelled call is never reported): the target arms the guard and then re-reads
``_cancelled``; ``cancel()`` sets ``_cancelled`` and then disarms the guard if there is one.
Whichever comes second sees the other's write.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Final

from .._compiled import WeaklyReferenced

__all__ = ["ErrorGuard", "armed_guards", "log_error", "unretrieved_observers"]

_logger: Final = logging.getLogger("aptio")

#: Told of every unretrieved error as it is reported (the pytest plugin's leak check), with the
#: call's description and the error; wherever the report itself then goes.
unretrieved_observers: Final[list[Callable[[str, BaseException], None]]] = []


def log_error(context: dict[str, Any]) -> None:
    """Report ``context`` (an asyncio exception-handler context) to the ``aptio`` logger."""
    error = context.get("exception")
    exc_info = (type(error), error, error.__traceback__) if error is not None else None
    _logger.error("%s", context.get("message", "aptio error"), exc_info=exc_info)


class ErrorGuard(WeaklyReferenced):  # weakly referenced: see armed_guards
    """Carried by a failed call; reports its error when freed while still armed."""

    __slots__ = ("__weakref__", "armed", "describe", "error", "report")

    def __init__(self, error: BaseException, describe: str,
                 report: Callable[[dict[str, Any]], None]) -> None:
        self.error: BaseException | None = error
        self.describe = describe
        self.report = report
        self.armed = True
        _guards.add(self)

    def disarm(self) -> None:
        """The error was retrieved (or the call cancelled): nothing to report."""
        self.armed = False
        self.error = None  # drop the traceback's frames now

    def __del__(self) -> None:
        if not self.armed or self.error is None:
            return
        error, self.error = self.error, None
        for observer in list(unretrieved_observers):
            try:
                observer(self.describe, error)
            except Exception:  # an observer's failure must not hide the report
                pass
        try:
            self.report({
                "message": f"aptio call {self.describe}: exception was never retrieved "
                           "(await the call, or call its result() or exception())",
                "exception": error,
            })
        except Exception:  # interpreter shutdown: nowhere left to report to
            pass


#: Every guard alive (failed calls only: the calls that succeed make none).
_guards: Final[weakref.WeakSet[ErrorGuard]] = weakref.WeakSet()


def armed_guards() -> bool:
    """True if some failed call's error may still be reported (a leak check then frees
    garbage to find out; with none, it need not)."""
    return any(guard.armed for guard in list(_guards))
