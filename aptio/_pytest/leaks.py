"""Nothing left behind: what an aptio test may leave (apartment threads, server processes,
unreleased objects, pending calls, unretrieved exceptions, a runtime still running), found by
comparing what exists at the end of the test with a snapshot taken at its start.

Every check reads what the runtime can enumerate: threads named ``aptio ...``, the server
processes not reaped yet, the live stubs (one per object that has proxies), the calls in
flight in each apartment, the unretrieved errors reported while the test ran (through
:data:`aptio._call.unretrieved.unretrieved_observers`, wherever the report then goes, and
asyncio's own "exception was never retrieved" log records).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

import attrs

from .._apartments.base import Apartment
from .._apartments.release import when_releases_done
from .._apartments.sta import STA
from .._call.contract import CallRecord
from .._call.unretrieved import armed_guards, unretrieved_observers
from .._proxy.stub import Stub, live_stubs
from .._remote.spawn import ServerProcess, live_server_processes
from .._runtime.entry import current_runtime
from .._values.enums import ApartmentKind
from .._values.errors import DisconnectedError
from ..testing import _in_flight, live_apartment_threads

__all__ = ["KINDS", "Findings", "Snapshot", "UnretrievedErrors", "pending_calls",
           "process_leaks", "settle", "stub_leaks"]

#: The leak kinds, as ``allow_leaks=`` names them, and how a report names each.
KINDS: Final = {
    "threads": "apartment threads still running",
    "processes": "server processes still running",
    "objects": "unreleased objects (proxies to them are still alive)",
    "calls": "pending calls (not finished when the test ended)",
    "errors": "unretrieved exceptions (calls or tasks that failed and nobody awaited)",
    "runtime": "an aptio runtime still running",
}

_ADVICE: Final = {
    "threads": "shut every apartment down before the test ends (leaving `async with "
               "aptio.main_sta()` or aptio.run() does it); a thread that outlives its "
               "apartment is stuck in a method that never returns",
    "processes": "shut the servers this test started down (await server.shutdown(), or let "
                 "the runtime end with the test)",
    "objects": "drop the proxies (and the GlobalInterfaceTable entries, marshal tokens) this "
               "test made before it ends: a global, a cache or a cycle still holds them",
    "calls": "await every call the test sends, or wait for them with "
             "aptio.testing.wait_idle(apartment) before the test ends",
    "errors": "await the call (or task) or read its exception(); to expect it, mark the test "
              "@pytest.mark.aptio(allow_leaks=['errors'])",
    "runtime": "end the aptio.run() or `async with aptio.main_sta()` this test began before "
               "it returns; later tests cannot start a runtime meanwhile",
}

#: How long a check lets apartment threads that are exiting finish (a thread stuck for good
#: costs this once), and lets queued releases of objects be dropped at home.
GRACE: Final = 2.0


@attrs.define
class Findings:
    """What a test left behind, by kind, as lines of the report."""

    items: dict[str, list[str]] = attrs.field(factory=dict)

    def add(self, kind: str, lines: list[str]) -> None:
        if lines:
            self.items.setdefault(kind, []).extend(lines)

    def add_all(self, other: Findings) -> None:
        for kind, lines in other.items.items():
            self.add(kind, lines)

    def without(self, allowed: frozenset[str]) -> Findings:
        return Findings({k: v for k, v in self.items.items() if k not in allowed})

    def __bool__(self) -> bool:
        return bool(self.items)

    def report(self, test: str) -> str:
        parts = [f"aptio: {test} left things behind"]
        for kind in KINDS:
            lines = self.items.get(kind)
            if not lines:
                continue
            parts.append(f"  {KINDS[kind]} [{kind}] ({len(lines)}):")
            parts.extend(f"    {line}" for line in lines)
            parts.append(f"    -> {_ADVICE[kind]}")
        return "\n".join(parts)


class Snapshot:
    """What exists when a test starts (weakly held: the snapshot keeps nothing alive)."""

    def __init__(self) -> None:
        self.time = time.monotonic()
        self.threads = set(live_apartment_threads())
        self.stubs: weakref.WeakSet[Stub] = weakref.WeakSet(live_stubs())
        self.processes: weakref.WeakSet[ServerProcess] = weakref.WeakSet(
            live_server_processes())
        runtime = current_runtime()
        self.apartments: weakref.WeakSet[Apartment] = weakref.WeakSet(
            runtime.apartments() if runtime is not None else ())


# ---------------------------------------------------------------------- the checks


def pending_calls(since: float) -> list[CallRecord[Any]]:
    """The calls in flight in the running runtime that were sent after ``since``."""
    runtime = current_runtime()
    if runtime is None:
        return []
    found: dict[int, CallRecord[Any]] = {}
    for apartment in runtime.apartments():
        for call in _in_flight(apartment):
            if call._created >= since:
                found.setdefault(id(call), call)
    return sorted(found.values(), key=lambda call: call._created)


def describe_pending(calls: list[CallRecord[Any]]) -> list[str]:
    now = time.monotonic()
    lines = []
    for call in calls:
        state = {0: "queued", 1: "running"}.get(call._state, "finishing")
        lines.append(f"{call.describe()}: {state}, sent {now - call._created:.2f} s ago")
    return lines


def stub_leaks(baseline: Snapshot) -> list[str]:
    """Objects with live proxies that did not have them when the test started."""
    leaked = [stub for stub in live_stubs()
              if stub not in baseline.stubs and stub.obj is not None]
    return sorted(f"{stub.cls.__qualname__} in {stub.apartment.name!r}" for stub in leaked)


def open_apartment_leaks(baseline: Snapshot) -> list[str]:
    """STAs opened since the snapshot that are still open (a runtime shared between tests
    keeps its MTA, host STA and main STA)."""
    runtime = current_runtime()
    if runtime is None:
        return []
    return [f"STA {apartment.name!r} (thread {apartment._os_thread.name!r}) was started by this "
            "test and is still open"
            for apartment in runtime.apartments()
            if isinstance(apartment, STA) and apartment.kind is ApartmentKind.STA
            and apartment._os_thread is not None and not apartment.is_closed
            and apartment not in baseline.apartments and apartment.name != "host STA"]


def thread_leaks(baseline: Snapshot) -> list[str]:
    """aptio threads started since the snapshot and still alive after a grace to exit."""
    deadline = time.monotonic() + GRACE
    left = []
    for thread in live_apartment_threads():
        if thread in baseline.threads or thread is threading.current_thread():
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left.append(f"thread {thread.name!r}")
    return left


def process_leaks(baseline: Snapshot, kill: bool) -> list[str]:
    """Server processes started since the snapshot that still run (killed if ``kill``)."""
    lines = []
    for process in live_server_processes():
        if process in baseline.processes:
            continue
        lines.append(f"server {process.name!r} (pid {process.pid})"
                     + (": killed after this report" if kill else ""))
        if kill:
            process.kill()
    return lines


def collect_garbage(baseline: Snapshot | None = None) -> None:
    """Free what is garbage, and again while that lets objects go whose last proxy it freed
    (dropping an object can free the proxies it held). With ``baseline``, only if something
    made since it could be garbage to free: a full collection costs tens of milliseconds on a
    test session's heap, and most tests leave nothing of aptio's behind."""
    if baseline is not None and not _anything_to_free(baseline):
        return
    stubs = len(live_stubs())
    for _ in range(5):
        gc.collect()
        left = len(live_stubs())
        if left == 0 or left >= stubs:
            return
        stubs = left



def _anything_to_free(baseline: Snapshot) -> bool:
    """Anything a collection could change the checks' answer for: a thread, an object with
    proxies or a server process made since ``baseline``, or a failed call not reported yet."""
    here = threading.current_thread()
    return (any(thread not in baseline.threads and thread is not here
                for thread in live_apartment_threads())
            or any(stub not in baseline.stubs for stub in live_stubs())
            or any(process not in baseline.processes for process in live_server_processes())
            or armed_guards())


async def settle(timeout: float = GRACE) -> None:
    """While a runtime runs: free garbage, and wait until every object whose last proxy went
    has been dropped at home (which can free more), until nothing more goes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        before = len(live_stubs())
        collect_garbage()
        done: asyncio.Future[None] = loop.create_future()
        when_releases_done(_waker(loop, done))
        try:
            async with asyncio.timeout_at(deadline):
                await done
        except TimeoutError:  # a release stuck behind a blocked apartment: report what is left
            return
        if len(live_stubs()) >= before:
            return


