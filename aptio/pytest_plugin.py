"""aptio's pytest plugin (the ``pytest11`` entry point ``aptio``): runs tests in aptio and
fails those that leave something behind. A session that uses neither its marker nor its
fixtures runs exactly as without it.

* ``@pytest.mark.aptio`` (on a test, a class, or a module's ``pytestmark``), or any of the
  fixtures ``aptio_main``, ``aptio_sta``, ``aptio_mta``, ``aptio_server``, ``aptio_run``,
  ``aptio_loop``, makes a test an aptio test. An async one runs under pytest-asyncio (the
  plugin adds its ``asyncio`` marker in strict mode) with its event loop adopted as the main
  STA, for the loop's scope (pytest-asyncio's ``loop_scope``). A sync one runs as it is.
* ``loops=("asyncio", "uvloop")`` (or the ``aptio_loops`` ini option, ``--aptio-loops``) runs
  a test once per loop kind; the uvloop run is skipped where uvloop is missing.
* After each aptio test: apartment threads, server processes, unreleased objects, pending calls
  and unretrieved exceptions it left fail it (``allow_leaks=[...]`` lets some kinds pass). A
  test that times out under pytest-timeout prints ``aptio.format_calls()``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
from collections.abc import Generator
from typing import Any

import pytest

from ._pytest.fixtures import (
    GUARD,
    HAS_LOOP_FACTORY,
    aptio_loop,
    aptio_main,
    aptio_mta,
    aptio_run,
    aptio_server,
    aptio_sta,
    guard,
    leftover_runtime,
    object_leaks,
    runtime_fixture_name,
    runtime_fixtures,
)
from ._pytest.leaks import (
    Findings,
    Snapshot,
    collect_garbage,
    describe_pending,
    pending_calls,
    process_leaks,
    stub_leaks,
    thread_leaks,
)
from ._pytest.options import (
    FIXTURES,
    LOOPS,
    MARKER,
    MARKER_HELP,
    SCOPES,
    TestKind,
    kind_of,
    loop_scope_of,
    options_of,
)
from ._pytest.state import STATE, ItemState, end_session, session
from ._pytest.timeout import TimeoutDump

__all__ = ["aptio_loop", "aptio_main", "aptio_mta", "aptio_run", "aptio_server", "aptio_sta",
           "guard"]

globals().update(runtime_fixtures())  # _aptio_runtime_<scope>: one per loop scope


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("aptio_check_all", type="bool", default=False,
                  help="aptio: check every test (not only aptio tests) for what it leaves "
                       "behind")
    parser.addini("aptio_loops", type="args", default=[],
                  help="aptio: loop kinds every aptio test runs on (asyncio uvloop)")
    group = parser.getgroup("aptio")
    group.addoption("--aptio-loops", default=None, metavar="KINDS",
                    help="loop kinds every aptio test runs on, comma-separated "
                         "(asyncio,uvloop); overrides the aptio_loops ini option")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    if config.pluginmanager.hasplugin("timeout"):
        config.pluginmanager.register(TimeoutDump(), "aptio-timeout-dump")


def pytest_unconfigure(config: pytest.Config) -> None:
    end_session()


# ---------------------------------------------------------------------- collection


def _asks_for_aptio(collector: pytest.Collector, obj: Any) -> bool:
    own = [mark.name for mark in getattr(obj, "pytestmark", [])]
    if MARKER in own or collector.get_closest_marker(MARKER) is not None:
        return True
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return bool(set(parameters) & FIXTURES)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str,
                              obj: object) -> Generator[None, Any, Any]:
    """An async aptio test runs under pytest-asyncio: give it the ``asyncio`` marker if it has
    none (before the item is made, so pytest-asyncio sees it)."""
    if (inspect.iscoroutinefunction(obj) and collector.istestfunction(obj, name)
            and _asks_for_aptio(collector, obj)
            and not any(mark.name == "asyncio" for mark in getattr(obj, "pytestmark", []))
            and collector.get_closest_marker("asyncio") is None
            and collector.config.pluginmanager.hasplugin("asyncio")):
        pytest.mark.asyncio(obj)
    return (yield)


def _configured_loops(config: pytest.Config) -> tuple[str, ...] | None:
    option = config.getoption("aptio_loops")
    names = option.split(",") if option else config.getini("aptio_loops")
    names = [name.strip() for name in names if name.strip()]
    wrong = [name for name in names if name not in LOOPS]
    if wrong:
        raise pytest.UsageError(f"aptio loops: unknown {', '.join(wrong)}; the kinds are "
                                f"{', '.join(LOOPS)}")
    return tuple(names) or None


def _loop_param(name: str) -> Any:
    if name == "uvloop" and importlib.util.find_spec("uvloop") is None:
        return pytest.param(None, id=name, marks=pytest.mark.skip(
            reason="uvloop is not installed (pip install uvloop): its run is skipped"))
    if name == "uvloop":
        import uvloop
        return pytest.param(uvloop.new_event_loop, id=name)
    return pytest.param(asyncio.new_event_loop, id=name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = metafunc.definition
    if (definition.get_closest_marker(MARKER) is None
            and not set(metafunc.fixturenames) & FIXTURES):
        return
    options = options_of(definition)  # fails the collection on a wrong option
    loops = options.loops or _configured_loops(metafunc.config)
    if not loops:
        return
    runs_in_runtime = inspect.iscoroutinefunction(metafunc.function) and options.runtime
    factory_hook = metafunc.config.pluginmanager.hook.pytest_asyncio_loop_factories
    if runs_in_runtime and factory_hook.get_hookimpls():
        pytest.fail(f"{definition.nodeid}: this project's pytest_asyncio_loop_factories hook "
                    "chooses the loops of async tests; drop loops= (and aptio_loops), and "
                    "select among its loops with @pytest.mark.asyncio(loop_factories=[...])",
                    pytrace=False)
    if runs_in_runtime and HAS_LOOP_FACTORY:  # the main STA's loop itself is of each kind
        if "_asyncio_loop_factory" not in metafunc.fixturenames:
            metafunc.fixturenames.append("_asyncio_loop_factory")
        metafunc.parametrize("_asyncio_loop_factory", [_loop_param(name) for name in loops],
                             indirect=True, scope=loop_scope_of(definition))  # type: ignore[arg-type]
        return
    if "aptio_loop" not in metafunc.fixturenames:
        metafunc.fixturenames.append("aptio_loop")
    metafunc.parametrize(
        "aptio_loop", [pytest.param(name, id=name, marks=_loop_param(name).marks)
                       for name in loops], indirect=True)


def _rank(item: pytest.Item, name: str) -> int:
    definitions = item._fixtureinfo.name2fixturedefs.get(name)  # type: ignore[attr-defined]
    scope = definitions[-1].scope if definitions else "function"
    return SCOPES.index(scope) if scope in SCOPES else len(SCOPES) - 1


def _put_first(item: pytest.Item, runtime: str, scope: str) -> None:
    """The runtime before every fixture of its scope or narrower, the guard first of the
    function-scoped ones (see :mod:`aptio._pytest.fixtures`)."""
    names: list[str] = item.fixturenames  # type: ignore[attr-defined]
    if GUARD in names:
        return  # items made from one function share the list
    function = SCOPES.index("function")
    wanted = SCOPES.index(scope)
    at = next((i for i, name in enumerate(names) if _rank(item, name) >= wanted), len(names))
    names.insert(at, runtime)
    at = next((i for i, name in enumerate(names)
               if name != runtime and _rank(item, name) >= function), len(names))
    names.insert(max(at, names.index(runtime) + 1), GUARD)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    for item in items:
        try:
            kind = kind_of(item)
        except pytest.fail.Exception:  # a wrong option: reported by the collection already
            continue
        if kind is TestKind.NONE:
            continue
        state = ItemState(kind, options_of(item), loop_scope_of(item))
        item.stash[STATE] = state
        if kind is TestKind.RUNTIME:
            _put_first(item, runtime_fixture_name(state.loop_scope), state.loop_scope)


# ---------------------------------------------------------------------- running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None,
                            ) -> Generator[None, Any, Any]:
    if STATE not in item.stash:
        return (yield)
    current = session()
    assert current is not None
    current.item = item
    try:
        return (yield)
    finally:
        current.item = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    state = item.stash.get(STATE, None)
    if state is not None:
        current = session()
        assert current is not None
        current.errors.clear()
        state.baseline = Snapshot()
        if state.kind is TestKind.RUNTIME and not item.config.pluginmanager.hasplugin("asyncio"):
            pytest.fail(f"{item.nodeid}: an async aptio test runs under pytest-asyncio, which "
                        "is not loaded: pip install pytest-asyncio (or mark the test "
                        "@pytest.mark.aptio(runtime=False) and run a loop yourself)",
                        pytrace=False)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = item.stash.get(STATE, None)
    if state is not None and report.when == "call" and report.failed:
        state.failed = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None,
                            ) -> Generator[None, Any, Any]:
    state = item.stash.get(STATE, None)
    if state is None:
        return (yield)
    try:
        result = yield
    except BaseException:
        _report(item, state, failed=True)
        raise
    _report(item, state, failed=state.failed)
    return result


def _plain_checks(baseline: Snapshot) -> Findings:
    """The end of an aptio test that ran as it is (its own runtime, if any, must be over)."""
    findings = Findings()
    leftover = leftover_runtime()
    findings.add("runtime", leftover)
    if leftover:
        findings.add("calls", describe_pending(pending_calls(baseline.time)))
    collect_garbage(baseline)
    findings.add("threads", thread_leaks(baseline))
    findings.add("processes", process_leaks(baseline, kill=not leftover))
    return findings


def _report(item: pytest.Item, state: ItemState, failed: bool) -> None:
    current = session()
    assert current is not None
    assert state.baseline is not None
    if state.kind is TestKind.PLAIN:  # one collection serves every check
        item.funcargs = {}  # type: ignore[attr-defined]  # see object_leaks
        state.findings.add_all(_plain_checks(state.baseline))
        state.findings.add("objects", stub_leaks(state.baseline))
    else:
        state.findings.add("objects", object_leaks(item, state))  # frees garbage: errors report
    state.findings.add("errors", current.errors.take(state.pending))
    findings = state.findings.without(state.options.allow_leaks)
    state.findings = Findings()
    if not findings:
        return
    text = findings.report(item.nodeid)
    if failed:  # the test failed already: the leaks are a section of its report
        item.add_report_section("teardown", "aptio leaks", text)
        return
    pytest.fail(text, pytrace=False)
