"""Every async test runs once on an asyncio loop (debug mode) and once on uvloop; the STAs a
test starts run the same kind of loop as its main STA."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import pytest
import pytest_asyncio

import aptio
from aptio.testing import live_apartment_threads

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
