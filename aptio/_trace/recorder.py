"""The recorder: while a recording runs, it hears of every call through the call path's hook
(:mod:`aptio._call.tracing`) and of every parked wait through the primitives' hook
(:mod:`aptio._sync.park_hook`), and keeps what it hears in a ring buffer.

Memory is bounded: the ring buffer keeps the newest ``limit`` records (calls, waits and
instants, each one record) and lets the oldest go; a snapshot says how many went. A ring was
chosen over streaming to the file from a writer thread because recording then costs the call
path one small object and an append per call, and no thread of its own; the file is written
once, when the recording stops.

Clock: every time is a ``time.perf_counter_ns()`` reading. On Linux that is CLOCK_MONOTONIC, on
macOS ``mach_absolute_time`` and on Windows ``QueryPerformanceCounter``: system-wide clocks,
so the recordings of server processes on the same machine line up with the client's as they
are. Where a clock might not be shared, the client measures the offset as it collects a
server's part (:mod:`aptio._runtime.recording`) and applies it when it is larger than the
round trip's uncertainty.

One recording runs in a process at a time: :meth:`Recorder.install` refuses a second.
"""

from __future__ import annotations

import collections
import itertools
import os
import sys
import threading
from typing import Any, Final

from .._call.context import process_state, running_call, set_tracer, thread_state
from .._call.contract import CallRecord
from .._sync.park_hook import park_hook
from .._threads.inbox import Inbox, loop_inbox
from .._threads.loops import running_loop
from .._values.enums import ApartmentKind
from .._values.errors import DeadlockError, InputSyncError, RecordingError
from .records import (
    CallTrace,
    InstantTrace,
    ProcessPart,
    ThreadRow,
    WaitTrace,
    native_id,
    now_ns,
    trace_of,
)

__all__ = ["DEFAULT_LIMIT", "Recorder", "installed_recorder"]

#: The ring buffer's default size in records (about 250 bytes each while recording).
DEFAULT_LIMIT: Final = 200_000

_slot_lock = threading.Lock()
_installed: Recorder | None = None

#: Where a thread's lane goes among its process's lanes.
_LANE_ORDER: Final = {ApartmentKind.MAIN_STA: 0, ApartmentKind.STA: 1, ApartmentKind.MTA: 2,
                      ApartmentKind.NEUTRAL: 3}


def installed_recorder() -> Recorder | None:
    """The recording running in this process, if any."""
    return _installed


