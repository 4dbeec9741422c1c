"""Generic tests, written once, run for every lock-like primitive and every kind of waiter.

Sites: "here" (a task on the test's loop), "asyncio" / "uvloop" (a task on another loop in
another thread) and "thread" (a plain thread on the blocking API).  Tests wait for observable
states (``statistics().waiters``), never for time.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from aptio import _sync as sync
from aptio._values.errors import WrongApartmentError

from sync_helpers import LOOP_SITES, SITES, LoopThread, Sites, as_sta, start_thread, until

pytestmark = pytest.mark.timeout(20)

Prim = sync.Lock | sync.Semaphore | sync.BoundedSemaphore | sync.Condition


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[], Prim]
    cap: int
    fair: bool

    def __str__(self) -> str:
        return self.name


KINDS = [
    Kind("Lock", sync.Lock, 1, True),
    Kind("Lock-unfair", lambda: sync.Lock(fair=False), 1, False),
    Kind("Semaphore2", lambda: sync.Semaphore(2), 2, True),
    Kind("BoundedSemaphore2", lambda: sync.BoundedSemaphore(2), 2, True),
    Kind("Semaphore2-unfair", lambda: sync.Semaphore(2, fair=False), 2, False),
    Kind("Condition", sync.Condition, 1, True),
]
FAIR = [k for k in KINDS if k.fair]


def waiters(p: Prim) -> int:
    if isinstance(p, sync.Condition):
        return p.statistics().lock.waiters
    return p.statistics().waiters


def is_free(p: Prim, cap: int) -> bool:
    if isinstance(p, sync.Semaphore | sync.BoundedSemaphore):
        return p.statistics().value == cap and waiters(p) == 0
    return not p.locked() and waiters(p) == 0


def hold_all(p: Prim, cap: int) -> None:
    for _ in range(cap):
        p.acquire_nowait()


@pytest_asyncio.fixture
async def sites() -> AsyncIterator[Sites]:
    s = Sites()
    try:
        yield s
    finally:
        await asyncio.to_thread(s.close)


@pytest.mark.parametrize("kind", KINDS, ids=str)
@pytest.mark.asyncio
async def test_exclusion_holds_and_no_permit_is_lost_under_random_cancellation(
    kind: Kind, sites: Sites
) -> None:
    p = kind.make()
    inside = [0]
    peak = [0]
    guard = threading.Lock()
    acquisitions = [0]

    def enter() -> None:
        with guard:
            inside[0] += 1
            acquisitions[0] += 1
            peak[0] = max(peak[0], inside[0])
            assert inside[0] <= kind.cap

    def leave() -> None:
        with guard:
            inside[0] -= 1

    async def once(rnd: random.Random) -> None:
        timeout = rnd.choice([None, None, 0, 0.0002])
        if not await p.acquire(timeout):
            return
        try:
            enter()
            try:
                if rnd.random() < 0.5:
                    await asyncio.sleep(0)
            finally:
                leave()
        finally:
            p.release()

    async def coro_worker(seed: int, iterations: int) -> int:
        rnd = random.Random(seed)
        for _ in range(iterations):
            t = asyncio.ensure_future(once(rnd))
            if rnd.random() < 0.3:
                for _ in range(rnd.randrange(3)):
                    await asyncio.sleep(0)
                t.cancel()
            await asyncio.gather(t, return_exceptions=True)
        return iterations

    def thread_worker(seed: int, iterations: int) -> int:
        rnd = random.Random(seed)
        for _ in range(iterations):
            if not p.acquire_blocking(rnd.choice([None, None, 0, 0.0002])):
                continue
            try:
                enter()
                leave()
            finally:
                p.release()
        return iterations

    n = 300
    handles = []
    for i, site in enumerate(SITES + SITES):
        handles.append(
            sites.spawn(
                site,
                lambda i=i: coro_worker(i, n),  # type: ignore[misc]
                lambda i=i: thread_worker(i, n),  # type: ignore[misc]
            )
        )
    for h in handles:
        assert await h == ("ok", n)
    assert inside[0] == 0
    assert acquisitions[0] > 0
    assert is_free(p, kind.cap), p.statistics()
    hold_all(p, kind.cap)  # every permit is still there...
    with pytest.raises(sync.WouldBlock):
        p.acquire_nowait()  # ...and no extra one was made


@pytest.mark.parametrize("kind", FAIR, ids=str)
@pytest.mark.asyncio
async def test_fifo_hand_off_across_every_kind_of_waiter(kind: Kind, sites: Sites) -> None:
    p = kind.make()
    hold_all(p, kind.cap)
    order: list[int] = []
    seq = ["thread", "asyncio", "here", "uvloop", "here", "thread", "uvloop", "asyncio", "thread"]
    handles = []
    for i, site in enumerate(seq):

        async def coro(i: int = i) -> None:
            await p.acquire()
            order.append(i)

        def blocking(i: int = i) -> None:
            p.acquire_blocking()
            order.append(i)

        handles.append(sites.spawn(site, coro, blocking))
        await until(lambda i=i: waiters(p) == i + 1)  # type: ignore[misc]
    for k in range(len(seq)):
        p.release()  # hands one permit to the oldest waiter, whatever its kind
        await until(lambda k=k: len(order) == k + 1)  # type: ignore[misc]
    for h in handles:
        assert await h == ("ok", None)
    assert order == list(range(len(seq)))
    for _ in range(kind.cap):
        p.release()
    assert is_free(p, kind.cap)


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("kind", KINDS, ids=str)
@pytest.mark.asyncio
async def test_timeout_returns_false_and_leaves_no_waiter(
    kind: Kind, site: str, sites: Sites
) -> None:
    p = kind.make()
    hold_all(p, kind.cap)
    h = sites.spawn(site, lambda: p.acquire(0.01), lambda: p.acquire_blocking(0.01))
    assert await h == ("ok", False)
    assert waiters(p) == 0
    for _ in range(kind.cap):
        p.release()
    assert is_free(p, kind.cap)


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("kind", KINDS, ids=str)
@pytest.mark.asyncio
async def test_cancel_or_timeout_racing_a_release_never_loses_or_duplicates(
    kind: Kind, site: str, sites: Sites
) -> None:
    """bpo-27585 / bpo-32734 / gh-90155 across threads: a waiter cancelled (or timing out) just
    as a release hands it a permit either keeps it or passes it on, never both, never neither."""
    p = kind.make()
    rnd = random.Random(site + kind.name)
    for _ in range(150):
        hold_all(p, kind.cap)
        timeout = rnd.choice([0.0, 0.0001, 0.0003]) if site == "thread" else None
        victim = sites.spawn(site, lambda: p.acquire(), lambda t=timeout: p.acquire_blocking(t))  # type: ignore[misc]
        if site != "thread":
            await until(lambda: waiters(p) >= 1)
        second = asyncio.ensure_future(p.acquire())
        await asyncio.sleep(0)
        if site != "thread":
            victim.cancel()
        p.release()  # races the cancellation / the timeout
        outcome = await victim
        if outcome == ("ok", True):
            p.release()  # the victim got it: it passes it on by releasing
        else:
            assert outcome in {("cancelled",), ("ok", False)}, outcome
        assert await asyncio.wait_for(second, 10) is True
        p.release()
        for _ in range(kind.cap - 1):
            p.release()
        await until(lambda: is_free(p, kind.cap))
    hold_all(p, kind.cap)
    with pytest.raises(sync.WouldBlock):
        p.acquire_nowait()


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("kind", FAIR, ids=str)
@pytest.mark.asyncio
async def test_a_waiter_whose_loop_closed_passes_the_permit_on(
    kind: Kind, loop_kind: str
) -> None:
    p = kind.make()
    hold_all(p, kind.cap)
    lt = LoopThread(loop_kind)
    stranded = lt.submit(p.acquire())
    await until(lambda: waiters(p) == 1)
    behind = asyncio.ensure_future(p.acquire())
    await until(lambda: waiters(p) == 2)
    # Stop and close the loop without cancelling its task: the waiter can never run again.
    lt.loop.call_soon_threadsafe(lt.loop.stop)
    await asyncio.to_thread(lt._thread.join, 10)
    task = next(iter(asyncio.all_tasks(lt.loop)))
    lt.loop.close()
    p.release()  # the hand-off to the closed loop fails: the permit goes to `behind`
    assert await asyncio.wait_for(behind, 10) is True
    assert waiters(p) == 0
    del task, stranded
    for _ in range(kind.cap):
        p.release()
    assert is_free(p, kind.cap)


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_blocking_api_raises_wrong_apartment_on_an_sta_thread(kind: Kind) -> None:
    p = kind.make()
    with as_sta():
        with pytest.raises(WrongApartmentError, match=r"would block an STA thread.*use 'await"):
            p.acquire_blocking()
        with pytest.raises(WrongApartmentError, match=r"STA"), p:
            pass
        p.acquire_nowait()  # never blocks: allowed
        p.release()
    assert is_free(p, kind.cap)


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_coroutine_api_works_on_an_sta_thread(kind: Kind) -> None:
    p = kind.make()
    hold_all(p, kind.cap)
    got: list[object] = []

    def sta() -> None:
        async def main() -> None:
            got.append(await p.acquire())
            p.release()

        with as_sta():
            asyncio.run(main())

    t = start_thread(sta)
    while waiters(p) == 0 and t.is_alive():
        t.join(0.001)
    p.release()
    t.join(10)
    assert got == [True]


@pytest.mark.parametrize("site", [*LOOP_SITES, "thread"])
@pytest.mark.asyncio
async def test_a_foreign_wake_up_reaches_an_idle_loop_at_once(site: str, sites: Sites) -> None:
    """The waiting loop has no timer that could wake it: only the self-pipe write can."""
    ev = sync.Event()
    lt = LoopThread("asyncio")
    try:
        waiting = lt.submit(ev.wait())
        while ev.statistics().waiters == 0:
            await asyncio.sleep(0.0005)
        await sites.spawn(site, _async_set(ev), ev.set)
        assert await asyncio.wait_for(asyncio.wrap_future(waiting), 10) is True
    finally:
        await asyncio.to_thread(lt.close)


def _async_set(ev: sync.Event) -> Callable[[], Any]:
    async def set_it() -> None:
        ev.set()

    return set_it


def test_exports() -> None:
    for name in sync.__all__:
        # The primitives live in the primitives package; their error with the others.
        home = "aptio._values.errors" if name == "WouldBlock" else "aptio._sync"
        assert getattr(sync, name).__module__.startswith(home)
    assert issubclass(sync.WouldBlock, sync.WouldBlock.__mro__[1])
    assert sync.WouldBlock.__mro__[1].__name__ == "AptioError"
