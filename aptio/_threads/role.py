"""Whether the calling thread may block, and the loop it serves: the per-thread facts the
primitives need.

Invariant: ``thread_role.blocking_thread`` is None exactly on threads that an STA owns (its loop
thread, or the adopted main thread) while that STA runs, and the thread's ``threading.Thread``
everywhere else. A blocking wait on an STA's thread would stall every object of the apartment, so
the primitives' blocking API refuses it there. The apartments layer sets it when it binds a
thread; this layer knows nothing else about apartments.

Invariant: ``thread_role.loop`` is not None only on a thread that an apartment binds to one
event loop for as long as the binding lasts (an STA's thread, the MTA's loop thread): while it
is set, that loop is the one running whenever a coroutine runs on this thread, so
``asyncio.current_task(thread_role.loop)`` is the running Task (3.11's ``current_task()`` with
no loop makes a ``getpid()`` system call to find it).
"""

from __future__ import annotations

import _thread  # noqa: F401  (compiled, a subclass of threading.local needs its module)
import asyncio
import threading
from asyncio import current_task

from mypy_extensions import mypyc_attr

__all__ = ["running_task", "set_loop_owner", "set_thread_loop", "thread_role"]


# A Python class even where this module is compiled: a compiled subclass of threading.local
# would keep its attributes in the object itself, shared by every thread.
@mypyc_attr(native_class=False)
class _ThreadRole(threading.local):
    def __init__(self) -> None:
        #: This thread's ``threading.Thread`` where it may block, None on an STA's thread (see
        #: the module invariant): the primitives' blocking fast paths get both the STA check and
        #: the holder they record from this one thread-local read.
        self.blocking_thread: threading.Thread | None = threading.current_thread()
        #: The loop an apartment bound this thread to, or None (see the module invariant).
        self.loop: asyncio.AbstractEventLoop | None = None


#: For hot paths: ``thread_role.blocking_thread`` is one ``threading.local`` lookup.
thread_role = _ThreadRole()


def set_loop_owner(owner: bool) -> None:
    """The calling thread now is (True) or no longer is (False) an STA's thread."""
    thread_role.blocking_thread = None if owner else threading.current_thread()


def set_thread_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """The calling thread is now bound to ``loop`` (None: no longer); see the module invariant."""
    thread_role.loop = loop


def running_task() -> asyncio.Task[object] | None:
    """``asyncio.current_task()``, called from a coroutine, without looking the loop up where
    an apartment bound this thread to one."""
    loop = thread_role.loop
    return current_task(loop) if loop is not None else current_task()
