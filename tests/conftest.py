"""Every async test runs once on an asyncio loop (debug mode) and once on uvloop; the STAs a
test starts run the same kind of loop as its main STA."""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import pytest
import pytest_asyncio

import aptio
from aptio.testing import live_apartment_threads

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


@pytest_asyncio.fixture
async def main() -> AsyncIterator[aptio.Apartment]:
    """The test's own loop adopted as the main STA; everything is shut down afterwards."""
    async with aptio.main_sta() as apartment:
        yield apartment


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Every test must leave no aptio thread and no runtime behind."""
    yield
    gc.collect()
    leaked = live_apartment_threads()
    assert not leaked, f"aptio threads left running: {leaked}"
    from aptio._runtime.entry import current_runtime

    assert current_runtime() is None, "an aptio runtime was left running"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """One local Ray cluster for every Ray test of the session (see ray_harness.py)."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'aptio[ray]'")
    from ray_harness import shared_cluster

    with shared_cluster() as cluster:
        yield cluster
