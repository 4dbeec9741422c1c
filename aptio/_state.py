"""Per-thread apartment membership, and the sync calls each thread is executing.

Invariant: ``thread_local.state.apartment`` is set exactly on threads that an apartment owns
(an STA's loop thread, the adopted main thread, an MTA pool worker) for as long as that apartment
runs, and is never changed to a different apartment while set (COM: a thread's model never
changes).
A neutral-apartment call is tracked per context (not per thread), because coroutines of one STA
interleave on its thread and only the one inside the call is "in" the neutral apartment.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._apartment import Apartment
    from ._call import Call

__all__ = [
    "ThreadState",
    "current_apartment",
    "current_thread_is_sta",
    "enter_neutral",
    "executing_sync_calls",
    "neutral_override",
    "process_state",
    "set_implicit_mta",
    "set_thread_apartment",
    "thread_apartment",
    "thread_local",
]


class ThreadState:
    """What one thread is doing, read on every call: one ``threading.local`` lookup
    (``thread_local.state``), then plain attributes."""

    __slots__ = ("__weakref__", "apartment", "next_mark", "sync_calls")

    def __init__(self) -> None:
        #: The apartment that owns this thread (see the module invariant), or None.
        self.apartment: Apartment | None = None
        #: The sync method calls executing on this thread, innermost last; each is pushed by
        #: the code that runs it and popped when it returns (strictly LIFO). A None entry hides
        #: the ones below it while a coroutine call starts inline: the coroutine's own context
        #: (``current_call_var``) then says which call runs.
        self.sync_calls: list[Call[Any] | None] = []
        #: The ``time.monotonic()`` instant from which the next call this thread sends is
        #: marked as a yield point (see ``Call.__await__``).
        self.next_mark = 0.0


#: Every live thread's state (for diagnostics and shutdown, which look at what other threads
#: execute). A thread's entry goes when the thread ends and its ``threading.local`` is dropped.
_states: weakref.WeakSet[ThreadState] = weakref.WeakSet()
_states_lock = threading.Lock()


class _ThreadLocal(threading.local):
    state: ThreadState

    def __init__(self) -> None:  # runs once in each thread, at its first use
        state = ThreadState()
        self.state = state
        with _states_lock:
            _states.add(state)


#: For hot paths: ``thread_local.state`` is the calling thread's :class:`ThreadState`.
thread_local = _ThreadLocal()

#: Set while a call into a NEUTRAL object runs in this context.
neutral_override: contextvars.ContextVar[Apartment | None] = contextvars.ContextVar(
    "aptio_neutral_override", default=None
)


def thread_apartment() -> Apartment | None:
    """The apartment that owns the calling thread, ignoring neutral calls and the implicit MTA."""
    return thread_local.state.apartment


def set_thread_apartment(apartment: Apartment | None) -> None:
    thread_local.state.apartment = apartment


def executing_sync_calls() -> list[Call[Any]]:
    """Every sync method call executing on some thread right now (a snapshot, any thread)."""
    with _states_lock:
        states = list(_states)
    return [call for state in states for call in list(state.sync_calls) if call is not None]


def current_thread_is_sta() -> bool:
    """True on an STA's loop thread: blocking waits there would stall every object it holds."""
    apartment = thread_local.state.apartment
    return apartment is not None and apartment.kind.is_sta


class _Process:
    #: The runtime's MTA once it exists: threads in no apartment count as its (implicit) members.
    implicit_mta: Apartment | None = None
    #: False until a call first enters the neutral apartment, then True for good. While False,
    #: no context has ``neutral_override`` set, so hot paths skip reading it (a context
    #: variable that was never set in a context is not cached: every read walks the context).
    neutral_entered: bool = False


_process = _Process()
#: For hot paths that inline ``current_apartment`` (read its attributes; never write them).
process_state = _process


def set_implicit_mta(mta: Apartment | None) -> None:
    _process.implicit_mta = mta


def enter_neutral(apartment: Apartment) -> contextvars.Token[Apartment | None]:
    """Mark this context as inside a call to a NEUTRAL object (the only way to set
    ``neutral_override`` to an apartment); reset with the token."""
    _process.neutral_entered = True  # before the variable is set: see ``neutral_entered``
    return neutral_override.set(apartment)


def current_apartment() -> Apartment | None:
    """The apartment the calling code runs in.

    Inside a call to a NEUTRAL object: the neutral apartment. On an apartment's thread: that
    apartment. On any other thread, once the MTA exists: the MTA (an implicit member, COM's
    IMPLICIT_MTA). Otherwise None.
    """
    override = neutral_override.get() if _process.neutral_entered else None
    if override is not None:
        return override
    apartment = thread_local.state.apartment
    if apartment is not None:
        return apartment
    return _process.implicit_mta