class Recorder:
    """One process's recording (see the module docstring)."""

    def __init__(self, limit: int, name: str, label: str, node: str = "",
                 owner: str = "") -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"a recording's limit is a number of records (at least 1), "
                             f"not {limit!r}")
        self.limit = limit
        self.name = name
        self.label = label
        self.node = node
        #: Who records (for the message refusing a second recording).
        self.owner = owner
        self._ring: collections.deque[CallTrace | WaitTrace | InstantTrace] = \
            collections.deque(maxlen=limit)
        self._appended = itertools.count()
        self._serials = itertools.count(1).__next__
        self._threads: dict[int, ThreadRow] = {}
        self._notes: list[str] = []
        self.started_ns = 0
        self.stopped_ns = 0

    # -- installing -------------------------------------------------------------------------

    def install(self) -> None:
        """Start recording in this process; RecordingError if a recording runs already."""
        self.claim()
        self.activate()

    def claim(self) -> None:
        """Take the process's one recording slot (RecordingError if taken), not recording
        yet: :meth:`activate` starts."""
        global _installed
        with _slot_lock:
            running = _installed
            if running is not None:
                raise RecordingError(
                    f"a call recording is already running in this process ({running.owner}); "
                    "one process records one at a time: stop that one first, or keep the "
                    "part you need inside it")
            _installed = self

    def activate(self) -> None:
        """Start (or resume) hearing of calls and waits (after :meth:`claim`)."""
        with _slot_lock:
            if _installed is not self:
                return
            self.started_ns = self.started_ns or now_ns()
            self.stopped_ns = 0
            set_tracer(self)
            park_hook.on_park = self.parked

    def pause(self) -> None:
        """Stop hearing of calls and waits, keeping the slot (while collecting the servers'
        parts, so that those calls are not recorded)."""
        with _slot_lock:
            if _installed is self and not self.stopped_ns:
                park_hook.on_park = None
                set_tracer(None)
                self.stopped_ns = now_ns()

    def uninstall(self) -> None:
        """Stop recording and free the slot (idempotent). Calls in flight may still complete
        their records."""
        global _installed
        self.pause()
        with _slot_lock:
            if _installed is self:
                _installed = None

    def note(self, text: str) -> None:
        """Something the reader of the recording should know (kept in the file)."""
        self._notes.append(text)

    # -- the call path's hook (CallTracer) --------------------------------------------------

    def sent(self, call: CallRecord[Any]) -> None:
        self._start(call, self._inbox_here())

    def arrived(self, call: CallRecord[Any], node: str, wire_id: int) -> None:
        trace = self._start(call, None)
        trace.wire = (node, wire_id)
        trace.arrived = True

    def left(self, call: CallRecord[Any], node: str, wire_id: int) -> None:
        trace = trace_of(call)
        if trace is not None:
            trace.wire = (node, wire_id)

    def _start(self, call: CallRecord[Any], inbox: Inbox | None) -> CallTrace:
        source = self._site_name()
        trace = CallTrace(self, call, self._serials(), trace_of(call._parent), inbox, source)
        self.saw_thread(trace.send_tid)
        if call._fn is not None:
            call._fn = trace
        waiters = call._waiters
        if waiters is None:
            call._waiters = [trace]  # a new call: nobody else has it yet
        else:
            waiters.insert(0, trace)
        self._append(trace)
        return trace

    @staticmethod
    def _inbox_here() -> Inbox | None:
        loop = running_loop()
        return loop_inbox(loop) if loop is not None else None

    @staticmethod
    def _site_name() -> str:
        here = thread_state().apartment
        if here is None:
            here = process_state.implicit_mta
        return here.name if here is not None else "no apartment"

    # -- the primitives' hook ---------------------------------------------------------------

    def parked(self, primitive: object | None, blocking: bool) -> Any:
        name = type(primitive).__name__ if primitive is not None else "aptio primitive"
        wait = WaitTrace(name, blocking, trace_of(running_call()))
        self.saw_thread(wait.tid)
        self._append(wait)
        return wait.ended

    # -- instants ---------------------------------------------------------------------------

    def instant(self, name: str, tid: int, ns: int, call: int, message: str) -> None:
        self.saw_thread(tid)
        self._append(InstantTrace(name, tid, ns, call, message))

    def noted_error(self, trace: CallTrace, error: BaseException, tid: int, ns: int) -> None:
        """A call ended with ``error``: mark the failures worth seeing at a glance."""
        if isinstance(error, DeadlockError):
            self.instant("deadlock broken", tid, ns, trace.serial, str(error))
        elif isinstance(error, InputSyncError):
            self.instant("input-sync refusal", tid, ns, trace.serial, str(error))

    def _append(self, record: CallTrace | WaitTrace | InstantTrace) -> None:
        next(self._appended)
        self._ring.append(record)

    # -- threads ----------------------------------------------------------------------------

    def saw_thread(self, tid: int) -> None:
        """Name the calling thread's lane the first time it shows up (call on that thread,
        ``tid`` being its native id; other threads' ids are already known)."""
        if tid not in self._threads and tid == native_id():
            self._threads[tid] = _describe_thread(tid, len(self._threads))

    # -- the result -------------------------------------------------------------------------

    def snapshot(self, exclude: CallRecord[Any] | None = None,
                 children: tuple[ProcessPart, ...] = (), clock_offset_ns: int = 0,
                 ) -> ProcessPart:
        """This process's part, as rows (``exclude``: a call not to show, such as the one
        collecting the recording)."""
        skip = trace_of(exclude)
        records = list(self._ring)
        appended = next(self._appended)
        calls = tuple(r.row() for r in records if type(r) is CallTrace and r is not skip)
        waits = tuple(r.row() for r in records if type(r) is WaitTrace)
        instants = tuple(r.row() for r in records if type(r) is InstantTrace)
        stopped = self.stopped_ns or now_ns()
        return ProcessPart(os.getpid(), self.name, self.label, self.node, self.started_ns,
                           stopped, self.limit, max(0, appended - len(records)),
                           tuple(self._threads.values()), calls, waits, instants,
                           tuple(self._notes), clock_offset_ns, children)


def _describe_thread(tid: int, seen: int) -> ThreadRow:
    """The lane of the calling thread: its apartment, and which of the apartment's threads."""
    thread = threading.current_thread()
    apartment = thread_state().apartment
    if apartment is None:
        mta = process_state.implicit_mta
        lane = f"thread {thread.name!r}" + (" (implicit MTA)" if mta is not None else "")
        return ThreadRow(tid, lane, "", "", 4 * 10_000 + seen)
    kind = apartment.kind
    name = apartment.name
    if kind is ApartmentKind.MTA:
        lane = thread.name.removeprefix("aptio ")
    elif kind is ApartmentKind.MAIN_STA:
        lane = name
    else:
        lane = f"STA {name!r}"
    return ThreadRow(tid, lane, name, kind.value, _LANE_ORDER[kind] * 10_000 + seen)


def process_label(name: str) -> str:
    """How the trace names this process's lane group."""
    pid = os.getpid()
    if name == "client":
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        return f"{program or 'python'} (pid {pid})"
    return f"server {name!r} (pid {pid})"
