"""Diagnosing a stuck program in one call: statistics and the dump of calls in flight."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import aptio
from aptio.testing import apartment_barrier


@aptio.coclass
class Stuck:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def wait_for(self, other: Any) -> None:
        self.entered.set()
        await other.hang()

    async def hang(self) -> None:
        self.entered.set()
        await self.gate.wait()

    async def wait_entered(self) -> None:
        await self.entered.wait()

    def open(self) -> None:
        self.gate.set()


@pytest.mark.asyncio
async def test_dump_shows_who_waits_on_what(main: aptio.Apartment) -> None:
    a = await aptio.start_sta("alpha")
    b = await aptio.start_sta("beta")
    waiter = await a.create(Stuck)
    holder = await b.create(Stuck)
    call = waiter.wait_for(holder)
    await holder.wait_entered()
    # hang() may start before wait_for() reaches its await on alpha's thread; alpha runs the
    # barrier only once wait_for() has suspended there, with its wait published.
    await apartment_barrier(a)
    calls = aptio.dump_calls()
    by_method = {entry.method: entry for entry in calls}
    assert by_method["wait_for"].apartment == "alpha"
    assert by_method["wait_for"].state == "running"
    assert any("Stuck.hang() in 'beta'" in w for w in by_method["wait_for"].waits_on)
    assert by_method["hang"].apartment == "beta"
    assert by_method["wait_for"].causality_id == by_method["hang"].causality_id
    text = aptio.format_calls()
    assert "[alpha] Stuck.wait_for()" in text
    assert "waits on Stuck.hang() in 'beta'" in text
    stats = a.statistics()
    assert stats.name == "alpha"
    assert stats.running == 1
    assert stats.awaiting == 1
    await holder.open()
    await call
    assert aptio.dump_calls() == ()
    assert aptio.format_calls() == "no aptio calls in flight"


@pytest.mark.asyncio
async def test_queued_calls_behind_a_blocked_sta_are_listed(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("jammed")
    entered, release = threading.Event(), threading.Event()

    @aptio.coclass
    class Blocker:
        def block(self) -> None:
            entered.set()
            release.wait(30)

        def later(self) -> None:
            pass

    blocker = await sta.create(Blocker)
    first = blocker.block()
    await asyncio.to_thread(entered.wait, 30)
    queued = [blocker.later() for _ in range(3)]
    states = sorted(entry.state for entry in aptio.dump_calls())
    assert states == ["queued", "queued", "queued", "running"]
    assert sta.statistics().queued == 3
    release.set()
    await first
    await asyncio.gather(*queued)


def test_dump_without_a_runtime_is_empty() -> None:
    assert aptio.dump_calls() == ()


@pytest.mark.asyncio
async def test_sync_calls_executing_on_a_worker_thread_are_listed(main: aptio.Apartment) -> None:
    """Sync method calls are found on the threads executing them, nested ones included."""
    entered, release = threading.Event(), threading.Event()

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class Worker:
        def outer(self, me: Any) -> str:
            return me.inner().result(timeout=30)  # type: ignore[no-any-return]

        def inner(self) -> str:  # an MTA call from an MTA thread: runs inline, nested
            entered.set()
            release.wait(30)
            return "done"

    worker = await aptio.create(Worker)
    call = worker.outer(worker)
    await asyncio.to_thread(entered.wait, 30)
    running = {entry.method: entry for entry in aptio.dump_calls() if entry.state == "running"}
    assert set(running) == {"outer", "inner"}
    assert running["outer"].causality_id == running["inner"].causality_id
    assert aptio.mta().statistics().running == 2
    release.set()
    assert await call == "done"
    assert aptio.mta().statistics().running == 0
    assert aptio.dump_calls() == ()
