"""Sending one call: the hot path between a proxy method and the target apartment.

``send`` runs on the caller's thread, once per call: it reads who is calling (the apartment and
the call the caller's code runs in, inlined from ``current_site``/``running_call``), makes the
:class:`~aptio._call.call.Call`, and routes it: inline when the caller is in the target
apartment (or the object is agile, or the target is the neutral apartment), else into the
apartment's queue. Arguments are marshaled before this, by the proxy (``aptio._proxy.proxy``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from .._call.call import MARK_INTERVAL, Call
from .._call.context import (
    context_call,
    input_sync_var,
    neutral_override,
    new_causality_id,
    new_thread_state,
    process_state,
    thread_id,
    thread_states,
)
from .._call.contract import ApartmentContract, GateContract
from .._threads.loops import running_loop
from .._values.enums import Reentrancy
from .._values.errors import WrongApartmentError
from .neutral_guard import NeutralGuard, guarded
from .stub import Stub

__all__ = ["send", "serialized"]

_monotonic: Final = time.monotonic


def send(
    apartment: ApartmentContract,
    stub: Stub | None,
    method: str,
    fn: Callable[..., Any],
    is_async: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    gate: GateContract | None,
    policy: Reentrancy | None,
) -> Call[Any]:
    """Send ``fn(*args, **kwargs)`` to ``apartment`` as a call of ``method`` on the stub's
    object (no stub: a call of no object, as a creation); returns the call, already on its way.
    """
    if apartment._closing:
        raise apartment._disconnected_error(method)
    target = None
    agile = False
    inline_only = apartment._inline_only
    if stub is not None:
        target = stub.obj
        agile = stub.agile
        guard = stub.neutral_guard
        if guard is not None:  # a NEUTRAL object: one call at a time
            fn, is_async = serialized(guard, fn, is_async)
    # current_site() and running_call(), inlined (this runs on every call)
    try:  # thread_state(), inlined
        state = thread_states[thread_id()]
    except KeyError:
        state = new_thread_state()
    marked = process_state.context_marked
    override = neutral_override.get() if marked else None
    here = state.apartment
    caller = override if override is not None else (
        here if here is not None else process_state.implicit_mta)
    parent = state.sync_calls[-1]  # never empty (see ThreadState)
    if parent is None:
        parent = context_call()
    # Fairness: the first call a thread sends once MARK_INTERVAL has passed is marked, and
    # awaiting it yields to the loop even if it is done by then (see ``Call.__await__``).
    now = _monotonic()
    yields = now >= state.next_mark
    if yields:
        state.next_mark = now + MARK_INTERVAL
    call: Call[Any] = Call(apartment, target, method, fn, is_async, args, kwargs, caller, parent,
                           new_causality_id() if parent is None else parent._causality,
                           now, yields, gate, policy)
    if marked:  # a running call recording keeps ``context_marked`` true
        tracer = process_state.tracer
        if tracer is not None:
            tracer.sent(call)
    if (agile or inline_only
            or (here is apartment if apartment._thread_bound else apartment._is_current())):
        if agile:  # 3.11 may queue it in its STA's order, to run on that thread
            apartment._run_here(call)
        else:  # runs here, on this thread, now (see ``CallRecord._sender_calls``)
            call._sender_calls = state.sync_calls
            try:
                apartment._run_here(call)
            finally:
                call._sender_calls = None
    else:
        if marked and input_sync_var.get():  # before it leaves: a callback finds the STA held
            if here is None:
                raise WrongApartmentError("input-synchronized calls are made only from STAs")
            here._begin_input_sync(call)
        inbox = apartment._post_inbox
        if inbox is not None:
            inbox.post(call)
        else:
            apartment._post(call)
    return call


def serialized(guard: NeutralGuard, fn: Callable[..., Any],
                is_async: bool) -> tuple[Callable[..., Any], bool]:
    """``fn`` under a NEUTRAL object's guard. Blocking is only for a thread with no loop and a
    sync method; everything else waits as a coroutine (on the caller's loop, or the thread's
    private loop)."""
    blocking = running_loop() is None and not is_async
    return guarded(fn, guard, blocking), not blocking
