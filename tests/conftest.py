"""Every async test runs once on an asyncio loop (debug mode) and once on uvloop; the STAs a
test starts run the same kind of loop as its main STA. aptio's pytest plugin runs the tests
that use ``main`` in aptio and checks every test for what it leaves behind."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator, Mapping

import pytest

import aptio

pytest_plugins = ("pytester",)  # the plugin's own tests run pytest in a subprocess
collect_ignore = ["sample_app"]  # its suite runs with its own configuration (test_sample_app)

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]


# Ray reads its authentication mode once, as it loads: the Ray tests' cluster (ray_harness.py)
# checks a token, so the mode and a token for this session are set before any test imports Ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


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


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """One local Ray cluster for every Ray test of the session (see ray_harness.py)."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'aptio[ray]'")
    from ray_harness import shared_cluster

    with shared_cluster() as cluster:
        yield cluster
