"""Whether the calling thread may block: the one per-thread fact the primitives need.

Invariant: ``thread_role.blocking_thread`` is None exactly on threads that an STA owns (its loop
thread, or the adopted main thread) while that STA runs, and the thread's ``threading.Thread``
everywhere else. A blocking wait on an STA's thread would stall every object of the apartment, so
the primitives' blocking API refuses it there. The apartments layer sets it when it binds a
thread; this layer knows nothing else about apartments.
"""

from __future__ import annotations

import threading

__all__ = ["set_loop_owner", "thread_role"]


class _ThreadRole(threading.local):
    def __init__(self) -> None:
        #: This thread's ``threading.Thread`` where it may block, None on an STA's thread (see
        #: the module invariant): the primitives' blocking fast paths get both the STA check and
        #: the holder they record from this one thread-local read.
        self.blocking_thread: threading.Thread | None = threading.current_thread()


#: For hot paths: ``thread_role.blocking_thread`` is one ``threading.local`` lookup.
thread_role = _ThreadRole()


def set_loop_owner(owner: bool) -> None:
    """The calling thread now is (True) or no longer is (False) an STA's thread."""
    thread_role.blocking_thread = None if owner else threading.current_thread()
