"""What each thread and context is doing: the apartment it belongs to, the calls it runs in.

Invariant: a thread's ``ThreadState.apartment`` is set exactly on threads that an apartment
owns (an STA's loop thread, the adopted main thread, an MTA pool worker) for as long as that
apartment runs, and is never changed to a different apartment while set (COM: a thread's model
never changes).
A neutral-apartment call is tracked per context (not per thread), because coroutines of one STA
interleave on its thread and only the one inside the call is "in" the neutral apartment.

Every call knows the call it runs in (:func:`running_call`): a coroutine call through the
``current_call_var`` of its Task's context, a sync method call through its thread's stack of
executing sync calls. A call made from inside another call inherits that call's causality id
(the same logical thread); a call made from outside any call starts a new one.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections.abc import Callable
from typing import Any, Final

from .._threads.role import set_loop_owner
from .._threads.thread_table import bind_to_thread, thread_id
from .contract import ApartmentContract, CallRecord
from .tracing import CallTracer

__all__ = [
    "ThreadState",
    "context_call",
    "current_call_var",
    "current_site",
    "enter_neutral",
    "executing_sync_calls",
    "input_sync_var",
    "mark_contexts",
    "neutral_override",
    "new_causality_id",
    "process_state",
    "running_call",
    "running_call_in",
    "set_implicit_mta",
    "set_thread_apartment",
    "set_tracer",
    "thread_apartment",
    "new_thread_state",
    "thread_id",
    "thread_state",
    "thread_states",
]


class ThreadState:
    """What one thread is doing, read on every call: one lookup (:func:`thread_state`),
    then plain attributes."""

    __slots__ = ("apartment", "caller_links", "next_mark", "sync_calls")

    def __init__(self) -> None:
        #: The apartment that owns this thread (see the module invariant), or None.
        self.apartment: ApartmentContract | None = None
        #: The sync method calls executing on this thread, innermost last; each is pushed by
        #: the code that runs it and popped when it returns (strictly LIFO). A None entry hides
        #: the ones below it while a coroutine call starts inline: the coroutine's own context
        #: (``current_call_var``) then says which call runs. It is never empty: it starts with
        #: None entries (no sync call runs), four of them so that CPython's list never
        #: reallocates its storage for the push and pop around each call (it shrinks a list
        #: that falls below half its capacity; an empty list frees it).
        self.sync_calls: list[CallRecord[Any] | None] = [None, None, None, None]
        #: The ``time.monotonic()`` instant from which the next call this thread sends is
        #: marked as a yield point (see ``Call.__await__``).
        self.next_mark = 0.0
        #: The links this thread's calls to other processes take, by remote apartment, each
        #: with the apartment this thread was in when it was chosen (see
        #: ``aptio._remote.remote_apartment``): they go with the thread.
        self.caller_links: dict[object, tuple[object, Any]] = {}


#: Every live thread's state, by thread id (a table of :mod:`aptio._threads.thread_table`,
#: whose invariant it keeps: an entry only for a live thread, added by that thread at its
#: first lookup, ``new_thread_state``, and gone when it ends). Hot paths inline
#: :func:`thread_state` and look the state up once per call (see that module for the cost).
thread_states: Final[dict[object, ThreadState]] = {}


def thread_state() -> ThreadState:
    """The calling thread's state."""
    try:
        return thread_states[thread_id()]
    except KeyError:
        return new_thread_state()


def new_thread_state() -> ThreadState:
    """The calling thread's first lookup: its state is made (see ``thread_states``)."""
    state = ThreadState()
    bind_to_thread(thread_states, state, _thread_end)
    return state


_thread_end: Final = threading.local()

# The names below are Final: compiled modules that import them read a C static, not the
# module's dict (the send path reads two of them on every call).

#: Set while a call into a NEUTRAL object runs in this context.
neutral_override: Final[contextvars.ContextVar[ApartmentContract | None]] = contextvars.ContextVar(
    "aptio_neutral_override", default=None
)

#: True while the code of this context sends input-synchronized calls (see
#: :mod:`aptio._call.input_sync`).
input_sync_var: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar(
    "aptio_input_sync", default=False
)

#: The coroutine call running in this context, or None. (A sync method's call is not set
#: here but pushed on its thread's ``sync_calls``: a context variable costs two HAMT copies and
#: a token per call, a list push and pop far less. See :func:`running_call`.)
current_call_var: Final[contextvars.ContextVar[CallRecord[Any] | None]] = contextvars.ContextVar(
    "aptio_current_call", default=None
)

#: ``current_call_var.get``, bound once: compiled code calls it without looking the method up.
context_call: Final[Callable[[], CallRecord[Any] | None]] = current_call_var.get

