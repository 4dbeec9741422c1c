"""What the plugin keeps per test (its kind, options, snapshot, findings) and per session (the
test running now, the runtimes the plugin made, the collector of unretrieved errors)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import attrs
import pytest

from .._apartments.base import Apartment
from .leaks import Findings, Snapshot, UnretrievedErrors
from .options import Options, TestKind

__all__ = ["STATE", "ItemState", "RuntimeHandle", "Session", "session"]

T = TypeVar("T")


class RuntimeHandle:
    """A runtime the plugin made on a pytest-asyncio loop: its main STA is that loop's thread."""

    def __init__(self, scope: str, loop: asyncio.AbstractEventLoop, main: Apartment,
                 baseline: Snapshot) -> None:
        self.scope = scope
        self.loop = loop
        self.main = main
        self.baseline = baseline  # before the runtime began

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the runtime's loop, from a sync fixture (the loop is idle between
        pytest-asyncio's runs)."""
        return self.loop.run_until_complete(coro)


@attrs.define
class ItemState:
    kind: TestKind
    options: Options
    loop_scope: str = "function"
    baseline: Snapshot | None = None
    handle: RuntimeHandle | None = None
    findings: Findings = attrs.field(factory=Findings)
    pending: list[str] = attrs.field(factory=list)  # pending calls reported (for dedupe)
    failed: bool = False  # the test's call failed: leaks go into a report section


STATE: pytest.StashKey[ItemState] = pytest.StashKey()


class Session:
    """Per pytest session (made on first use: a session with no aptio test makes none)."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None  # the test being run (setup to teardown)
        self.handles: set[RuntimeHandle] = set()  # runtimes the plugin made, still running
        self.errors = UnretrievedErrors()

    def close(self) -> None:
        self.errors.close()


_session: list[Session] = []


def session(make: bool = True) -> Session | None:
    if not _session and make:
        _session.append(Session())
    return _session[0] if _session else None


def end_session() -> None:
    if _session:
        _session.pop().close()
