"""``Apartment``: what every apartment kind shares (identity, creation, message filters,
statistics, the shutdown drain), and its implementation of the call contract.

The kinds live in their own modules: :mod:`aptio._apartments.sta` (an event loop on one
thread), :mod:`aptio._apartments.mta` (a worker pool), :mod:`aptio._apartments.neutral` (the
caller's own thread). What an apartment needs from the runtime that owns it (creation, being
forgotten once shut down, the loop kind) comes through :class:`Owner`.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, cast, overload

from mypy_extensions import mypyc_attr

from .._admission.message_filter import MessageFilter, filter_verdict, retry_delay
from .._call.call import Call
from .._call.context import current_site, executing_sync_calls
from .._call.contract import RUNNING, ApartmentContract, CallRecord, Releasable
from .._call.info import info_of
from .._call.input_sync import is_input_synchronized
from .._call.retry import reject
from .._call.unretrieved import log_error
from .._proxy.declared import ProxiedAs
from .._proxy.marshaling import marshal_args, marshal_kwargs, marshal_value
from .._proxy.proxy import Proxy, proxy_for, record_home, stub_of
from .._proxy.send import send
from .._threads.inbox import Inbox
from .._threads.loops import CANCEL_GRACE, thread_private_loop
from .._values.enums import ApartmentKind, ServerCall
from .._values.errors import AptioError, DisconnectedError
from .._values.statistics import ApartmentStatistics
from .call_hold import CallHold
from .release import ReleaseItem

__all__ = ["Apartment", "Owner", "ReleaseItem", "apartment_of", "as_apartment",
           "current_apartment"]

T = TypeVar("T")
P = ParamSpec("P")
PX = TypeVar("PX", bound=Proxy[Any])

_ISHANDLED: Final = ServerCall.ISHANDLED
_ids: Final = itertools.count(1)


# The runtime (aptio/_runtime, a Python class) subclasses this: mypyc lets Python classes
# subclass a compiled class only where the class says so. Not an abc.ABC (see
# aptio._call.contract.ApartmentContract).
@mypyc_attr(allow_interpreted_subclasses=True)
class Owner:
    """What an apartment needs from the runtime that owns it."""

    __slots__ = ()

    #: The loop kind for new loops the runtime's apartments make (None: uvloop if installed).
    use_uvloop: bool | None

    @abc.abstractmethod
    async def create_from(self, creator: Apartment, cls: type[T], args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> Proxy[T]:
        """Create ``cls(*args, **kwargs)`` as if from a thread of ``creator``."""

    @abc.abstractmethod
    def forget(self, apartment: Apartment) -> None:
        """``apartment`` is shut down: drop it from the runtime's records."""


