"""aptio.testing's helpers: wait_idle waits for every queued, running and held call; hold_calls
holds an apartment's incoming calls in order and releases them ahead of later ones (STAs and
the MTA); live_apartments counts the open apartments. No sleeps anywhere."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

import aptio
from aptio.testing import (
    CallHold,
    apartment_barrier,
    hold_calls,
    live_apartments,
    wait_idle,
)


@aptio.coclass
class Log:
    def __init__(self) -> None:
        self.items: list[object] = []
        self.gate = aptio.Event()

    def add(self, item: object) -> int:
        self.items.append(item)
        return len(self.items)

    async def add_after_gate(self, item: object) -> None:
        await self.gate.wait()
        self.items.append(item)

    def open(self) -> None:
        self.gate.set()

    def get(self) -> list[object]:
        return list(self.items)


@aptio.coclass(model=aptio.ThreadingModel.FREE)
class FreeLog:
    def __init__(self) -> None:
        self.items: list[object] = []
        self.lock = threading.Lock()

    def add(self, item: object) -> None:
        with self.lock:
            self.items.append(item)

    async def add_async(self, item: object) -> None:
        with self.lock:
            self.items.append(item)

    def get(self) -> list[object]:
        with self.lock:
            return list(self.items)


@pytest.mark.asyncio
async def test_wait_idle_waits_for_a_suspended_coroutine_call(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("worker")
    log = await sta.create(Log)
    waiting = log.add_after_gate("late")
    await apartment_barrier(sta)  # it started and waits on the gate
    assert not waiting.done()
    task = asyncio.ensure_future(wait_idle(sta))
    await apartment_barrier(sta)
    assert not task.done()  # the call still runs
    await log.open()
    assert await task
    assert waiting.done()
    assert await log.get() == ["late"]


@pytest.mark.asyncio
async def test_wait_idle_returns_false_on_its_timeout(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("worker")
    log = await sta.create(Log)
    waiting = log.add_after_gate("x")
    assert await wait_idle(sta, timeout=0.05) is False
    await log.open()
    await waiting
    assert await wait_idle(sta) is True


@pytest.mark.asyncio
async def test_wait_idle_sees_fire_and_forget_calls_into_the_mta(main: aptio.Apartment) -> None:
    free = await aptio.create(FreeLog)
    for i in range(200):
        free.add(i)
    assert await wait_idle(aptio.mta())
    assert sorted(await free.get()) == list(range(200))  # type: ignore[type-var]


@pytest.mark.asyncio
@pytest.mark.parametrize("where", ["sta", "mta"])
async def test_held_calls_wait_and_run_in_their_order_ahead_of_later_ones(
        main: aptio.Apartment, where: str) -> None:
    rng = random.Random(18)
    if where == "sta":
        apartment = await aptio.start_sta("worker")
        log = await apartment.create(Log)
    else:
        apartment = aptio.mta()
        log = await aptio.create(FreeLog)  # type: ignore[assignment]
    for _ in range(30):
        n = rng.randint(1, 8)
        before = await log.get()
        async with hold_calls(apartment) as hold:
            calls = [log.add(i) for i in range(n)]
            assert await hold.wait_held(n)
            assert hold.held == n
            released = rng.randint(0, n)
            assert hold.release(released) == released
            for call in calls[:released]:
                await call
            assert hold.held == n - released
        for call in calls:
            await call
        added = (await log.get())[len(before):]
        if where == "sta":
            assert added == list(range(n))  # in order, released or not
        else:
            assert sorted(added) == list(range(n))  # type: ignore[type-var]


@pytest.mark.asyncio
async def test_a_released_sta_call_runs_before_calls_sent_after_it(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("worker")
    log = await sta.create(Log)
    hold = hold_calls(sta)
    first = log.add("held")
    assert await hold.wait_held(1)
    hold.end()
    later = log.add("later")
    await first
    await later
    assert await log.get() == ["held", "later"]


@pytest.mark.asyncio
async def test_held_coroutine_calls_into_the_mta_are_released_too(
        main: aptio.Apartment) -> None:
    free = await aptio.create(FreeLog)
    async with hold_calls(aptio.mta()) as hold:
        calls = [free.add_async(i) for i in range(5)]
        assert await hold.wait_held(5)
    for call in calls:
        await call
    assert sorted(await free.get()) == list(range(5))  # type: ignore[type-var]


@pytest.mark.asyncio
async def test_a_held_call_fails_when_its_apartment_shuts_down(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("worker")
    log = await sta.create(Log)
    hold = hold_calls(sta)
    call = log.add("never")
    assert await hold.wait_held(1)
    assert "Log.add()" in hold.held_calls()[0]
    await sta.shutdown()
    with pytest.raises(aptio.DisconnectedError, match="shut down"):
        await call


@pytest.mark.asyncio
async def test_hold_calls_refuses_a_second_hold_and_the_neutral_apartment(
        main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("worker")
    async with hold_calls(sta):
        with pytest.raises(aptio.AptioError, match="already holds its calls"):
            hold_calls(sta)
    async with hold_calls(sta) as again:  # the first one ended
        assert isinstance(again, CallHold)
    runtime_na = next(a for a in aptio._runtime.entry.get_runtime().apartments()
                      if a.kind is aptio.ApartmentKind.NEUTRAL)
    with pytest.raises(aptio.AptioError, match="has no queue"):
        hold_calls(runtime_na)


@pytest.mark.asyncio
async def test_live_apartments_counts_the_open_apartments(main: aptio.Apartment) -> None:
    assert live_apartments() == [main]
    first = await aptio.start_sta("one")
    second = await aptio.start_sta("two")
    aptio.mta()
    assert len(live_apartments()) == 4
    await first.shutdown()
    assert first not in live_apartments()
    assert second in live_apartments()


def test_live_apartments_is_empty_without_a_runtime() -> None:
    assert live_apartments() == []
