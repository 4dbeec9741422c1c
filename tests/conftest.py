"""Every async test runs once on an asyncio loop (debug mode) and once on uvloop; the STAs a
test starts run the same kind of loop as its main STA. aptio's pytest plugin runs the tests
that use ``main`` in aptio and checks every test for what it leaves behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

import aptio

pytest_plugins = ("pytester",)  # the plugin's own tests run pytest in a subprocess
collect_ignore = ["sample_app"]  # its suite runs with its own configuration (test_sample_app)

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]


def _asyncio_debug_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0  # debug mode's slow-callback log is noise on 2 cores
    return loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": _asyncio_debug_loop
    }
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture
def main(aptio_main: aptio.Apartment) -> aptio.Apartment:
    """The test's own loop adopted as the main STA (aptio's pytest plugin); everything is shut
    down afterwards, and whatever the test left behind fails it (``aptio_check_all`` in
    pyproject.toml checks the tests that make their own runtime too)."""
    return aptio_main
