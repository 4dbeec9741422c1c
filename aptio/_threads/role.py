"""Whether the calling thread may block: the one per-thread fact the primitives need.

Invariant: ``thread_role.loop_owner`` is True exactly on threads that an STA owns (its loop
thread, or the adopted main thread) while that STA runs. A blocking wait there would stall every
object of the apartment, so the primitives' blocking API refuses it. The apartments layer sets
it when it binds a thread; this layer knows nothing else about apartments.
"""

from __future__ import annotations

import _thread  # noqa: F401  (compiled, a subclass of threading.local needs its module)
import threading

from mypy_extensions import mypyc_attr

__all__ = ["forbids_blocking", "set_loop_owner", "thread_role"]


# A Python class even where this module is compiled: a compiled subclass of threading.local
# would keep its attributes in the object itself, shared by every thread.
@mypyc_attr(native_class=False)
class _ThreadRole(threading.local):
    #: True on an STA's thread (see the module invariant).
    loop_owner = False


#: For hot paths: ``thread_role.loop_owner`` is one ``threading.local`` lookup.
thread_role = _ThreadRole()


def forbids_blocking() -> bool:
    """True on an STA thread: blocking waits there would stall every object it holds."""
    return thread_role.loop_owner


def set_loop_owner(owner: bool) -> None:
    thread_role.loop_owner = owner
