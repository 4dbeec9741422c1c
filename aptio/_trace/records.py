"""What a recording keeps while it runs, and the plain rows it hands on when it stops.

While recording, each call has a :class:`CallTrace`, each parked wait a :class:`WaitTrace`, each
notable moment (a deadlock broken, a call turned away) an :class:`InstantTrace`, all kept in the
recorder's ring buffer in the order they began. Times are ``time.perf_counter_ns()`` readings
(one clock for every process of a machine: see :mod:`aptio._trace.recorder`), threads are
native thread ids (what the operating system and the trace viewers call a tid).

A :class:`CallTrace` follows its call through three roles it takes on when the call is sent:

* the call's ``_fn``: the method is called through it, so its start is noted on the thread that
  runs it, whichever path admitted the call (inbox, pool queue, gate, inline);
* the call's first waiter: ``_finish`` notifies it first, so the end is noted before anyone else
  hears of the outcome (and so before any reply can be noted);
* an inbox item: it posts itself to the caller's loop, where its delivery notes the reply's
  arrival. A caller with no loop (a thread blocked in ``result()``) gets the reply as the call
  ends, and that moment is noted as its reply.

Fields are written by the threads named above, each once (a rejected call's start may be
written again when it is sent again); a snapshot reads each field once, so a call still in
flight when the recording stops shows as unfinished, never half-read.

When the recording stops the records become rows (:class:`CallRow`, :class:`WaitRow`,
:class:`InstantRow`, in a :class:`ProcessPart`): plain tuples, picklable, so a server process
hands its part to the client the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple, Protocol

from .._call.contract import DONE, CallRecord
from .._proxy.proxy import Proxy
from .._threads.inbox import Inbox


class Recorder(Protocol):
    """What a record tells its recorder (:class:`aptio._trace.recorder.Recorder`)."""

    def saw_thread(self, tid: int) -> None: ...

    def instant(self, name: str, tid: int, ns: int, call: int, message: str) -> None: ...

    def noted_error(self, trace: CallTrace, error: BaseException, tid: int, ns: int) -> None:
        ...

__all__ = ["CallRow", "CallTrace", "InstantRow", "InstantTrace", "ProcessPart", "ThreadRow",
           "WaitRow", "WaitTrace", "trace_of"]

now_ns: Final = time.perf_counter_ns


class _ThreadId(threading.local):
    tid = 0


_thread_id: Final = _ThreadId()


def native_id() -> int:
    """The calling thread's native id (``threading.get_native_id()`` is a system call on
    Linux: each thread asks once)."""
    tid: int = _thread_id.tid
    if not tid:
        tid = _thread_id.tid = threading.get_native_id()
    return tid


def trace_of(call: CallRecord[Any] | None) -> CallTrace | None:
    """The record of ``call`` if it is being recorded (its first waiter), else None."""
    if call is None:
        return None
    waiters = call._waiters
    if waiters:
        first = waiters[0]
        if type(first) is CallTrace:
            return first
    return None


class CallTrace:
    """One call as it is recorded (see the module docstring for its three roles)."""

    __slots__ = ("arrived", "call", "causality", "cls", "end_ns", "end_tid", "fn", "inbox",
                 "is_async", "method", "outcome", "parent", "recorder", "rejections",
                 "reply_ns", "reply_tid", "send_ns", "send_tid", "serial", "source", "start_ns",
                 "start_tid", "target", "wire")

    def __init__(self, recorder: Recorder, call: CallRecord[Any], serial: int,
                 parent: CallTrace | None, inbox: Inbox | None, source: str) -> None:
        self.recorder = recorder
        self.call: CallRecord[Any] | None = call  # dropped once the call ended
        self.fn: Callable[..., Any] | None = call._fn
        self.serial = serial
        self.parent = parent.serial if parent is not None else 0
        self.inbox = inbox  # the caller's loop, where the reply's arrival is noted
        self.method = call._method
        self.cls = call.target_class_name()
        self.causality = call._causality
        self.source = source  # the sending apartment's name
        self.target = call._apartment.name
        self.is_async = call._is_async
        self.send_ns = now_ns()
        self.send_tid = native_id()
        self.start_ns = 0
        self.start_tid = 0
        self.end_ns = 0
        self.end_tid = 0
        self.reply_ns = 0
        self.reply_tid = 0
        self.outcome = ""
        self.rejections = 0
        #: (node id, call id) of the request that carried the call between processes: as
        #: sent (``arrived`` False) or as received (``arrived`` True).
        self.wire: tuple[str, int] | None = None
        self.arrived = False

    # -- the call's ``_fn``: its start -------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tid = native_id()
        self.start_ns = now_ns()
        self.start_tid = tid
        self.recorder.saw_thread(tid)
        fn = self.fn
        assert fn is not None  # the call runs only once it has its function
        return fn(*args, **kwargs)

    # -- the first waiter: its end -----------------------------------------------------------

    def notify(self) -> None:
        call = self.call
        if call is None or call._state != DONE:
            return  # ended already (wake-ups may be doubled), or a cancel woke the waiters
        tid = native_id()
        now = now_ns()
        recorder = self.recorder
        recorder.saw_thread(tid)
        if call._rejected is not None:  # the caller's message filter decides what follows
            self.rejections += 1
            recorder.instant("call rejected", tid, now, self.serial,
                             f"{call.describe()} was answered {call._rejected.name} by the "
                             "message filter")
            return
        self.end_ns = now
        self.end_tid = tid
        self.is_async = call._is_async
        error = call._error
        if call._cancelled:
            self.outcome = "cancelled"
        elif error is not None:
            self.outcome = f"raised {type(error).__name__}"
            if not self.start_ns:  # failed before it ran: by aptio (not propagated)
                recorder.noted_error(self, error, tid, now)
        else:
            self.outcome = "returned"
            if self.cls is None:  # a creation: its result names the class
                self.cls = _created_class(call._value)
        self.call = self.fn = None  # keep no call, result or object alive
        if self.arrived:
            return  # the reply is the other process's to note
        if tid == self.send_tid or self.inbox is None:
            # Inline, or a caller with no loop: the reply reaches it as the call ends.
            self.reply_ns = now
            self.reply_tid = self.send_tid
        else:
            self.inbox.post(self)

    def notify_now(self) -> None:
        self.notify()

    # -- an inbox item on the caller's loop: the reply's arrival -----------------------------

    def _deliver(self) -> bool:
        tid = native_id()
        self.reply_ns = now_ns()
        self.reply_tid = tid
        return False

    def _starts_as_task(self) -> bool:
        return False

    def _fail_undelivered(self) -> None:
        """The caller's loop is gone: no reply arrives anywhere."""

    def row(self) -> CallRow:
        return CallRow(self.serial, self.parent, self.method, self.cls, self.causality,
                       self.source, self.target, self.is_async, self.send_ns, self.send_tid,
                       self.start_ns, self.start_tid, self.end_ns, self.end_tid, self.reply_ns,
                       self.reply_tid, self.outcome, self.rejections, self.wire, self.arrived)


