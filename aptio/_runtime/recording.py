"""Recording a program's calls into a Chrome trace file: the ``aptio.recording`` context
manager, the ``trace=`` of ``aptio.run`` and ``aptio.main_sta``, and ``APTIO_TRACE``.

A recording runs from its start to its end in this process (:mod:`aptio._trace.recorder`) and
in the server processes it can reach: servers running when it starts are told to record
(``trace_start`` on their control object), servers started during it record from their start,
and at the end each hands its part back (``trace_collect``), servers of servers included. The
file is written once, at the end, whole (a temporary file renamed over the path), also when
the program failed or was cancelled: run and main_sta write it on their way out.

Collecting needs a round trip to each server. ``async with`` awaits it; a plain ``with`` blocks
for it where the thread may block (a plain thread, an MTA thread) and, on an STA's thread,
which must not block, leaves the servers out and says so in the file (use ``async with``
there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from types import TracebackType
from typing import Any, Final

from .._call.context import thread_state
from .._proxy.proxy import Proxy
from .._remote.peer import Peer
from .._threads.loops import running_loop
from .._trace.chrome import chrome_trace, write_trace
from .._trace.recorder import DEFAULT_LIMIT, Recorder, installed_recorder, process_label
from .._trace.records import ProcessPart, now_ns
from .._values.errors import RecordingError
from .runtime import Runtime

__all__ = ["DEFAULT_LIMIT", "Recording", "begin_server_recording", "collect_server_recording",
           "recording_from_environment"]

#: How long the end of a recording waits for each server's part.
COLLECT_TIMEOUT: Final = 30.0

_VERSION: Final = "0.1.0"


class Recording:
    """A recording of every call, into one Chrome trace file (see the module docstring).

    The public class is :class:`aptio.recording`, which knows the process's runtime."""

    def __init__(self, path: str | os.PathLike[str], *, limit: int = DEFAULT_LIMIT) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"a recording's path is a file path, not {type(path).__qualname__}")
        self._path = os.fspath(path)
        self._limit = limit
        self._recorder: Recorder | None = None
        self._notes: list[str] = []
        self._ended = False

    @property
    def path(self) -> str:
        """Where the trace is written when the recording ends."""
        return self._path

    @property
    def limit(self) -> int:
        """The most records kept (the ring buffer's size; the oldest go first)."""
        return self._limit

    def __repr__(self) -> str:
        state = "ended" if self._ended else "recording" if self._recorder else "not started"
        return f"<aptio.recording {self._path!r} {state}>"

    def _runtime(self) -> Runtime | None:
        """The runtime whose servers record too (None: this process only)."""
        return None

    # -- the context manager ------------------------------------------------------------

    def __enter__(self) -> Recording:
        self._claim()
        for peer in self._peers():
            self._tell_to_start(peer)
        self._activate()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        parts: list[ProcessPart] = []
        try:
            parts = self._collect_blocking()
        finally:
            self._end(parts)

    async def __aenter__(self) -> Recording:
        self._claim()
        try:
            await self._start_servers()
        finally:
            self._activate()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        parts: list[ProcessPart] = []
        try:
            parts = await self._collect()
        finally:
            self._end(parts)

    # -- start and end ------------------------------------------------------------------

    def _claim(self) -> None:
        """Check the path and claim the process's recording slot."""
        if self._recorder is not None or self._ended:
            raise RecordingError(f"{self!r} was started already; make a new aptio.recording "
                                 "for each recording")
        _check_writable(self._path)
        recorder = Recorder(self._limit, "client", process_label("client"),
                            owner=f"recording to {self._path!r}")
        recorder.claim()
        self._recorder = recorder

    def _activate(self) -> None:
        if self._recorder is not None:
            self._recorder.activate()

    def _begin(self) -> None:
        """Start recording here (no servers asked: for run and main_sta, which start before
        any server exists)."""
        self._claim()
        self._activate()

    def _abandon(self) -> None:
        """Give the slot back without writing anything (what was to be recorded never
        started)."""
        self._ended = True
        if self._recorder is not None:
            self._recorder.uninstall()

    def _end(self, parts: list[ProcessPart]) -> None:
        """Stop recording and write the file (once)."""
        recorder = self._recorder
        if recorder is None or self._ended:
            return
        self._ended = True
        recorder.uninstall()
        for note in self._notes:
            recorder.note(note)
        root = recorder.snapshot(children=tuple(parts))
        try:
            write_trace(chrome_trace(root, _VERSION), self._path)
        except OSError as error:
            raise RecordingError(
                f"the call recording could not be written to {self._path!r}: {error}; choose "
                "a path in a directory you can write to (with room to spare)") from error

    # -- servers ------------------------------------------------------------------------

    def _peers(self) -> list[Peer]:
        runtime = self._runtime()
        node = runtime.existing_node() if runtime is not None else None
        return node.control_peers() if node is not None else []

    def _control(self, peer: Peer) -> Proxy[Any]:
        runtime = self._runtime()
        assert runtime is not None
        assert peer.control_ref is not None
        proxy: Proxy[Any] = runtime.node().arrived(peer.control_ref)
        return proxy

    def _tell_to_start(self, peer: Peer) -> None:
        """Ask a server to record from now on, without waiting for its answer (a plain
        ``with`` may be on a thread that must not block)."""
        _retrieve_later(self._control(peer).trace_start(self._limit))

    async def _start_servers(self) -> None:
        async def start(peer: Peer) -> None:
            try:
                await self._control(peer).trace_start(self._limit)
            except Exception as error:  # the server goes unrecorded; the file says why
                self._notes.append(f"{peer.name} was not recorded: {error}")

        await asyncio.gather(*(start(peer) for peer in self._peers()))

    async def _collect(self) -> list[ProcessPart]:
        """Every reachable server's part, its clock aligned with this process's."""
        async def collect(peer: Peer) -> ProcessPart | None:
            before = now_ns()
            try:
                answer = await asyncio.wait_for(self._control(peer).trace_collect(),
                                                COLLECT_TIMEOUT)
            except Exception as error:
                self._notes.append(f"{peer.name} could not be collected: {error}")
                return None
            return _aligned(answer, before, now_ns(), peer, self._notes)

        self._pause()
        found = await asyncio.gather(*(collect(peer) for peer in self._peers()))
        return [part for part in found if part is not None]

    def _collect_blocking(self) -> list[ProcessPart]:
        peers = self._peers()
        if not peers:
            return []
        if running_loop() is not None and thread_state().apartment is not None:
            self._notes.append(
                "the servers' parts were not collected: the recording ended with a plain "
                "`with` on an apartment's event-loop thread, which must not block; use "
                "`async with aptio.recording(...)` there")
            return []
        self._pause()
        parts: list[ProcessPart] = []
        for peer in peers:
            before = now_ns()
            try:
                answer = self._control(peer).trace_collect().result(COLLECT_TIMEOUT)
            except Exception as error:
                self._notes.append(f"{peer.name} could not be collected: {error}")
                continue
            part = _aligned(answer, before, now_ns(), peer, self._notes)
            if part is not None:
                parts.append(part)
        return parts

    def _pause(self) -> None:
        """Stop recording here before collecting (the collecting calls are not recorded)."""
        if self._recorder is not None:
            self._recorder.pause()


