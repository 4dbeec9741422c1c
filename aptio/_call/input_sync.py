"""Input-synchronized calls (COM: calls made while the GUI thread handles user input).

A call sent by code that runs inside ``aptio.input_synchronized()`` (which the GUI hosts put
around the input handlers they start when asked) is *input-synchronized*: until the call has
its outcome (returned, failed or cancelled), the caller's STA dispatches no other incoming
call, so the handler's view of its objects cannot change under it; and the callee may not call
back into the caller's STA (such a callback fails with InputSyncError instead of waiting
forever: COM's RPC_E_CANTCALLOUT_ININPUTSYNCCALL). Calls of other chains that arrive meanwhile
wait, and then run in the order they came, ahead of later ones. Only STAs handle input:
anywhere else this raises WrongApartmentError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .._threads.role import thread_role
from .._values.errors import WrongApartmentError
from .context import input_sync_var, mark_contexts
from .contract import DONE, CallRecord

__all__ = ["InputSyncEnd", "input_synchronized", "is_input_synchronized"]


@contextlib.contextmanager
def input_synchronized() -> Iterator[None]:
    """Make the calls sent inside the block (and in tasks started there) input-synchronized.

    For code handling user input on an STA (``aptio.tk.command`` and ``aptio.qt.command`` do
    it for the handlers they start). Raises WrongApartmentError off an STA's thread: the MTA
    and plain threads handle no input (COM_SPEC D5).
    """
    if thread_role.blocking_thread is not None:  # None exactly on an STA's thread
        raise WrongApartmentError(
            "input-synchronized calls are made by an STA handling user input; this thread "
            "is not an STA's (the MTA and plain threads cannot make them)"
        )
    mark_contexts()  # before the variable is set (see ``context_marked``)
    token = input_sync_var.set(True)
    try:
        yield
    finally:
        input_sync_var.reset(token)


def is_input_synchronized(call: CallRecord[Any]) -> bool:
    """True if ``call`` was sent input-synchronized (in this process). Read only where a
    message filter turned the call away: COM dispatches such calls even so."""
    waiters = call._waiters
    return waiters is not None and any(type(waiter) is InputSyncEnd for waiter in waiters)


class InputSyncEnd:
    """Waits on an input-synchronized call; once it has its final outcome, tells the caller's
    STA, through ``on_end`` run on that STA's thread by ``post``. ``notify`` may come twice and
    from any thread; ``_ended`` is read and set only on the STA's thread, so ``on_end`` runs
    exactly once."""

    __slots__ = ("_call", "_ended", "_on_end", "_post")

    def __init__(self, call: CallRecord[Any], on_end: Callable[[CallRecord[Any]], None],
                 post: Callable[[Callable[[], None]], None]) -> None:
        self._call = call
        self._on_end = on_end
        self._post = post
        self._ended = False

    def notify(self) -> None:
        call = self._call
        if call._cancelled or (call._state == DONE and call._rejected is None):
            self._post(self._end_once)

    def notify_now(self) -> None:
        self.notify()

    def _end_once(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end(self._call)
