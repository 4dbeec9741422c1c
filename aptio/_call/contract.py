"""The contract between a call and the apartments it runs in and returns to.

Two halves, kept in one module because each names the other:

* :class:`ApartmentContract`: everything a call (and a proxy sending one) needs from an
  apartment: route a call here or queue it, admit a call a gate released, screen it through a
  message filter, track the coroutine calls running here, the closing state, marshal a result,
  run a coroutine to completion where there is no loop, and, as the caller's apartment, block
  and decide on retrying a rejected call. The apartments (STA, MTA, neutral; later ones living
  in other processes) implement it; the call uses nothing else of them.
* :class:`CallRecord`: what an apartment may use of a call: its identity, its state, the entry
  points the transport and the apartments call (``_deliver``, ``_fail_undelivered``, ...).
  The target side (:mod:`aptio._call.target`) implements those entry points, and the caller
  side (:mod:`aptio._call.call`) completes the class users hold, :class:`aptio.Call`.

Plus :class:`GateContract`, a reentrancy gate as the call sees one (the admission layer's hook;
its other one is :data:`aptio._call.wait_watch.wait_watch`).

State written by different threads:
  * the target side moves ``_state`` PENDING -> RUNNING -> DONE and writes the outcome
    (``_value``/``_error``) strictly before ``_state = DONE``;
  * the caller side sets ``_cancelled``. A caller that sees ``_cancelled`` raises CancelledError
    whatever the target did: the result is discarded, as COM's ICancelMethodCalls prescribes.
Final-result invariant: a call in DONE that was never cancelled or rejected and has no
``_error`` holds its final result in ``_value`` (a rejection can send a DONE call back to
PENDING; nothing else ever leaves DONE), so the fast paths of ``await`` and ``result()`` return
it at once.
Waiter invariant: a waiter appends itself to ``_waiters`` and then re-reads the state; the target
writes DONE and then reads ``_waiters``. One of the two always sees the other, so a wake-up is
never lost (it may be doubled, and every waiter tolerates that). The list is made by the first
waiter (most pipelined calls finish before anyone waits), under ``_waiters_lock`` so that two
first waiters on different threads share one list; once made it is never swapped.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, TypeVar

from .._compiled import WeaklyReferenced
from .._threads.inbox import Inbox
from .._values.enums import ApartmentKind, CallType, Reentrancy, ServerCall
from .._values.errors import DisconnectedError, WrongApartmentError
from .roles import Notifiable, Releasable
from .unretrieved import ErrorGuard, log_error

__all__ = ["DONE", "PENDING", "RUNNING", "ApartmentContract", "CallRecord", "GateContract",
           "Notifiable", "Releasable", "final_outcome"]

T = TypeVar("T")

PENDING: Final = 0
RUNNING: Final = 1
DONE: Final = 2

# An enum member as a module constant: on 3.11 reading ``CallType.TOPLEVEL`` costs ~100 ns,
# and this is read on every call.
_TOPLEVEL: Final = CallType.TOPLEVEL

#: Makes a call's waiter list (once per call that is waited on at all). Its methods are bound
#: once: compiled, a ``with`` block on it looks up ``__enter__`` and ``__exit__`` by name.
_waiters_lock: Final = threading.Lock()
_lock_waiters: Final = _waiters_lock.acquire
_unlock_waiters: Final = _waiters_lock.release


# Not an abc.ABC: mypyc builds compiled subclasses of an ABC without ABCMeta's set-up, so they
# would share one isinstance cache and answer each other's checks. The abstract methods are
# still abstract to the type checkers.
class ApartmentContract(WeaklyReferenced):
    """What a call and a proxy need from an apartment (see the module docstring).

    The plain slots are read on every call (no Python frame): ``_closing`` (new calls fail),
    ``_outgoing`` (an STA's record of the chains its code waits on, which decides an incoming
    call's CALLTYPE), ``_screening`` (a message filter is installed: calls pass ``_screen``),
    ``_running`` (coroutine calls running here, failed at shutdown) and ``_post_inbox`` (set
    when posting a call is exactly "post to this inbox", so senders skip the ``_post`` frame).
    """

    __slots__ = ("__weakref__", "_closing", "_inline_only", "_kind", "_name", "_outgoing",
                 "_post_inbox", "_running", "_screening", "_thread_bound")

    #: True for an apartment of another process: nothing of it runs here.
    _remote: ClassVar[bool] = False

    def __init__(self, kind: ApartmentKind, name: str) -> None:
        self._kind = kind
        self._name = name
        # Facts of the class, read by every send: slots, which compiled code reads directly.
        #: True for the neutral apartment: calls always run on the caller's own thread.
        self._inline_only = False
        #: True for STAs: the calling code is in this apartment exactly when the calling
        #: thread's ``ThreadState.apartment`` is this one, so senders skip ``_is_current``.
        self._thread_bound = False
        self._closing = False
        self._running: set[CallRecord[Any]] = set()
        self._outgoing: dict[int, int] | None = {} if kind.is_sta else None
        self._screening = False
        self._post_inbox: Inbox | None = None

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

    # -- routing: the sender's side --------------------------------------------------------

    @abc.abstractmethod
    def _is_current(self) -> bool:
        """True if the calling code runs in this apartment (so it may touch its objects)."""

    @abc.abstractmethod
    def _run_here(self, call: CallRecord[Any]) -> None:
        """Start ``call`` inline on the calling thread, which belongs to this apartment."""

    @abc.abstractmethod
    def _post(self, call: CallRecord[Any]) -> None:
        """Queue ``call`` for one of this apartment's threads (from any thread)."""

    def _admit(self, call: CallRecord[Any]) -> None:
        """Start a call that waited at a reentrancy gate (from whichever thread freed it)."""
        self._post(call)

    # -- the target's side -----------------------------------------------------------------

    def _begin_input_sync(self, call: CallRecord[Any]) -> None:
        """The calling code, running here, sends an input-synchronized call: hold incoming
        calls until it returns (STAs only, see :mod:`aptio._call.input_sync`)."""
        raise WrongApartmentError(
            f"{self._name!r} is {self._kind.name}: input-synchronized calls are made only "
            "from STAs (the MTA and plain threads handle no user input)"
        )

    def _cancel_elsewhere(self, call: CallRecord[Any]) -> None:
        """The caller cancelled ``call``, which was sent here and has no Task in this process:
        an apartment whose calls run in another process tells it (by default nothing to do:
        the call checks ``_cancelled`` before it starts)."""

    def _screen(self, call: CallRecord[Any]) -> bool:
        """Ask the message filter (only while ``_screening``): True lets the call run; False
        means it was rejected or failed here (it is finished or handed to its caller)."""
        return True

    @abc.abstractmethod
    def _marshal_result(self, value: Any) -> Any:
        """A call's result as it leaves this apartment (coclass instances become proxies)."""

    @abc.abstractmethod
    def _run_blocking(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine call to completion on this thread, which runs no loop (MTA rules:
        "asynchronous calls are converted to synchronous")."""

    def _disconnected_error(self, method: str) -> DisconnectedError:
        return DisconnectedError(
            f"{method}(): apartment {self._name!r} is shut down; create the object again in a "
            "running apartment"
        )

    # -- the caller's side -----------------------------------------------------------------

    def _blocking(self, blocked: bool) -> None:
        """One of this apartment's threads starts or stops blocking in ``call.result()``."""

    def _report_error(self, context: dict[str, Any]) -> None:
        """Report an error nobody else will see (an exception no caller retrieved), as an
        event loop's exception handler would; by default to the ``aptio`` logger."""
        log_error(context)

    def _retry_delay(self, call: CallRecord[Any], elapsed: float,
                     verdict: ServerCall) -> float | None:
        """As the caller: seconds to wait before re-sending a call another apartment turned
        away, or None to give up (no message filter here: give up at once). May raise
        AptioError (a filter answered nonsense): the call then fails with it."""
        return None

    # -- lifetime --------------------------------------------------------------------------

    @abc.abstractmethod
    def _release(self, holder: Releasable) -> None:
        """The last proxy to an object of this apartment is gone: drop the object here, or on
        this apartment's own thread."""


# Not an abc.ABC: mypyc builds compiled subclasses of an ABC without ABCMeta's set-up, so they
# would share one isinstance cache (see ApartmentContract). The abstract methods are
# still abstract to the type checkers.
class GateContract:
    """A reentrancy gate as the call sees one (implemented in :mod:`aptio._admission.gate`)."""

    __slots__ = ()

    @abc.abstractmethod
    def enter(self, call: CallRecord[Any], policy: Reentrancy | None) -> bool:
        """Target side, before the call runs. True: run it now. False: it was queued (it is
        admitted when the gate frees) or failed with DeadlockError."""

    @abc.abstractmethod
    def exit(self, call: CallRecord[Any]) -> CallRecord[Any] | None:
        """After ``call`` finished (any thread): the next call to admit, if the gate frees."""

    @abc.abstractmethod
    def withdraw(self, call: CallRecord[Any]) -> bool:
        """Take a queued call out (it was cancelled); False if it was not queued."""


class CallRecord(WeaklyReferenced, Generic[T]):
    """A call's identity and state (see the module docstring); its entry points are
    implemented by the target side."""

    __slots__ = (
        "__weakref__",
        "_admitted",
        "_apartment",
        "_args",
        "_awaiting",
        "_call_type",
        "_caller",
        "_cancel_message",
        "_cancelled",
        "_causality",
        "_created",
        "_disconnect_reason",
        "_error",
        "_error_guard",
        "_error_tb",
        "_ever_rejected",
        "_fn",
        "_gate",
        "_is_async",
        "_kwargs",
        "_marked",
        "_method",
        "_owner",
        "_parent",
        "_policy",
        "_rejected",
        "_sender_calls",
        "_state",
        "_target",
        "_task",
        "_value",
        "_waiters",
        "_wire_key",
    )

    def __init__(self, apartment: ApartmentContract, target: object, method: str,
                 fn: Callable[..., Any], is_async: bool, args: tuple[Any, ...],
                 kwargs: dict[str, Any], caller: ApartmentContract | None,
                 parent: CallRecord[Any] | None, causality: int, created: float, marked: bool,
                 gate: GateContract | None, policy: Reentrancy | None) -> None:
        # The request: what runs where.
        self._apartment = apartment
        self._target = target
        self._owner: type | None = None  # the target's class, kept once the target is dropped
        self._method = method
        self._fn: Callable[..., Any] | None = fn
        self._is_async = is_async
        self._args: tuple[Any, ...] | None = args
        self._kwargs: dict[str, Any] | None = kwargs
        self._gate = gate
        self._policy = policy
        # The sender: where it came from, and the chain it belongs to (COM_SPEC D4: a nested
        # call inherits its parent's causality; the sender decides, so no other thread writes
        # it).
        self._caller = caller
        self._parent = parent  # the call the caller's code runs in (``running_call()``)
        self._causality = causality
        self._created = created  # ``time.monotonic()``, read by the sender
        self._marked = marked  # a yield point when awaited done (see ``Call.__await__``)
        # The target's decisions.
        self._call_type = _TOPLEVEL  # decided by the target when the call starts
        self._admitted = False  # passed the message filter and the gate
        self._rejected: ServerCall | None = None  # a filter's verdict awaiting the caller's
        self._ever_rejected = False
        self._task: asyncio.Task[None] | None = None  # a coroutine call's Task, once made
        # The outcome (see the module invariants).
        self._state = PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._error_tb: TracebackType | None = None
        self._error_guard: ErrorGuard | None = None  # only a failed call has one
        self._cancelled = False
        self._cancel_message: Any | None = None
        self._disconnect_reason: DisconnectedError | None = None
        # Waiting: who waits on this call, and what this call's code waits on.
        self._waiters: list[Notifiable] | None = None
        self._awaiting: list[CallRecord[Any]] | None = None
        # Only while ``send`` runs it inline on its thread: that thread's sync calls.
        self._sender_calls: list[CallRecord[Any] | None] | None = None
        # This process's key for the call once code in it called another process (0 until
        # then): a call coming back names it so (see ``aptio._remote.exports.LiveCalls``).
        self._wire_key = 0

    # -- identity --------------------------------------------------------------------------

    @property
    def causality_id(self) -> int:
        """The logical thread this call belongs to (COM: causality ID)."""
        return self._causality

    def target_class_name(self) -> str | None:
        """The qualified name of the target's class (None for a call of no object). A
        reference to an object in another process names the class itself."""
        target = self._target
        if target is None:
            return self._owner.__qualname__ if self._owner is not None else None
        named: str | None = getattr(target, "aptio_class_name", None)
        return named if named is not None else type(target).__qualname__

    def describe(self) -> str:
        """``Class.method() in 'apartment' (chain N)``, for error messages and dumps."""
        cls = self.target_class_name()
        owner = cls + "." if cls is not None else ""
        return (f"{owner}{self._method}() in {self._apartment.name!r} "
                f"(chain {self._causality})")

    def _descends_from(self, ancestor: CallRecord[Any]) -> bool:
        """True if ``ancestor`` is this call's parent, grandparent, ... (it waits on us)."""
        parent = self._parent
        while parent is not None:
            if parent is ancestor:
                return True
            parent = parent._parent
        return False

    # -- outcome and waiters ---------------------------------------------------------------

    def _disarm_error_guard(self) -> None:
        guard = self._error_guard
        if guard is not None:
            guard.disarm()

    def _add_waiter(self, waiter: Notifiable) -> None:
        waiters = self._waiters
        if waiters is None:
            _lock_waiters()
            try:
                waiters = self._waiters
                if waiters is None:
                    waiters = self._waiters = []
            finally:
                _unlock_waiters()
        waiters.append(waiter)

    def _wake_waiters(self) -> None:
        waiters = self._waiters
        if waiters:
            for waiter in waiters:
                waiter.notify()

    # -- entry points (implemented by the target side, :mod:`aptio._call.target`) ----------

    def _deliver(self) -> bool:
        """Run the call on this thread, which belongs to its apartment (the inbox's entry
        point). True (3.11) when it made a Task that has not taken its first step."""
        raise NotImplementedError

    def _deliver_inline(self) -> bool:
        """``_deliver`` for a call run on its caller's own thread."""
        raise NotImplementedError

    def _starts_as_task(self) -> bool:
        """An async method's call only makes a Task as it starts (see the inbox)."""
        return self._is_async

    def _fail_undelivered(self) -> None:
        """The call's queue closed before it started: fail it with DisconnectedError."""
        raise NotImplementedError

    def _finish(self, value: Any, error: BaseException | None, now: bool = False) -> None:
        """Record the outcome (once) and wake every waiter. Target side, any thread."""
        raise NotImplementedError

    def _disconnect(self, reason: DisconnectedError) -> None:
        """Fail a started call at shutdown: its caller gets ``reason``, its task is cancelled."""
        raise NotImplementedError


def final_outcome(call: CallRecord[T] | None) -> T:
    """``call``'s result, or raise its error (or CancelledError), which counts as retrieving
    it. Not a method, and its callers drop their reference too: a raise's traceback holds the
    frames it passes, so one holding the call would make a cycle (call, error, traceback) that
    keeps the callers' frames (their proxies) until a garbage collection."""
    assert call is not None
    if call._cancelled:
        raise asyncio.CancelledError(f"{call._method}() was cancelled")
    error: BaseException | None = call._error
    if error is None:
        value: T = call._value
        return value
    call._disarm_error_guard()
    tb: TracebackType | None = call._error_tb
    call = None
    try:
        # Re-raised from the saved traceback each time, so awaiting twice does not grow it.
        raise error.with_traceback(tb)
    finally:
        error = tb = None