def _retrieve_later(call: Any) -> None:
    """Retrieve the outcome of a call sent without waiting, whenever it comes (a failure is
    reported nowhere else: the server then goes unrecorded, and its part says so)."""
    waiter = _WhenDone(call)
    call._add_waiter(waiter)
    if call.done():
        waiter.notify()


class _WhenDone:
    """A waiter that retrieves its call's outcome once the call is done (any thread)."""

    __slots__ = ("call",)

    def __init__(self, call: Any) -> None:
        self.call = call

    def notify(self) -> None:
        call = self.call
        if call is not None and call.done():
            self.call = None
            with contextlib.suppress(Exception, asyncio.CancelledError):
                call.exception()

    def notify_now(self) -> None:
        self.notify()


def _aligned(answer: Any, before: int, after: int, peer: Peer,
             notes: list[str]) -> ProcessPart | None:
    """A server's part with its clock offset: zero where the clocks agree within the round
    trip (the same machine's clock), else the measured difference."""
    if answer is None:
        notes.append(f"{peer.name} was not recording")
        return None
    part, server_now = answer
    assert isinstance(part, ProcessPart)
    offset = server_now - (before + after) // 2
    if abs(offset) <= (after - before) // 2 + 1_000:
        offset = 0
    else:
        notes.append(f"{part.label}: clock offset {offset / 1000:.1f} us applied (measured over "
                     f"a round trip of {(after - before) / 1000:.1f} us)")
    return part._replace(clock_offset_ns=offset)


def _check_writable(path: str) -> None:
    """RecordingError now, rather than a lost recording at the end."""
    directory = os.path.dirname(os.path.abspath(path))
    problem = None
    if os.path.isdir(path):
        problem = "it is a directory"
    elif not os.path.isdir(directory):
        problem = f"the directory {directory!r} does not exist"
    elif not os.access(directory, os.W_OK | os.X_OK) or (
            os.path.exists(path) and not os.access(path, os.W_OK)):
        problem = "it is not writable"
    if problem is not None:
        raise RecordingError(f"cannot record calls to {path!r}: {problem}; give a file path "
                             "in a directory you can write to")


# -- the server's side --------------------------------------------------------------------


def begin_server_recording(limit: int, name: str, node: str) -> None:
    """In a server: record until the client collects (RecordingError if the server's own
    code is recording)."""
    recorder = Recorder(limit, name, process_label(name), node,
                        owner="its client's recording")
    recorder.install()


async def collect_server_recording(runtime: Runtime, current: Any) -> tuple[ProcessPart,
                                                                             int] | None:
    """In a server: stop recording, collect this server's own servers, and hand over the
    part with the time now (the client aligns the clocks with it); None if not recording."""
    recorder = installed_recorder()
    if recorder is None or recorder.name == "client":
        return None
    recorder.pause()
    try:
        collector = _ServerCollector(runtime)
        children = await collector._collect()
        for note in collector._notes:
            recorder.note(note)
        part = recorder.snapshot(exclude=current, children=tuple(children))
    finally:
        recorder.uninstall()
    return part, now_ns()


class _ServerCollector(Recording):
    """Collects a server's own servers (its recorder is already stopped)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(os.devnull)
        self._owner = runtime

    def _runtime(self) -> Runtime | None:
        return self._owner


def recording_from_environment() -> Recording | None:
    """``APTIO_TRACE=path`` (and ``APTIO_TRACE_LIMIT``): a recording for a runtime that starts
    in a program nobody can edit."""
    path = os.environ.get("APTIO_TRACE")
    if not path:
        return None
    limit_text = os.environ.get("APTIO_TRACE_LIMIT")
    try:
        limit = int(limit_text) if limit_text else DEFAULT_LIMIT
    except ValueError:
        raise RecordingError(f"APTIO_TRACE_LIMIT={limit_text!r} is not a number of records; "
                             "set it to a whole number such as 200000") from None
    return Recording(path, limit=limit)