class Apartment(ApartmentContract):
    """An apartment: the main STA, another STA, the MTA, or the neutral apartment.

    Objects live in exactly one apartment; code elsewhere reaches them through proxies. Use it
    as an async context manager to shut it down on exit.
    """

    __slots__ = ("_call_hold", "_id", "_message_filter", "_owner", "_stop_hooks")

    def __init__(self, owner: Owner, kind: ApartmentKind, name: str,
                 apartment_id: str | None = None) -> None:
        super().__init__(kind, name)
        self._owner = owner
        self._message_filter: MessageFilter | None = None
        #: Unique among this process's apartments: other processes name it by this.
        self._id = apartment_id if apartment_id is not None else f"sta-{next(_ids)}"
        #: Run on the apartment's loop thread as it stops, after its calls drained (the
        #: connections this apartment's loop drives close there).
        self._stop_hooks: list[Callable[[], None]] = []
        #: A test's hold on incoming calls (``aptio.testing.hold_calls``), or None.
        self._call_hold: CallHold | None = None

    # ------------------------------------------------------------------ public API

    def __repr__(self) -> str:
        state = " closed" if self._closing else ""
        return f"<aptio.Apartment {self._kind.name} {self._name!r}{state}>"

    @overload
    async def create(self, cls: Callable[P, ProxiedAs[PX]], *args: P.args,
                     **kwargs: P.kwargs) -> PX: ...
    @overload
    async def create(self, cls: Callable[P, T], *args: P.args,
                     **kwargs: P.kwargs) -> Proxy[T]: ...

    async def create(self, cls: Any, *args: Any, **kwargs: Any) -> Proxy[Any]:
        """Create ``cls(*args, **kwargs)`` as if from a thread of this apartment: the class's
        threading model and this apartment's kind decide where the object lives."""
        return await self._owner.create_from(self, cls, args, kwargs)

    def set_message_filter(self, message_filter: MessageFilter | None) -> MessageFilter | None:
        """Install a message filter (COM: CoRegisterMessageFilter) and return the previous one;
        None removes it. STAs only: the MTA and the NA cannot have one."""
        raise AptioError(
            f"{self._name!r} is {self._kind.name}: only STAs have message filters (COM: MTA "
            "threads cannot register one); install it on an STA"
        )

    @property
    def apartment_id(self) -> str:
        """Unique among the apartments of its process ("main", "mta", "na" or an STA's id)."""
        return self._id

    @property
    def message_filter(self) -> MessageFilter | None:
        """The installed message filter, or None."""
        return self._message_filter

    def statistics(self) -> ApartmentStatistics:
        """A snapshot of what the apartment is doing, for diagnosing a stuck program."""
        outgoing = self._outgoing
        return ApartmentStatistics(
            name=self._name,
            kind=self._kind,
            closed=self._closing,
            queued=len(self._queued_calls()),
            running=len(self._executing_calls()) + len(self._running),
            awaiting=sum(outgoing.values()) if outgoing is not None else 0,
            has_message_filter=self._message_filter is not None,
        )

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

    # ------------------------------------------------------------------ the call contract

    def _screen(self, call: CallRecord[Any]) -> bool:
        hold = self._call_hold
        if hold is not None and not hold.screen(call):
            return False
        message_filter = self._message_filter
        if message_filter is None:
            return True
        try:
            verdict = filter_verdict(message_filter, info_of(call))
        except AptioError as error:
            call._finish(None, error)
            return False
        if verdict is not _ISHANDLED and not is_input_synchronized(call):
            # (COM dispatches input-synchronized calls whatever the filter says)
            reject(call, verdict)
            return False
        return True

    def _retry_delay(self, call: CallRecord[Any], elapsed: float,
                     verdict: ServerCall) -> float | None:
        message_filter = self._message_filter
        if message_filter is None:
            return None
        return retry_delay(message_filter, info_of(call), elapsed, verdict)

    def _marshal_result(self, value: Any) -> Any:
        return marshal_value(value, self)

    def _run_blocking(self, coro: Coroutine[Any, Any, None]) -> None:
        thread_private_loop(self._owner.use_uvloop).run_until_complete(coro)

    def _release(self, holder: Releasable) -> None:
        """Drop the object here by default; an STA does it on its own thread."""
        holder.take_object()

    # ------------------------------------------------------------------ creation

    def _construct(self, cls: type[T], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Call[Proxy[T]]:
        """Send the construction of ``cls`` here; the call's result is a proxy to the object."""

        def construct(*args: Any, **kwargs: Any) -> Proxy[T]:
            obj = cls(*args, **kwargs)
            record_home(obj, self)
            return proxy_for(obj, self)

        if args:
            args = marshal_args(args, self)
        if kwargs:
            kwargs = marshal_kwargs(kwargs, self)
        return send(self, None, "__init__", construct, False, args, kwargs, None, None)

    # ------------------------------------------------------------------ holding calls (tests)

    def _hold_calls(self, on_held: Callable[[], None]) -> CallHold:
        """Start holding incoming calls (see :mod:`aptio._apartments.call_hold`)."""
        if self._call_hold is not None:
            raise AptioError(f"apartment {self._name!r} already holds its calls; release that "
                             "hold first (one hold per apartment at a time)")
        if self._closing:
            raise self._disconnected_error("hold_calls")
        hold = CallHold(self._name, self._requeue_held, on_held)
        self._call_hold = hold
        self._update_screening()
        return hold

    def _end_hold(self, hold: CallHold) -> None:
        """Stop holding: every held call is sent on, in order, ahead of later ones."""
        if self._call_hold is hold:
            self._call_hold = None
            self._update_screening()
        hold.release(None, keep_holding=False)

    def _update_screening(self) -> None:
        """Incoming calls pass ``_screen`` while a message filter or a hold is on."""
        self._screening = self._message_filter is not None or self._call_hold is not None

    def _requeue_held(self, calls: list[CallRecord[Any]]) -> None:
        """Put released calls back into this apartment's queues, ahead, in order (any
        thread)."""
        raise NotImplementedError

    def _held_calls(self) -> list[CallRecord[Any]]:
        hold = self._call_hold
        return hold.waiting() if hold is not None else []

    def _fail_held_calls(self) -> None:
        hold = self._call_hold
        if hold is not None:
            hold.fail_all()

    # ------------------------------------------------------------------ diagnostics

    def _executing_calls(self, snapshot: list[CallRecord[Any]] | None = None,
                         ) -> list[CallRecord[Any]]:
        """This apartment's sync method calls executing on some thread now, from ``snapshot``
        (``executing_sync_calls()``, taken here if None)."""
        calls = executing_sync_calls() if snapshot is None else snapshot
        return [call for call in calls
                if call._apartment is self and call._state == RUNNING]  # not just finishing

    def _queued_calls(self) -> list[CallRecord[Any]]:
        """Calls sent here and not started yet (a snapshot, for diagnostics)."""
        return []

    @staticmethod
    def _calls_waiting_in(inbox: Inbox | None) -> list[CallRecord[Any]]:
        """The calls among an inbox's undelivered items (replies and releases left out)."""
        items = inbox.waiting() if inbox is not None else []
        return [item for item in items if isinstance(item, CallRecord)]

    # ------------------------------------------------------------------ shutdown

    async def _drain(self, timeout: float | None) -> None:
        """On this apartment's loop: give running coroutine calls ``timeout`` seconds, then
        cancel the rest; their callers get DisconnectedError. Calls still queued fail as they
        are delivered (``_closing`` is set), while replies keep flowing, so running calls can
        still finish their own outgoing calls."""
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        # Only tasks on this loop can be waited for here; calls of this apartment's objects
        # running on other loops (agile or inline calls) are failed at the deadline below.
        # Each ``_task`` read once: a call finishing on another loop drops its Task meanwhile.
        pending = {task for task in [call._task for call in list(self._running)]
                   if task is not None and task is not current and task.get_loop() is loop}
        if pending and (timeout is None or timeout > 0):
            await asyncio.wait(pending, timeout=timeout)
        overrunning = [call for call in list(self._running) if call._task is not current]
        for call in overrunning:
            call._disconnect(DisconnectedError(
                f"{call._method}() was still running when apartment {self._name!r} shut down "
                f"(drain timeout {timeout} s)"
            ))
        tasks = {task for task in [call._task for call in overrunning]
                 if task is not None and task.get_loop() is loop}
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE)
        self._run_stop_hooks()

    def _run_stop_hooks(self) -> None:
        hooks, self._stop_hooks = self._stop_hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception as error:  # one failing hook must not keep the others from running
                log_error({"message": f"aptio: error stopping {self._name!r}",
                           "exception": error})

    def _loop_exited(self) -> None:
        """This apartment's loop thread ended (normally, or because an error escaped it): fail
        every call still running here, so none waits forever."""
        self._closing = True
        for call in list(self._running):
            call._disconnect(self._disconnected_error(call._method))
        self._run_stop_hooks()


def as_apartment(site: ApartmentContract) -> Apartment:
    """``site`` as the public :class:`Apartment` it is (every contract implementation in this
    process is one: an invariant, not checked here, since ``isinstance`` against an abstract
    class costs a Python-level call on every creation)."""
    return cast(Apartment, site)


def current_apartment() -> Apartment | None:
    """The apartment the calling code runs in.

    Inside a call to a NEUTRAL object: the neutral apartment. On an apartment's thread: that
    apartment. On any other thread, once the MTA exists: the MTA (an implicit member, COM's
    IMPLICIT_MTA). Otherwise None.
    """
    site = current_site()
    return None if site is None else as_apartment(site)


def apartment_of(proxy: Proxy[Any]) -> Apartment:
    """The apartment the proxied object lives in."""
    return as_apartment(stub_of(proxy, "apartment_of").apartment)