def _waker(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Callable[[], None]:
    def wake() -> None:
        try:
            loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # that loop is closed
            pass
    return wake


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class UnretrievedErrors:
    """Collects the errors nobody retrieved while a test runs: aptio's reports (observed at
    their source) and asyncio's "exception was never retrieved" records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[tuple[str, BaseException | None, str]] = []
        self._handler = _AsyncioRecords(self._asyncio_record)
        unretrieved_observers.append(self._observe)
        logging.getLogger("asyncio").addHandler(self._handler)

    def close(self) -> None:
        if self._observe in unretrieved_observers:
            unretrieved_observers.remove(self._observe)
        logging.getLogger("asyncio").removeHandler(self._handler)

    def _observe(self, describe: str, error: BaseException) -> None:
        with self._lock:
            self._seen.append((describe, error, f"aptio call {describe}"))

    def _asyncio_record(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        with self._lock:
            if error is not None and any(seen is error for _, seen, _ in self._seen):
                return  # aptio's own report, passed on to a loop's exception handler: seen
            self._seen.append(("", error, record.getMessage().splitlines()[0]))

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def take(self, pending: list[str]) -> list[str]:
        """The errors seen since ``clear()``, as report lines; a DisconnectedError of a call
        already reported as pending (failed by the shutdown) is left out."""
        with self._lock:
            seen, self._seen = self._seen, []
        lines = []
        for describe, error, what in seen:
            if (isinstance(error, DisconnectedError) and describe
                    and any(line.startswith(describe) for line in pending)):
                continue
            lines.append(f"{what}: {type(error).__qualname__}: {error}" if error is not None
                         else what)
        return lines


class _AsyncioRecords(logging.Handler):
    def __init__(self, sink: Any) -> None:
        super().__init__(logging.ERROR)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if "exception was never retrieved" in record.getMessage():
            self._sink(record)