def _created_class(value: object) -> str | None:
    if not isinstance(value, Proxy):
        return None
    cls = getattr(value._aptio_stub, "cls", None)
    return cls.__qualname__ if isinstance(cls, type) else None


class WaitTrace:
    """One coroutine or thread parked on an aptio primitive."""

    __slots__ = ("blocking", "call", "end_ns", "primitive", "start_ns", "tid")

    def __init__(self, primitive: str, blocking: bool, call: CallTrace | None) -> None:
        self.primitive = primitive
        self.blocking = blocking
        self.call = call  # the recorded call whose code waits, if any
        self.tid = native_id()
        self.start_ns = now_ns()
        self.end_ns = 0

    def ended(self) -> None:
        self.end_ns = now_ns()

    def row(self) -> WaitRow:
        return WaitRow(self.primitive, self.blocking,
                       self.call.serial if self.call is not None else 0, self.tid,
                       self.start_ns, self.end_ns)


class InstantTrace(NamedTuple):
    """A moment worth marking: a deadlock broken, a call turned away or refused."""

    name: str
    tid: int
    ns: int
    call: int  # the recorded call it concerns (its serial), or 0
    message: str

    def row(self) -> InstantRow:
        return InstantRow(*self)


class CallRow(NamedTuple):
    serial: int
    parent: int  # the serial of the recorded call this one was sent from, or 0
    method: str
    cls: str | None
    causality: int
    source: str
    target: str
    is_async: bool
    send_ns: int
    send_tid: int
    start_ns: int  # 0: never started
    start_tid: int
    end_ns: int  # 0: not finished when the recording stopped
    end_tid: int
    reply_ns: int  # 0: no reply noted (yet)
    reply_tid: int
    outcome: str
    rejections: int
    wire: tuple[str, int] | None
    arrived: bool


class WaitRow(NamedTuple):
    primitive: str
    blocking: bool
    call: int
    tid: int
    start_ns: int
    end_ns: int  # 0: still parked when the recording stopped


class InstantRow(NamedTuple):
    name: str
    tid: int
    ns: int
    call: int
    message: str


class ThreadRow(NamedTuple):
    tid: int
    lane: str  # the lane's name: the apartment, and which of its threads
    apartment: str  # the apartment's name ("" for a thread in none)
    kind: str  # an ApartmentKind value, or "" for a thread in no apartment
    order: int  # where the lane goes among the process's lanes


class ProcessPart(NamedTuple):
    """One process's recording, as rows (see the module docstring)."""

    pid: int
    name: str  # "client", or the server's name
    label: str  # the process lane's name
    node: str  # the node id other processes know it by ("" if it has none)
    started_ns: int
    stopped_ns: int
    limit: int
    dropped: int  # records the ring buffer let go
    threads: tuple[ThreadRow, ...]
    calls: tuple[CallRow, ...]
    waits: tuple[WaitRow, ...]
    instants: tuple[InstantRow, ...]
    notes: tuple[str, ...]
    #: This process's clock minus the client's (0 where they share one), in ns.
    clock_offset_ns: int
    children: tuple[ProcessPart, ...]  # the servers it collected from