#: A fresh causality id (an opaque int, unique in the process). The counter's own C method:
#: thread-safe under the GIL, and no Python frame on the per-call path.
new_causality_id: Final[Callable[[], int]] = itertools.count(1).__next__


def running_call() -> CallRecord[Any] | None:
    """The innermost aptio call the calling code runs in: the sync method call executing on
    this thread, else the coroutine call of this context, else None."""
    return running_call_in(thread_state())


def running_call_in(state: ThreadState) -> CallRecord[Any] | None:
    """:func:`running_call` for code that has the calling thread's state already (``send``
    inlines this, on every call)."""
    call = state.sync_calls[-1]
    return call if call is not None else context_call()


def thread_apartment() -> ApartmentContract | None:
    """The apartment that owns the calling thread, ignoring neutral calls and the implicit MTA."""
    return thread_state().apartment


def set_thread_apartment(apartment: ApartmentContract | None) -> None:
    """Bind the calling thread to ``apartment`` (None: unbind); an STA's thread also becomes
    one that must not block."""
    thread_state().apartment = apartment
    set_loop_owner(apartment is not None and apartment.kind.is_sta)


def executing_sync_calls() -> list[CallRecord[Any]]:
    """Every sync method call executing on some thread right now (a snapshot, any thread)."""
    states = thread_states.copy().values()  # copy(): atomic under the GIL
    return [call for state in states for call in list(state.sync_calls) if call is not None]


class _Process:
    """Process-wide facts read on hot paths (read its attributes; write them only here)."""

    __slots__ = ("context_marked", "contexts_used", "implicit_mta", "tracer")

    def __init__(self) -> None:
        #: The runtime's MTA once it exists: threads in no apartment count as its (implicit)
        #: members.
        self.implicit_mta: ApartmentContract | None = None
        #: False until a context is first marked (a call enters the neutral apartment, or code
        #: starts sending input-synchronized calls), then True for good; also True while a call
        #: recording runs. While False, no context has ``neutral_override`` or
        #: ``input_sync_var`` set and no recording runs, so hot paths skip reading them (a
        #: context variable never set in a context is not cached: every read walks the context).
        self.context_marked = False
        #: True once a context was first marked (see :func:`mark_contexts`).
        self.contexts_used = False
        #: The running call recording, or None (read only where ``context_marked`` is true).
        self.tracer: CallTracer | None = None


#: For hot paths that inline :func:`current_site`.
process_state: Final = _Process()

#: Serializes the writes that turn ``context_marked`` off (a recording's end) with the first
#: marking of a context. Invariant: ``context_marked`` is False only while ``contexts_used`` is
#: False and no tracer is installed; ``mark_contexts`` sets both flags under the lock, and
#: ``set_tracer`` derives ``context_marked`` from them under it, so neither undoes the other.
_marks_lock = threading.Lock()


def mark_contexts() -> None:
    """A context is about to be marked (before ``neutral_override`` or ``input_sync_var`` is
    set in it): from now on, for good, hot paths read those variables."""
    if not process_state.contexts_used:  # once set, only under the lock, it stays set
        with _marks_lock:
            process_state.contexts_used = True
            process_state.context_marked = True


def set_tracer(tracer: CallTracer | None) -> None:
    """Install the call recorder (None: remove it). While one is installed,
    ``context_marked`` is true, so the send path reaches the tracer; once it is removed, the
    flag goes back to what the marked contexts need."""
    with _marks_lock:
        process_state.tracer = tracer
        process_state.context_marked = tracer is not None or process_state.contexts_used


def set_implicit_mta(mta: ApartmentContract | None) -> None:
    process_state.implicit_mta = mta


def enter_neutral(apartment: ApartmentContract) -> contextvars.Token[ApartmentContract | None]:
    """Mark this context as inside a call to a NEUTRAL object (the only way to set
    ``neutral_override`` to an apartment); reset with the token."""
    mark_contexts()  # before the variable is set: see ``context_marked``
    return neutral_override.set(apartment)


def current_site() -> ApartmentContract | None:
    """The apartment the calling code runs in (``aptio.current_apartment()``).

    Inside a call to a NEUTRAL object: the neutral apartment. On an apartment's thread: that
    apartment. On any other thread, once the MTA exists: the MTA (an implicit member, COM's
    IMPLICIT_MTA). Otherwise None.
    """
    override = neutral_override.get() if process_state.context_marked else None
    if override is not None:
        return override
    apartment = thread_state().apartment
    if apartment is not None:
        return apartment
    return process_state.implicit_mta
