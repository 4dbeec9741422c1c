"""Event and Condition across every kind of waiter: loops, other loops, uvloop, threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aptio import _sync as sync
from aptio._values.errors import WrongApartmentError

from sync_helpers import LOOP_SITES, SITES, Sites, as_sta, until  # isort: skip

pytestmark = pytest.mark.timeout(20)


@pytest_asyncio.fixture
async def sites() -> AsyncIterator[Sites]:
    s = Sites()
    try:
        yield s
    finally:
        await asyncio.to_thread(s.close)


@pytest.mark.parametrize("setter", SITES)
@pytest.mark.asyncio
async def test_event_set_wakes_every_kind_of_waiter(setter: str, sites: Sites) -> None:
    ev = sync.Event()
    handles = [sites.spawn(s, ev.wait, ev.wait_blocking) for s in SITES + SITES]
    await until(lambda: ev.statistics().waiters == len(handles))

    async def set_it() -> None:
        ev.set()

    assert await sites.spawn(setter, set_it, ev.set) == ("ok", None)
    for h in handles:
        assert await h == ("ok", True)
    assert ev.statistics() == sync.EventStatistics(is_set=True, waiters=0)


@pytest.mark.parametrize("site", SITES)
@pytest.mark.asyncio
async def test_event_wait_set_then_cleared_still_returns_true(site: str, sites: Sites) -> None:
    """gh-57711, across threads: a waiter woken by set() returns True though clear() ran."""
    ev = sync.Event()
    for _ in range(50):
        h = sites.spawn(site, ev.wait, ev.wait_blocking)
        await until(lambda: ev.statistics().waiters == 1)
        ev.set()
        ev.clear()
        assert await h == ("ok", True)


@pytest.mark.parametrize("site", SITES)
@pytest.mark.asyncio
async def test_event_wait_times_out_with_false(site: str, sites: Sites) -> None:
    ev = sync.Event()
    assert await sites.spawn(site, lambda: ev.wait(0.01), lambda: ev.wait_blocking(0.01)) == (
        "ok",
        False,
    )
    assert ev.statistics().waiters == 0


@pytest.mark.parametrize("site", LOOP_SITES)
@pytest.mark.asyncio
async def test_event_wait_cancelled_leaves_no_waiter(site: str, sites: Sites) -> None:
    ev = sync.Event()
    h = sites.spawn(site, ev.wait, ev.wait_blocking)
    await until(lambda: ev.statistics().waiters == 1)
    h.cancel()
    assert await h == ("cancelled",)
    assert ev.statistics().waiters == 0


@pytest.mark.asyncio
async def test_condition_notify_wakes_the_oldest_waiters_of_every_kind(sites: Sites) -> None:
    cond = sync.Condition()
    order: list[int] = []
    seq = ["thread", "asyncio", "here", "uvloop", "thread", "here"]
    handles = []
    for i, site in enumerate(seq):

        async def coro(i: int = i) -> None:
            async with cond:
                assert await cond.wait()
                order.append(i)

        def blocking(i: int = i) -> None:
            with cond:
                assert cond.wait_blocking()
                order.append(i)

        handles.append(sites.spawn(site, coro, blocking))
        await until(lambda i=i: cond.statistics().waiters == i + 1)  # type: ignore[misc]
    for k in range(len(seq) - 2):
        async with cond:
            cond.notify()
        await until(lambda k=k: len(order) == k + 1)  # type: ignore[misc]
    async with cond:
        cond.notify_all()
    for h in handles:
        assert await h == ("ok", None)
    assert order[:4] == [0, 1, 2, 3]
    assert sorted(order) == list(range(len(seq)))
    assert not cond.locked()


@pytest.mark.parametrize("site", LOOP_SITES)
@pytest.mark.asyncio
async def test_condition_notify_racing_a_cancel_is_passed_on(site: str, sites: Sites) -> None:
    """gh-112202 across threads: a notified waiter that is cancelled passes the wake-up on."""
    cond = sync.Condition()
    for _ in range(100):
        victim = sites.spawn(site, _waiter(cond), lambda: None)
        await until(lambda: cond.statistics().waiters == 1)
        other = asyncio.ensure_future(_waiter(cond)())
        await until(lambda: cond.statistics().waiters == 2)
        async with cond:
            cond.notify(1)
            victim.cancel()
        outcome = await victim
        if outcome == ("ok", True):  # the victim took the notification before the cancel
            async with cond:
                cond.notify(1)
        else:
            assert outcome == ("cancelled",)
        assert await asyncio.wait_for(other, 10) is True
        assert cond.statistics().waiters == 0
        assert not cond.locked()


def _waiter(cond: sync.Condition):  # type: ignore[no-untyped-def]
    async def wait() -> bool:
        async with cond:
            return await cond.wait()

    return wait


@pytest.mark.parametrize("site", SITES)
@pytest.mark.asyncio
async def test_condition_wait_for_with_timeout(site: str, sites: Sites) -> None:
    cond = sync.Condition()

    async def coro() -> object:
        async with cond:
            return await cond.wait_for(lambda: False, timeout=0.01)

    def blocking() -> object:
        with cond:
            return cond.wait_for_blocking(lambda: False, timeout=0.01)

    assert await sites.spawn(site, coro, blocking) == ("ok", False)
    assert not cond.locked()
    assert cond.statistics().waiters == 0


def test_wait_and_notify_need_the_lock() -> None:
    cond = sync.Condition()
    with pytest.raises(RuntimeError, match=r"^cannot notify on un-acquired lock$"):
        cond.notify()
    with pytest.raises(RuntimeError, match=r"^cannot wait on un-acquired lock$"):
        cond.wait_blocking()


def test_condition_needs_an_aptio_lock() -> None:
    with pytest.raises(TypeError, match=r"^Condition needs an aptio.Lock, not lock$"):
        sync.Condition(threading.Lock())  # type: ignore[arg-type]


def test_blocking_waits_raise_on_an_sta_thread() -> None:
    ev = sync.Event()
    cond = sync.Condition()
    with as_sta():
        with pytest.raises(WrongApartmentError, match=r"^Event.wait_blocking\(\) would block"):
            ev.wait_blocking(0)
        with pytest.raises(WrongApartmentError, match=r"use 'await cond.wait\(\)' instead$"):
            cond.wait_blocking()
        with pytest.raises(WrongApartmentError, match=r"wait_for_blocking"):
            cond.wait_for_blocking(lambda: True)


def test_statistics_and_would_block() -> None:
    lock = sync.Lock()
    assert lock.statistics() == sync.LockStatistics(
        locked=False, owner=None, waiters=0, fair=True
    )
    with lock:
        assert lock.statistics().owner_kind == "thread"
        assert lock.statistics().owner is threading.current_thread()
        with pytest.raises(sync.WouldBlock, match=r"^the lock is held$"):
            lock.acquire_nowait()
    sem = sync.BoundedSemaphore(2, fair=False)
    assert sem.statistics() == sync.SemaphoreStatistics(
        value=2, max_value=2, waiters=0, fair=False
    )
    with pytest.raises(ValueError, match=r"released too many times"):
        sem.release()
    cond = sync.Condition(lock)
    assert cond.statistics().lock is not None
