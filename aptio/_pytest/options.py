"""The ``aptio`` marker's options, and which tests are aptio tests.

A test is an aptio test when it (or its class or module) carries ``@pytest.mark.aptio``, or
when it uses one of the plugin's fixtures. An async aptio test runs with its event loop as the
main STA (unless ``runtime=False``); a sync one runs as it is (``aptio_run`` runs a coroutine
in aptio there). Every aptio test gets the leak checks; with the ini option
``aptio_check_all = true`` every other test gets them too.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Iterable
from typing import Any, Final

import attrs
import pytest

from .._runtime.entry import DEFAULT_SHUTDOWN_TIMEOUT
from .leaks import KINDS

__all__ = ["FIXTURES", "LOOPS", "MARKER", "MARKER_HELP", "SCOPES", "TestKind", "Options",
           "kind_of", "loop_scope_of", "options_of"]

MARKER: Final = "aptio"
MARKER_HELP: Final = (
    "aptio(*, loops=None, mta_workers=None, shutdown_timeout=5.0, debug=None, "
    "allow_leaks=(), runtime=True): an aptio test: an async one runs with its event loop as "
    "the main STA; every one fails if it leaves apartment threads, server processes, "
    "unreleased objects, pending calls or unretrieved exceptions behind. loops=('asyncio', "
    "'uvloop') runs it once on each loop kind.")
#: Fixtures that make a test an aptio test; those before "aptio_run" need a runtime.
RUNTIME_FIXTURES: Final = frozenset({"aptio_main", "aptio_sta", "aptio_mta", "aptio_server"})
FIXTURES: Final = RUNTIME_FIXTURES | {"aptio_run", "aptio_loop"}
LOOPS: Final = ("asyncio", "uvloop")
#: pytest's scopes, widest first.
SCOPES: Final = ("session", "package", "module", "class", "function")


class TestKind(enum.Enum):
    NONE = "not checked"
    RUNTIME = "runs in a runtime the plugin makes"
    PLAIN = "checked, runs as it is"


@attrs.frozen
class Options:
    loops: tuple[str, ...] | None = None
    mta_workers: int | None = None
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT
    debug: bool | None = None
    allow_leaks: frozenset[str] = frozenset()
    runtime: bool = True


def _fail(node: pytest.Item | pytest.Collector, message: str) -> None:
    pytest.fail(f"{node.nodeid}: @pytest.mark.aptio: {message}", pytrace=False)


def options_of(node: pytest.Item | pytest.Collector) -> Options:
    """The marker's options for ``node``, the closest marker's keywords winning."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        if mark.args:
            _fail(node, f"takes keyword arguments only, not {mark.args!r}")
        merged.update(mark.kwargs)
    unknown = set(merged) - set(attrs.fields_dict(Options))
    if unknown:
        _fail(node, f"unknown option(s) {', '.join(sorted(unknown))}; it takes "
                    f"{', '.join(attrs.fields_dict(Options))}")
    if "loops" in merged and merged["loops"] is not None:
        merged["loops"] = _names(node, "loops", merged["loops"], LOOPS)
    if "allow_leaks" in merged:
        merged["allow_leaks"] = frozenset(_names(node, "allow_leaks", merged["allow_leaks"],
                                                 tuple(KINDS)))
    return Options(**merged)


def _names(node: pytest.Item | pytest.Collector, option: str, value: Any,
           allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        _fail(node, f"{option}= takes a list of names (of {', '.join(allowed)}), not {value!r}")
    names = tuple(value)
    wrong = [name for name in names if name not in allowed]
    if wrong or not names:
        _fail(node, f"{option}= names {', '.join(map(repr, wrong)) or 'nothing'}; the names are "
                    f"{', '.join(allowed)}")
    return names


def is_async(item: pytest.Item) -> bool:
    return inspect.iscoroutinefunction(getattr(item, "obj", None))


def kind_of(item: pytest.Item) -> TestKind:
    """How the plugin treats ``item`` (see the module docstring)."""
    names = set(getattr(item, "fixturenames", ()))
    marked = item.get_closest_marker(MARKER) is not None or bool(names & FIXTURES)
    if not marked:
        return TestKind.PLAIN if item.config.getini("aptio_check_all") else TestKind.NONE
    if is_async(item) and options_of(item).runtime:
        return TestKind.RUNTIME
    return TestKind.PLAIN


def loop_scope_of(item: pytest.Item) -> str:
    """The scope of the loop pytest-asyncio runs ``item`` on (its marker's ``loop_scope``, else
    the ``asyncio_default_test_loop_scope`` ini option)."""
    marker = item.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        try:
            scope = item.config.getini("asyncio_default_test_loop_scope")
        except ValueError:  # a pytest-asyncio before that option
            scope = None
    return str(scope) if scope in SCOPES else "function"
