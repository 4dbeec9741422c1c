"""The sample application's tests: aptio's pytest plugin runs each one with its loop as the
main STA and fails it if it leaves anything behind; aptio.testing synchronizes without
sleeping."""

from __future__ import annotations

import pytest
from notes_app import App, start_app

import aptio
from aptio.testing import hold_calls, live_apartments, wait_idle

pytestmark = pytest.mark.aptio


async def test_a_note_is_saved_indexed_and_found(app: App) -> None:
    assert await app.window.add_note("buy milk") == 1
    assert await app.window.get_status() == "added note 1"
    assert await app.window.search("milk") == ["buy milk"]
    assert await app.window.get_status() == "1 found"


async def test_the_window_lives_in_the_main_sta_and_the_rest_elsewhere(
        app: App, aptio_main: aptio.Apartment, aptio_mta: aptio.Apartment) -> None:
    assert aptio.apartment_of(app.window) is aptio_main
    assert aptio.apartment_of(app.indexer) is app.worker
    assert aptio.apartment_of(app.storage) is aptio_mta
    assert len(live_apartments()) == 3  # main STA, indexer, MTA


async def test_the_status_shows_a_note_waiting_for_the_indexer(app: App) -> None:
    async with hold_calls(app.worker) as hold:
        adding = app.window.add_note("held note")
        assert await hold.wait_held(1)  # saved; the indexer has not started on it
        assert await app.window.get_status() == "indexing note 1"
        assert await app.storage.count() == 1
    assert await adding == 1
    assert await app.window.get_status() == "added note 1"


async def test_a_held_indexer_takes_the_notes_in_the_order_they_came(app: App) -> None:
    async with hold_calls(app.worker) as hold:
        first = app.window.add_note("first")
        assert await hold.wait_held(1)
        second = app.window.add_note("second")
        assert await hold.wait_held(2)
        assert [call.split("(")[0] for call in hold.held_calls()] == ["Indexer.add"] * 2
        hold.release(1)  # only the first note's indexing runs
        assert await first == 1
        assert hold.held == 1
    assert await second == 2
    assert await app.indexer.indexed() == [1, 2]
    assert await app.window.get_status() == "added note 2"


async def test_fire_and_forget_adds_are_all_indexed_once_idle(
        app: App, aptio_main: aptio.Apartment) -> None:
    for n in range(20):
        app.window.add_note(f"note {n}")  # not awaited: wait_idle waits for them
    assert await wait_idle(aptio_main)
    assert sorted(await app.indexer.indexed()) == list(range(1, 21))
    assert sorted(await app.window.search("note")) == sorted(f"note {n}" for n in range(20))


async def test_a_search_for_nothing_finds_nothing(app: App) -> None:
    assert await app.window.search("absent") == []


@pytest.mark.aptio(loops=["asyncio", "uvloop"])
async def test_the_app_runs_on_either_loop(aptio_loop: str) -> None:
    app = await start_app()
    try:
        await app.window.add_note("on " + aptio_loop)
        assert await app.window.search(aptio_loop) == ["on " + aptio_loop]
    finally:
        await app.close()


def test_a_sync_test_runs_the_app_through_aptio_run(aptio_run) -> None:  # type: ignore[no-untyped-def]
    async def main() -> list[str]:
        app = await start_app()
        try:
            await app.window.add_note("sync")
            return await app.window.search("sync")
        finally:
            await app.close()

    assert aptio_run(main) == ["sync"]
