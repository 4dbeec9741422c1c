"""The entry points: ``aptio.run``, ``aptio.main_sta()``, ``start_sta``, ``mta`` and
``create``, and the one runtime of the process they share.

``aptio.run`` and ``aptio.main_sta()`` create the runtime and, on the way out, shut every
apartment down and clear it, so a process may run aptio again afterwards (tests do, once per
test).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, overload

from .._apartments.base import Apartment, current_apartment
from .._apartments.sta import STA
from .._call.context import thread_apartment
from .._proxy.declared import ProxiedAs
from .._proxy.proxy import Proxy
from .._remote.server import Server, ServerCredentials
from .._threads.loops import loop_factory, running_loop
from .._trace.records import ProcessPart
from .._values.errors import ChangedModeError, NotInitializedError
from . import debug_mode
from .recording import Recording, recording_from_environment
from .runtime import Runtime
from .servers import DEFAULT_START_TIMEOUT
from .session import joined_session

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "connect_server", "create", "current_runtime",
           "get_runtime", "main_sta", "mta", "recording", "run", "start_server", "start_sta"]

T = TypeVar("T")
P = ParamSpec("P")
PX = TypeVar("PX", bound=Proxy[Any])

#: How long running calls get to finish when ``aptio.run``/``main_sta`` shut everything down.
DEFAULT_SHUTDOWN_TIMEOUT: Final = 5.0

_NO_RUNTIME: Final = (
    "no aptio runtime is running; start one with aptio.run(main) or, inside a running event "
    "loop, `async with aptio.main_sta():`"
)

_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def current_runtime() -> Runtime | None:
    """The running runtime, or None."""
    return _runtime


def get_runtime() -> Runtime:
    runtime = _runtime
    if runtime is None:
        raise NotInitializedError(_NO_RUNTIME)
    return runtime


class main_sta:
    """Adopt the running event loop and its thread as the main STA for the ``async with``
    block; on exit every apartment is shut down (threads joined).

    With ``use_uvloop=None`` new STAs run the same kind of loop as the adopted one.

    For code that already runs a loop: pytest-asyncio tests, GUI loops, existing apps.

    ``trace="trace.json"`` (or an :class:`aptio.recording` not yet started) records every
    call of the block and writes the file on the way out (see :class:`aptio.recording`);
    without it, the environment variable ``APTIO_TRACE`` names the file, if set.
    """

    def __init__(self, *, mta_workers: int | None = None, use_uvloop: bool | None = None,
                 shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
                 debug: bool | None = None,
                 trace: str | os.PathLike[str] | Recording | None = None) -> None:
        self._mta_workers = mta_workers
        self._use_uvloop = use_uvloop
        self._shutdown_timeout = shutdown_timeout
        self._debug = debug
        self._trace = trace
        self._runtime: Runtime | None = None
        self._recording: Recording | None = None

    async def __aenter__(self) -> Apartment:
        global _runtime
        loop = asyncio.get_running_loop()
        here = thread_apartment()
        if here is not None:
            raise ChangedModeError(
                f"this thread already belongs to {here.name!r}; a thread's apartment never "
                "changes: use `await aptio.start_sta()` for another STA"
            )
        recording = _recording_for(self._trace)
        if recording is not None:
            recording._claim()  # before anything starts: a refused recording starts nothing
        try:
            runtime = self._start_runtime(loop)
        except BaseException:
            if recording is not None:
                recording._abandon()
            raise
        self._runtime = runtime
        assert runtime.main is not None
        if recording is not None:
            self._recording = recording
            recording._activate()
        return runtime.main

    def _start_runtime(self, loop: asyncio.AbstractEventLoop) -> Runtime:
        global _runtime
        with _runtime_lock:
            if _runtime is not None:
                main = _runtime.main
                where = main._os_thread.name if main is not None and main._os_thread else "?"
                raise ChangedModeError(
                    f"an aptio runtime is already running (main STA on thread {where!r}); "
                    "one process has one main STA: use `await aptio.start_sta()` here instead"
                )
            use_uvloop = self._use_uvloop
            if use_uvloop is None:
                # New STAs run the same kind of loop as the one adopted (uvloop or asyncio).
                use_uvloop = type(loop).__module__.startswith("uvloop")
            runtime = Runtime(use_uvloop=use_uvloop, mta_workers=self._mta_workers,
                              shutdown_timeout=self._shutdown_timeout, debug=self._debug)
            main = STA.adopt(runtime, loop)
            runtime.main = main
            _runtime = runtime
            if runtime.debug:
                debug_mode.enable()
        return runtime

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _runtime
        runtime = self._runtime
        assert runtime is not None
        recording = self._recording
        parts: list[ProcessPart] = []
        try:
            if recording is not None:
                try:
                    parts = await recording._collect()  # while the servers still run
                finally:
                    recording._activate()  # the shutdown is recorded too
        finally:
            try:
                await runtime.shutdown_all(runtime.shutdown_timeout)
            finally:
                if runtime.debug:
                    debug_mode.disable()
                with _runtime_lock:
                    if _runtime is runtime:
                        _runtime = None
                if recording is not None:
                    recording._end(parts)  # the file, complete, also after a failure


class recording(Recording):
    """Record every aptio call of a program, or of part of it, into a Chrome trace file that
    Perfetto (ui.perfetto.dev) and chrome://tracing open, and ``python -m aptio trace
    summarize|plot`` read.

    ``with aptio.recording("part.json"):`` or ``async with`` (in async code; it also waits
    for the servers' parts), on any thread. ``aptio.run(main, trace=...)`` and
    ``aptio.main_sta(trace=...)`` record a whole runtime, and ``APTIO_TRACE=path`` does it for
    a program nobody can edit. Recorded: each call's send, queueing, run (a sync method as a
    slice on its thread, a coroutine method as an async slice) and reply, joined by flow
    arrows, with the apartments and their threads named; waits that parked on aptio
    primitives; deadlocks broken, calls a message filter turned away, input-sync refusals.
    Server processes record too and their parts are merged into the same file.

    Memory is bounded: the newest ``limit`` records are kept (a ring buffer). The file is
    written once, whole, when the recording ends, also when the block raised. One recording
    runs in a process at a time: a second one raises :class:`aptio.RecordingError`, as does a
    path that cannot be written.
    """

    def _runtime(self) -> Runtime | None:
        return _runtime


def _recording_for(trace: str | os.PathLike[str] | Recording | None) -> Recording | None:
    """The recording a runtime starting now makes: the one asked for, else ``APTIO_TRACE``
    (not in a server process, which records when its client asks)."""
    if isinstance(trace, Recording):
        return trace
    if trace is not None:
        return recording(trace)
    if joined_session() is not None:
        return None
    from_environment = recording_from_environment()
    if from_environment is None:
        return None
    return recording(from_environment.path, limit=from_environment.limit)


def run(
    main: Coroutine[Any, Any, T] | Callable[[], Awaitable[T]],
    *,
    use_uvloop: bool | None = None,
    mta_workers: int | None = None,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    debug: bool | None = None,
    trace: str | os.PathLike[str] | Recording | None = None,
) -> T:
    """Run ``main`` with the calling thread as the main STA; return its result.

    ``main`` is a coroutine or a coroutine function. The loop is uvloop when installed (unless
    ``use_uvloop=False``). On the way out every apartment is shut down and every thread joined.
    ``debug=True`` (or ``APTIO_DEBUG=1``) makes raw coclass instances refuse method use from
    outside their home apartment (WrongApartmentError), to catch leaked objects.
    ``trace="trace.json"`` records every call into that file (see :class:`aptio.recording`).
    """
    if not (inspect.iscoroutine(main) or _is_coroutine_function(main)):
        raise TypeError(
            f"aptio.run() takes a coroutine or an async function (`async def main(): ...`), "
            f"not {_describe(main)}; nothing was run. Make it `async def`, or call a sync "
            "function from inside one"
        )
    if running_loop() is not None or thread_apartment() is not None:
        if inspect.iscoroutine(main):
            main.close()  # never awaited: close it so no "never awaited" warning follows
        raise ChangedModeError(
            "aptio.run() cannot be called from a running event loop or an apartment thread; "
            "use `async with aptio.main_sta():` inside an existing loop"
        )

    async def body() -> T:
        async with main_sta(use_uvloop=use_uvloop, mta_workers=mta_workers,
                            shutdown_timeout=shutdown_timeout, debug=debug, trace=trace):
            awaitable = main() if callable(main) else main
            return await awaitable

    with asyncio.Runner(loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(body())


def _is_coroutine_function(main: object) -> bool:
    """An ``async def`` function (also wrapped in functools.partial), or an object whose
    ``__call__`` is one."""
    call = type(main).__call__ if callable(main) and not inspect.isroutine(main) else None
    return inspect.iscoroutinefunction(main) or inspect.iscoroutinefunction(call)


def _describe(value: object) -> str:
    name = getattr(value, "__qualname__", None)
    kind = type(value).__qualname__
    return f"{kind} {name!r}" if name else f"a {kind}"


async def start_sta(name: str | None = None, *, use_uvloop: bool | None = None,
                    idle_spin: float = 0.0) -> Apartment:
    """Start a new STA (an event loop on its own thread); returns once its loop runs.

    ``idle_spin`` (seconds, at most 0.001; 0 for none): after serving a call that came alone,
    the STA's thread keeps polling for the next call that long before its loop sleeps, which
    saves the wake-up of a sleeping thread when calls come one after another, at the price of
    a busy CPU meanwhile (and the loop's other work waits as long). Off by default; it runs only in
    the compiled build (``aptio.idle_spin_available``), elsewhere it is accepted and does
    nothing. See the performance guide.
    """
    return await get_runtime().start_sta(name, use_uvloop, idle_spin)


def mta() -> Apartment:
    """The process's MTA, created on first use."""
    return get_runtime().mta()


# Type checkers read the constructor's parameters off the class (the ParamSpec), and see the
# class's declared proxy when it names one (aptio.ProxiedAs), else Proxy[T].
@overload
async def create(cls: Callable[P, ProxiedAs[PX]], *args: P.args, **kwargs: P.kwargs) -> PX: ...
@overload
async def create(cls: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Proxy[T]: ...


async def create(cls: Any, *args: Any, **kwargs: Any) -> Proxy[Any]:
    """Create ``cls(*args, **kwargs)`` where its threading model puts it (COM's
    CoCreateInstance) and return a proxy, also when it lands in the caller's own apartment."""
    runtime = get_runtime()
    creator = current_apartment()
    if creator is None:
        creator = runtime.mta()  # a thread in no apartment joins the MTA implicitly
    return await runtime.create_from(creator, cls, args, kwargs)


async def start_server(
    name: str | None = None,
    *,
    python: str | None = None,
    env: dict[str, str] | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    max_message_size: int | None = None,
    use_uvloop: bool | None = None,
) -> Server:
    """Start a server: a new process hosting an aptio runtime (COM's local server), and return
    it once it is ready. ``await server.create(Cls, ...)`` makes objects there; their proxies
    work as any other, their arguments and results cross by value (pickle) except coclass
    instances and proxies, which cross by reference. ``python`` and ``env`` choose the
    interpreter and environment; ``max_message_size`` limits one message (64 MiB by default).
    The runtime shuts the server down when it shuts down (``await server.shutdown()`` sooner).
    """
    return await get_runtime().servers().start(
        name, python=python, env=env, start_timeout=start_timeout,
        max_message_size=max_message_size, use_uvloop=use_uvloop)


async def connect_server(credentials: ServerCredentials) -> Server:
    """Reach a server another process of this session started, from its
    ``server.credentials()`` (handed over through a private channel)."""
    if not isinstance(credentials, ServerCredentials):
        raise TypeError(f"connect_server() takes aptio.ServerCredentials, not "
                        f"{type(credentials).__qualname__}")
    runtime = get_runtime()
    runtime.join(credentials.key, os.path.dirname(credentials.address))
    return await runtime.servers().connect(credentials)
