"""Per-thread apartment membership.

Invariant: ``_tls.apartment`` is set exactly on threads that an apartment owns (an STA's loop
thread, the adopted main thread, an MTA pool worker) for as long as that apartment runs, and is
never changed to a different apartment while set (COM: a thread's model never changes).
A neutral-apartment call is tracked per context (not per thread), because coroutines of one STA
interleave on its thread and only the one inside the call is "in" the neutral apartment.
"""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._apartment import Apartment

__all__ = [
    "current_apartment",
    "current_thread_is_sta",
    "neutral_override",
    "process_state",
    "set_implicit_mta",
    "set_thread_apartment",
    "thread_apartment",
    "thread_state",
]


class _ThreadState(threading.local):
    apartment: Apartment | None = None


_tls = _ThreadState()
#: For hot paths that inline ``current_apartment`` (read ``.apartment``; never write it).
thread_state = _tls

#: Set while a call into a NEUTRAL object runs in this context.
neutral_override: contextvars.ContextVar[Apartment | None] = contextvars.ContextVar(
    "aptio_neutral_override", default=None
)


def thread_apartment() -> Apartment | None:
    """The apartment that owns the calling thread, ignoring neutral calls and the implicit MTA."""
    return _tls.apartment


def set_thread_apartment(apartment: Apartment | None) -> None:
    _tls.apartment = apartment


def current_thread_is_sta() -> bool:
    """True on an STA's loop thread: blocking waits there would stall every object it holds."""
    apartment = _tls.apartment
    return apartment is not None and apartment.kind.is_sta


class _Process:
    #: The runtime's MTA once it exists: threads in no apartment count as its (implicit) members.
    implicit_mta: Apartment | None = None


_process = _Process()
#: For hot paths that inline ``current_apartment`` (read ``.implicit_mta``; never write it).
process_state = _process


def set_implicit_mta(mta: Apartment | None) -> None:
    _process.implicit_mta = mta


def current_apartment() -> Apartment | None:
    """The apartment the calling code runs in.

    Inside a call to a NEUTRAL object: the neutral apartment. On an apartment's thread: that
    apartment. On any other thread, once the MTA exists: the MTA (an implicit member, COM's
    IMPLICIT_MTA). Otherwise None.
    """
    override = neutral_override.get()
    if override is not None:
        return override
    apartment = _tls.apartment
    if apartment is not None:
        return apartment
    return _process.implicit_mta
