"""``Apartment``: what every apartment kind shares (identity, routing, creation, shutdown API).

The kinds live in their own modules: :mod:`aptio._sta` (an event loop on one thread),
:mod:`aptio._mta` (a worker pool), :mod:`aptio._neutral` (the caller's own thread).
"""

from __future__ import annotations

import abc
import asyncio
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._call import MARK_INTERVAL, RUNNING, Call
from ._calls import current_call_var
from ._exceptions import AptioError, DisconnectedError
from ._kinds import ApartmentKind
from ._loop_thread import CANCEL_GRACE
from ._proxy import Proxy, marshal_args, marshal_kwargs, marshal_value, proxy_for, record_home
from ._state import executing_sync_calls, neutral_override, process_state, thread_local

_monotonic = time.monotonic

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._diagnostics import ApartmentStatistics
    from ._filter import MessageFilter
    from ._models import Reentrancy
    from ._proxy import Stub
    from ._reentrancy import Gate
    from ._runtime import Runtime
    from ._transport import Inbox

__all__ = ["Apartment"]

T = TypeVar("T")



class Apartment(abc.ABC):
    """An apartment: the main STA, another STA, the MTA, or the neutral apartment.

    Objects live in exactly one apartment; code elsewhere reaches them through proxies. Use it
    as an async context manager to shut it down on exit.
    """

    __slots__ = ("__weakref__", "_closing", "_kind", "_message_filter", "_name", "_outgoing",
                 "_post_inbox", "_running", "_runtime")

    #: True for the neutral apartment: calls always run on the caller's own thread.
    _always_inline = False
    #: True for STAs: the calling code is in this apartment exactly when the calling thread
    #: belongs to it (``thread_local.state.apartment is self``), so ``_invoke`` skips
    #: ``_is_current``.
    _thread_bound = False

    def __init__(self, runtime: Runtime, kind: ApartmentKind, name: str) -> None:
        self._runtime = runtime
        self._kind = kind
        self._name = name
        self._closing = False
        #: Calls that started a Task here and have not finished (kept alive, failed at shutdown).
        self._running: set[Call[Any]] = set()
        #: STA only (None elsewhere): causality chain -> number of outgoing calls this
        #: apartment's code is suspended on. Decides an incoming call's CALLTYPE. Touched only on
        #: the STA's thread.
        self._outgoing: dict[int, int] | None = {} if kind.is_sta else None
        self._message_filter: MessageFilter | None = None
        #: Set when ``_post`` is exactly "post to this inbox" (an STA on the batched
        #: transport), so ``_invoke`` skips the ``_post`` frame on the hot path.
        self._post_inbox: Inbox | None = None

    # ------------------------------------------------------------------ public API

    @property
    def kind(self) -> ApartmentKind:
        """MAIN_STA, STA, MTA or NEUTRAL."""
        return self._kind

    @property
    def name(self) -> str:
        """A readable name; STA threads are named after it."""
        return self._name

    @property
    def is_closed(self) -> bool:
        """True once shutdown began: new calls into the apartment raise DisconnectedError."""
        return self._closing

    def __repr__(self) -> str:
        state = " closed" if self._closing else ""
        return f"<aptio.Apartment {self._kind.name} {self._name!r}{state}>"

    async def create(self, cls: type[T], *args: Any, **kwargs: Any) -> Proxy[T]:
        """Create ``cls(*args, **kwargs)`` as if from a thread of this apartment: the class's
        threading model and this apartment's kind decide where the object lives."""
        return await self._runtime.create_from(self, cls, args, kwargs)

    def set_message_filter(self, message_filter: MessageFilter | None) -> MessageFilter | None:
        """Install a message filter (COM: CoRegisterMessageFilter) and return the previous one;
        None removes it. STAs only: the MTA and the NA cannot have one."""
        raise AptioError(
            f"{self._name!r} is {self._kind.name}: only STAs have message filters (COM: MTA "
            "threads cannot register one); install it on an STA"
        )

    @property
    def message_filter(self) -> MessageFilter | None:
        """The installed message filter, or None."""
        return self._message_filter

    def statistics(self) -> ApartmentStatistics:
        """A snapshot of what the apartment is doing, for diagnosing a stuck program."""
        from ._diagnostics import apartment_statistics

        return apartment_statistics(self)

    @abc.abstractmethod
    async def shutdown(self, timeout: float | None = None) -> None:
        """Shut the apartment down (idempotent).

        New calls fail at once with DisconnectedError; calls queued but not started fail with
        DisconnectedError; calls still running get ``timeout`` seconds (None: no limit) to
        finish, then are cancelled and their callers get DisconnectedError. Threads are joined.
        Called from inside the apartment, it starts the shutdown and returns without waiting.
        """

    async def __aenter__(self) -> Apartment:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # ------------------------------------------------------------------ routing (internal)

    @abc.abstractmethod
    def _is_current(self) -> bool:
        """True if the calling code runs in this apartment (so it may touch its objects)."""

    @abc.abstractmethod
    def _run_here(self, call: Call[Any]) -> None:
        """Start ``call`` inline on the calling thread, which belongs to this apartment."""

    @abc.abstractmethod
    def _post(self, call: Call[Any]) -> None:
        """Queue ``call`` for one of this apartment's threads (called from another thread)."""

    def _admit(self, call: Call[Any]) -> None:
        """Start a call that waited at a reentrancy gate (from whichever thread freed it)."""
        self._post(call)

    def _blocking(self, blocked: bool) -> None:  # noqa: B027 - only the MTA's pool cares
        """One of this apartment's threads starts or stops blocking in ``call.result()``."""

    def _executing_calls(self, snapshot: list[Call[Any]] | None = None) -> list[Call[Any]]:
        """This apartment's sync method calls executing on some thread now, from ``snapshot``
        (``executing_sync_calls()``, taken here if None)."""
        calls = executing_sync_calls() if snapshot is None else snapshot
        return [call for call in calls
                if call._apartment is self and call._state == RUNNING]  # not just finishing

    def _queued_calls(self) -> list[Call[Any]]:
        """Calls sent here and not started yet (a snapshot, for diagnostics)."""
        return []

    @staticmethod
    def _calls_waiting_in(inbox: Inbox | None) -> list[Call[Any]]:
        """The calls among an inbox's undelivered items (replies and releases left out)."""
        items = inbox.waiting() if inbox is not None else []
        return [item for item in items if isinstance(item, Call)]

    def _invoke(
        self,
        obj: object,
        method: str,
        fn: Callable[..., Any],
        is_async: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        agile: bool,
        gate: Gate | None = None,
        policy: Reentrancy | None = None,
    ) -> Call[Any]:
        """Send one call: inline when the caller is in this apartment (or the object is
        agile), otherwise through this apartment's queue."""
        if self._closing:
            raise self._disconnected_error(method)
        # current_apartment() and running_call(), inlined (this runs on every call)
        state = thread_local.state
        override = neutral_override.get() if process_state.neutral_entered else None
        here = state.apartment
        caller = override if override is not None else (
            here if here is not None else process_state.implicit_mta)
        sync_calls = state.sync_calls
        parent = sync_calls[-1] if sync_calls else None
        if parent is None:
            parent = current_call_var.get()
        if not agile and (args or kwargs):
            sender = caller if caller is not None else self
            if args:
                args = marshal_args(args, sender)
            if kwargs:
                kwargs = marshal_kwargs(kwargs, sender)
        # Fairness: the first call a thread sends once MARK_INTERVAL has passed is marked, and
        # awaiting it yields to the loop even if it is done by then (see ``Call.__await__``).
        now = _monotonic()
        marked = now >= state.next_mark
        if marked:
            state.next_mark = now + MARK_INTERVAL
        call: Call[Any] = Call(self, obj, method, fn, is_async, args, kwargs, caller, parent,
                               now, marked, gate, policy)
        if (agile or self._always_inline
                or (here is self if self._thread_bound else self._is_current())):
            self._run_here(call)
        else:
            inbox = self._post_inbox
            if inbox is not None:
                inbox.post(call)
            else:
                self._post(call)
        return call

    def _construct(self, cls: type[T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call[Any]:
        """Send the construction of ``cls`` here; the call's result is a proxy to the object."""

        def construct(*args: Any, **kwargs: Any) -> Proxy[T]:
            obj = cls(*args, **kwargs)
            record_home(obj, self)
            return proxy_for(obj, self)

        return self._invoke(None, "__init__", construct, False, args, kwargs, False)

    async def _drain(self, timeout: float | None) -> None:
        """On this apartment's loop: give running coroutine calls ``timeout`` seconds, then
        cancel the rest; their callers get DisconnectedError. Calls still queued fail as they
        are delivered (``_closing`` is set), while replies keep flowing, so running calls can
        still finish their own outgoing calls."""
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        # Only tasks on this loop can be waited for here; calls of this apartment's objects
        # running on other loops (agile or inline calls) are failed at the deadline below.
        pending = {call._task for call in self._running
                   if call._task is not None and call._task is not current
                   and call._task.get_loop() is loop}
        if pending and (timeout is None or timeout > 0):
            await asyncio.wait(pending, timeout=timeout)
        overrunning = [call for call in list(self._running) if call._task is not current]
        for call in overrunning:
            call._disconnect(DisconnectedError(
                f"{call._method}() was still running when apartment {self._name!r} shut down "
                f"(drain timeout {timeout} s)"
            ))
        tasks = {call._task for call in overrunning
                 if call._task is not None and call._task.get_loop() is loop}
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE)

    def _loop_exited(self) -> None:
        """This apartment's loop thread ended (normally, or because an error escaped it): fail
        every call still running here, so none waits forever."""
        for call in list(self._running):
            call._disconnect(self._disconnected_error(call._method))

    def _marshal_result(self, value: Any) -> Any:
        return marshal_value(value, self)

    def _disconnected_error(self, method: str) -> DisconnectedError:
        return DisconnectedError(
            f"{method}(): apartment {self._name!r} is shut down; create the object again in a "
            "running apartment"
        )

    def _release(self, stub: Stub) -> None:
        """Drop the stub's reference to its object: here by default; an STA does it on its
        own thread."""
        stub.drop_object()

    def _run_blocking_coroutine(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine method to completion on this thread's private loop (MTA rules)."""
        from ._loops import thread_private_loop

        thread_private_loop(self._runtime.use_uvloop).run_until_complete(coro)
