"""The sample application's fixtures: only aptio's pytest plugin and aptio.testing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from notes_app import App, start_app

import aptio


@pytest_asyncio.fixture
async def app(aptio_main: aptio.Apartment) -> AsyncIterator[App]:
    """The application, started in the test's main STA and closed after the test."""
    started = await start_app()
    yield started
    await started.close()
