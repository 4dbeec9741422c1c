"""The plugin's fixtures: the runtime of an async aptio test (one fixture per loop scope, so it
lives on the loop pytest-asyncio runs the test on), the guard that checks each test's end, and
the fixtures tests ask for (``aptio_main``, ``aptio_sta``, ``aptio_mta``, ``aptio_server``,
``aptio_run``, ``aptio_loop``).

Order (set up by the plugin, which puts the runtime and the guard first in each aptio test's
fixtures): the runtime before every fixture of its scope or narrower, so fixtures of the test
may use aptio; the guard first of the function-scoped ones, so its teardown runs after theirs
and before a function-scoped runtime shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, ClassVar, Final, TypeVar

import pytest

from .._apartments.base import Apartment
from .._remote.server import Server
from .._runtime.entry import current_runtime, main_sta, mta, run, start_server, start_sta
from .._threads.loops import uvloop_available
from .leaks import (
    Findings,
    Snapshot,
    collect_garbage,
    describe_pending,
    open_apartment_leaks,
    pending_calls,
    process_leaks,
    settle,
    stub_leaks,
    thread_leaks,
)
from .options import SCOPES, TestKind, options_of
from .state import STATE, ItemState, RuntimeHandle, session

__all__ = ["GUARD", "after_runtime", "aptio_loop", "aptio_main", "aptio_mta", "aptio_run",
           "aptio_server", "aptio_sta", "guard", "leftover_runtime", "object_leaks",
           "runtime_fixture_name", "runtime_fixtures"]

T = TypeVar("T")

GUARD: Final = "_aptio_guard"

pytest_asyncio: Any
try:
    import pytest_asyncio
    import pytest_asyncio.plugin
except ImportError:  # pragma: no cover - aptio runs without it; async aptio tests need it
    pytest_asyncio = None

#: pytest-asyncio 1.4+ parametrizes its loops through this fixture: the runtime depends on it,
#: so a change of loop (a new parameter) makes a new runtime too.
HAS_LOOP_FACTORY: Final = pytest_asyncio is not None and hasattr(pytest_asyncio.plugin,
                                                                 "_asyncio_loop_factory")


def runtime_fixture_name(scope: str) -> str:
    return f"_aptio_runtime_{scope}"


def state_of(item: pytest.Item) -> ItemState:
    state = item.stash.get(STATE, None)
    if state is None:
        pytest.fail(f"{item.nodeid}: aptio's fixtures need an aptio test: mark it "
                    "@pytest.mark.aptio", pytrace=False)
    return state


def after_runtime(baseline: Snapshot) -> Findings:
    """What is left once a runtime the plugin made has shut down (objects are checked once
    pytest has let go of the test's fixture values, see :func:`object_leaks`)."""
    findings = Findings()
    collect_garbage(baseline)
    findings.add("threads", thread_leaks(baseline))
    findings.add("processes", process_leaks(baseline, kill=True))
    return findings


def object_leaks(item: pytest.Item, state: ItemState) -> list[str]:
    """The objects the test made whose proxies are still alive, once its fixtures are torn
    down: pytest still holds their values (``item.funcargs``) until after the teardown
    report, so they are let go here first (pytest drops them right after anyway)."""
    item.funcargs = {}  # type: ignore[attr-defined]
    baseline = state.baseline
    assert baseline is not None
    current = session()
    handle = state.handle
    if handle is not None and current is not None and handle in current.handles:
        handle.run(settle())  # the runtime goes on: releases travel home first
    else:
        collect_garbage(baseline)
    return stub_leaks(baseline)


@contextlib.asynccontextmanager
async def _runtime(request: pytest.FixtureRequest, scope: str) -> AsyncIterator[RuntimeHandle]:
    current = session()
    assert current is not None
    item = current.item
    node = request.node
    options = options_of(node if scope != "function" or item is None else item)
    use_uvloop = None
    if item is not None and "aptio_loop" in getattr(item, "callspec", _NO_PARAMS).params:
        use_uvloop = item.callspec.params["aptio_loop"] == "uvloop"  # type: ignore[attr-defined]
    if current_runtime() is not None:
        other = next((f"the runtime of a {handle.scope}-scoped loop" for handle in current.handles),
                     "a runtime a test began itself")
        pytest.fail(f"aptio: {other} is still running, and a process runs one runtime at a "
                    f"time, so this test's {scope}-scoped one cannot start: give the aptio tests "
                    "that overlap one loop_scope (pytest-asyncio), or end the other runtime first",
                    pytrace=False)
    baseline = Snapshot()
    async with main_sta(mta_workers=options.mta_workers, use_uvloop=use_uvloop,
                        shutdown_timeout=options.shutdown_timeout,
                        debug=options.debug) as main:
        handle = RuntimeHandle(scope, asyncio.get_running_loop(), main, baseline)
        current.handles.add(handle)
        try:
            yield handle
        finally:
            current.handles.discard(handle)
    target = current.item  # the test whose teardown ends this runtime
    if target is not None and STATE in target.stash:
        target.stash[STATE].findings.add_all(after_runtime(baseline))


class _NoParams:
    params: ClassVar[dict[str, object]] = {}


_NO_PARAMS: Final = _NoParams()


def _make_runtime_fixture(scope: str) -> Callable[..., Any]:
    name = runtime_fixture_name(scope)
    if HAS_LOOP_FACTORY:
        async def runtime_with_factory(request: pytest.FixtureRequest,
                                       _asyncio_loop_factory: object,
                                       ) -> AsyncIterator[RuntimeHandle]:
            async with _runtime(request, scope) as handle:
                yield handle
        fixture_function: Callable[..., Any] = runtime_with_factory
    else:
        async def runtime_plain(request: pytest.FixtureRequest) -> AsyncIterator[RuntimeHandle]:
            async with _runtime(request, scope) as handle:
                yield handle
        fixture_function = runtime_plain
    fixture_function.__doc__ = f"The runtime of aptio tests run on a {scope}-scoped loop."
    decorated: Callable[..., Any] = pytest_asyncio.fixture(
        fixture_function, scope=scope, loop_scope=scope, name=name)
    return decorated


def runtime_fixtures() -> dict[str, Callable[..., Any]]:
    """One runtime fixture per loop scope (none without pytest-asyncio)."""
    if pytest_asyncio is None:
        return {}
    return {runtime_fixture_name(scope): _make_runtime_fixture(scope) for scope in SCOPES}


@pytest.fixture(name=GUARD)
def guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Checks the end of an aptio test that runs in a runtime (see the module docstring)."""
    item = request.node
    state = state_of(item)
    handle: RuntimeHandle = request.getfixturevalue(runtime_fixture_name(state.loop_scope))
    state.handle = handle
    shared = handle.scope != "function"
    if shared or state.baseline is None:
        state.baseline = Snapshot()
    baseline = state.baseline
    yield
    lines = describe_pending(pending_calls(baseline.time))
    state.pending.extend(lines)
    state.findings.add("calls", lines)
    if shared:  # the runtime goes on: what this test made must be gone already
        state.findings.add("threads", open_apartment_leaks(baseline))
        state.findings.add("processes", process_leaks(baseline, kill=False))


def _handle(request: pytest.FixtureRequest, fixture: str) -> RuntimeHandle:
    state = state_of(request.node)
    if state.kind is not TestKind.RUNTIME:
        why = ("runtime=False" if state.options.runtime is False
               else "it is not an async test (a sync test runs a coroutine with aptio_run)")
        pytest.fail(f"{request.node.nodeid}: {fixture} needs an async aptio test, whose event "
                    f"loop is the main STA; here {why}", pytrace=False)
    request.getfixturevalue(GUARD)
    assert state.handle is not None
    return state.handle


@pytest.fixture
def aptio_main(request: pytest.FixtureRequest) -> Apartment:
    """The main STA: the test's own event loop and thread, adopted for the test (for the loop's
    scope, with pytest-asyncio's ``loop_scope``); every apartment is shut down at its end."""
    return _handle(request, "aptio_main").main


@pytest.fixture
def aptio_sta(request: pytest.FixtureRequest) -> Iterator[Apartment]:
    """A new STA for the test, shut down after it."""
    handle = _handle(request, "aptio_sta")
    sta = handle.run(start_sta(f"{request.node.name} STA"))
    yield sta
    # Calls into it still in flight are the test's: its shutdown would cut them off unseen.
    state = state_of(request.node)
    assert state.baseline is not None
    lines = describe_pending([call for call in pending_calls(state.baseline.time)
                              if call._apartment is sta])
    state.pending.extend(lines)
    state.findings.add("calls", lines)
    handle.run(sta.shutdown(state.options.shutdown_timeout))


@pytest.fixture
def aptio_mta(request: pytest.FixtureRequest) -> Apartment:
    """The process's MTA (made on first use; it lives as long as the runtime)."""
    _handle(request, "aptio_mta")
    return mta()


@pytest.fixture
def aptio_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server process for the test (``aptio.start_server``), shut down after it."""
    handle = _handle(request, "aptio_server")
    server = handle.run(start_server(f"{request.node.name} server"))
    yield server
    handle.run(server.shutdown(state_of(request.node).options.shutdown_timeout))


@pytest.fixture
def aptio_loop(request: pytest.FixtureRequest) -> str:
    """The kind of event loop the test's apartments run: "asyncio" or "uvloop" (a parameter
    when the test runs on several, see ``loops=``)."""
    param = getattr(request, "param", None)
    if param is not None:
        return str(param)
    state = request.node.stash.get(STATE, None)
    if state is not None and state.kind is TestKind.RUNTIME:
        loop = _handle(request, "aptio_loop").loop
        return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    return "uvloop" if uvloop_available() else "asyncio"


@pytest.fixture
def aptio_run(request: pytest.FixtureRequest, aptio_loop: str) -> Callable[..., Any]:
    """For sync tests: ``aptio_run(main)`` runs ``main`` (a coroutine function or coroutine) in
    a new runtime, as ``aptio.run`` does, on the test's loop kind and with the marker's
    options; keyword arguments override them."""
    state = state_of(request.node)
    options = state.options

    def run_in_aptio(main: Callable[[], Awaitable[T]] | Coroutine[Any, Any, T],
                     **overrides: Any) -> T:
        settings: dict[str, Any] = {
            "use_uvloop": aptio_loop == "uvloop", "mta_workers": options.mta_workers,
            "shutdown_timeout": options.shutdown_timeout, "debug": options.debug}
        settings.update(overrides)
        return run(main, **settings)

    return run_in_aptio


def leftover_runtime() -> list[str]:
    """A runtime still running that the plugin did not make (a test's own)."""
    runtime = current_runtime()
    current = session(make=False)
    if runtime is None or (current is not None and any(
            handle.main is runtime.main for handle in current.handles)):
        return []
    main = runtime.main
    thread = main._os_thread.name if main is not None and main._os_thread is not None else "?"
    return [f"main STA on thread {thread!r}"]
