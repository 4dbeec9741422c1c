"""An STA's idle spin (``aptio.start_sta(idle_spin=...)``): what it accepts, the native waiter,
and that no call is lost, reordered or stranded whatever the interleaving of producers and the
spinning thread. The inbox's protocol is checked step by step with a scripted waiter (in every
build); the native waiter under real threads where the build has it."""

from __future__ import annotations

import asyncio
import math
import random
import sys
import threading
import time
from typing import Any

import pytest

import aptio
from aptio._threads import idle_spin
from aptio._threads.inbox import Inbox
from aptio._threads.ordering_311 import OrderedInbox

needs_native = pytest.mark.skipif(
    not aptio.idle_spin_available,
    reason="this build has no native idle spin (the pure-Python build): the option is a no-op")


@aptio.coclass
class Ledger:
    """Records who called in what order; some methods are coroutines (Tasks on the STA)."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, int]] = []

    def add(self, sender: int, index: int) -> int:
        self.entries.append((sender, index))
        return index

    async def add_later(self, sender: int, index: int) -> int:
        self.entries.append((sender, index))
        for _ in range(index % 3):
            await asyncio.sleep(0)  # steps the loop must run, spin or no spin
        return index

    async def nap(self) -> str:
        await asyncio.sleep(0.01)
        return "woke"

    def by_sender(self) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for sender, index in self.entries:
            found.setdefault(sender, []).append(index)
        return found


async def _send_in_bursts(ledger: Any, sender: int, per_sender: int, seed: int) -> list[int]:
    """Calls from a loop: bursts of pipelined calls, sync and async, with random yields."""
    local = random.Random(seed)
    results: list[int] = []
    index = 0
    while index < per_sender:
        burst = min(local.choice((1, 1, 2, 5)), per_sender - index)
        calls = [(ledger.add_later if local.random() < 0.3 else ledger.add)(sender, i)
                 for i in range(index, index + burst)]
        results += await asyncio.gather(*calls)
        index += burst
        for _ in range(local.randrange(3)):
            await asyncio.sleep(0)
    return results


@aptio.coclass
class BurstSender:
    """Sends from its own STA's loop."""

    async def send(self, ledger: Any, sender: int, per_sender: int, seed: int) -> list[int]:
        return await _send_in_bursts(ledger, sender, per_sender, seed)


# ---------------------------------------------------------------- the option


@pytest.mark.asyncio
@pytest.mark.parametrize(("value", "error", "words"), [
    (-1e-6, ValueError, "from 0 (none) to 0.001"),
    (0.002, ValueError, "from 0 (none) to 0.001"),
    (math.nan, ValueError, "not nan"),
    (math.inf, ValueError, "not inf"),
    (True, TypeError, "not bool"),
    ("0.0001", TypeError, "not str"),
    (None, TypeError, "not NoneType"),
])
async def test_a_bad_idle_spin_is_refused_before_any_thread_starts(
        main: aptio.Apartment, value: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match="idle_spin is a number of seconds") as raised:
        await aptio.start_sta("refused", idle_spin=value)  # type: ignore[arg-type]
    assert words in str(raised.value)
    assert not any(t.name == "aptio refused" for t in threading.enumerate())


@pytest.mark.asyncio
@pytest.mark.parametrize("seconds", [0, 0.0, 1e-9, 5e-5, 0.001])
async def test_every_accepted_idle_spin_serves_calls(main: aptio.Apartment, seconds: float) -> None:
    sta = await aptio.start_sta(idle_spin=seconds)
    # The STA's inbox got its waiter (where the build has one and the spin is not 0).
    waiter = sta._loop_thread.inbox._idle_waiter  # type: ignore[attr-defined]
    budget_ns = round(seconds * 1e9)
    if aptio.idle_spin_available and budget_ns > 0:
        assert waiter.budget_ns == budget_ns
    else:
        assert waiter is None
    ledger = await sta.create(Ledger)
    assert [await ledger.add(0, i) for i in range(20)] == list(range(20))
    assert await ledger.add_later(0, 20) == 20
    await sta.shutdown()


def test_idle_spin_is_available_exactly_where_the_native_helper_runs() -> None:
    assert aptio.idle_spin_available is idle_spin.AVAILABLE
    if not aptio.compiled:
        assert aptio.idle_spin_available is False
    assert (idle_spin.idle_waiter(0.0) is None)
    assert (idle_spin.idle_waiter(1e-4) is not None) is aptio.idle_spin_available


# ---------------------------------------------------------------- the native waiter


@needs_native
def test_the_native_waiter_runs_out_its_budget_unless_poked() -> None:
    from aptio._threads._idle_spin import IdleSpin

    waiter = IdleSpin(200_000)
    assert waiter.budget_ns == 200_000
    started = time.perf_counter_ns()
    assert waiter.wait() is False
    assert time.perf_counter_ns() - started >= 200_000  # it cannot give up early
    # A poke that comes before a wait (late, for the one before) ends that wait at once; the
    # wait clears it, so the next one runs out its budget again.
    waiter.poke()
    assert waiter.wait() is True
    assert waiter.wait() is False


@needs_native
def test_the_native_waiter_releases_the_gil_and_ends_when_poked() -> None:
    from aptio._threads._idle_spin import IdleSpin

    # Far longer than the test's timeout: only a poke ends the wait, and a poke is Python code
    # on another thread, which needs the GIL: if the wait held it, the test would time out.
    waiter = IdleSpin(600 * 10**9)
    returned = threading.Event()
    pokes: list[int] = []

    def other_thread() -> None:
        # Pokes until the wait has returned (a poke made before the wait began is cleared).
        while not returned.is_set():
            pokes.append(1)
            waiter.poke()
            time.sleep(0.001)

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        assert waiter.wait() is True
    finally:
        returned.set()
        thread.join()
    assert pokes


@needs_native
@pytest.mark.parametrize("budget", [0, -5, 10**15 + 1])
def test_the_native_waiter_refuses_a_budget_out_of_range(budget: int) -> None:
    from aptio._threads._idle_spin import IdleSpin

    with pytest.raises(ValueError, match="nanoseconds > 0 and at most"):
        IdleSpin(budget)


@needs_native
def test_the_native_waiter_reads_the_interpreter_lock_where_it_knows_its_layout() -> None:
    from aptio._threads._idle_spin import _gil_readings

    gil_enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
    known = (3, 11) <= sys.version_info[:2] <= (3, 13) and gil_enabled
    held, _ = _gil_readings()
    if not known:
        assert held is None
        return
    assert held is True  # read while this thread holds it
    # Read after releasing it: free, unless another thread took it meanwhile (so: once).
    assert any(_gil_readings()[1] is False for _ in range(1000))


# ---------------------------------------------------------------- the inbox's protocol


class _Item:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def _deliver(self) -> bool:
        self.log.append(self.name)
        return False

    def _starts_as_task(self) -> bool:
        return False

    def _fail_undelivered(self) -> None:
        self.log.append(f"failed {self.name}")


class _ScriptedWaiter:
    """Stands in for the native waiter: ``during`` runs inside each wait, as another thread
    would while the loop's thread polls (the GIL makes each step atomic, as here)."""

    def __init__(self) -> None:
        self.waits = 0
        self.pokes = 0
        self.during: list[Any] = []

    def wait(self) -> bool:
        self.waits += 1
        poked_before = self.pokes
        if self.during:
            self.during.pop(0)()
        return self.pokes > poked_before

    def poke(self) -> None:
        self.pokes += 1


#: Both kinds of apartment inbox (3.11 uses the ordered one; it drains by its own method).
INBOXES = pytest.mark.parametrize("inbox_class", [Inbox, OrderedInbox])


def _spinning_inbox(loop: asyncio.AbstractEventLoop,
                    inbox_class: type[Inbox]) -> tuple[Inbox, _ScriptedWaiter, list[str]]:
    inbox, waiter = inbox_class(loop), _ScriptedWaiter()
    inbox.spin_when_idle(waiter)
    return inbox, waiter, []


async def _settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.mark.asyncio
@INBOXES
async def test_an_item_posted_while_the_loop_spins_pokes_it_and_is_drained(
        inbox_class: type[Inbox]) -> None:
    loop = asyncio.get_running_loop()
    inbox, waiter, log = _spinning_inbox(loop, inbox_class)
    waiter.during.append(lambda: inbox.post(_Item("during", log)))
    inbox.post(_Item("first", log))
    await _settle()
    assert log == ["first", "during"]
    assert waiter.pokes == 1  # the post saw the spin and ended it instead of scheduling
    assert waiter.waits == 2  # and the drain of "during" was followed by another spin
    assert inbox.idle()


@pytest.mark.asyncio
@INBOXES
async def test_an_item_posted_after_the_spin_gave_up_schedules_its_own_drain(
        inbox_class: type[Inbox]) -> None:
    loop = asyncio.get_running_loop()
    inbox, waiter, log = _spinning_inbox(loop, inbox_class)
    inbox.post(_Item("first", log))
    await _settle()
    assert (log, waiter.waits, waiter.pokes) == (["first"], 1, 0)
    # The spin is over (no poke): a post now must wake the loop the usual way.
    await asyncio.to_thread(inbox.post, _Item("late", log))
    await _settle()
    assert log == ["first", "late"]
    assert waiter.pokes == 0


@pytest.mark.asyncio
@INBOXES
async def test_an_item_posted_before_the_spin_starts_waits_for_it_and_is_drained(
        inbox_class: type[Inbox]) -> None:
    loop = asyncio.get_running_loop()
    inbox, waiter, log = _spinning_inbox(loop, inbox_class)
    # The drain of "first" schedules the spin; "second" lands before the spin runs (a
    # callback queued ahead of it), so the spin must not poll but drain it.
    inbox.post(_Item("first", log))
    loop.call_soon(inbox.post, _Item("second", log))
    await _settle(8)
    assert log == ["first", "second"]
    assert waiter.waits == 1  # only after "second": the spin due after "first" drained it
    assert inbox.idle()


@pytest.mark.asyncio
@INBOXES
async def test_only_a_lone_item_is_followed_by_a_spin(inbox_class: type[Inbox]) -> None:
    # Items that come several at a time gather while the loop sleeps; a spin would split them.
    loop = asyncio.get_running_loop()
    inbox, waiter, log = _spinning_inbox(loop, inbox_class)
    for name in ("a", "b", "c"):
        inbox.post(_Item(name, log))
    await _settle()
    assert (log, waiter.waits) == (["a", "b", "c"], 0)
    inbox.post(_Item("lone", log))
    await _settle()
    assert (log[-1], waiter.waits) == ("lone", 1)


@pytest.mark.asyncio
@INBOXES
async def test_a_poke_that_comes_late_costs_a_spin_never_an_item(inbox_class: type[Inbox]) -> None:
    loop = asyncio.get_running_loop()
    inbox, waiter, log = _spinning_inbox(loop, inbox_class)
    # A producer appends while the loop spins but its poke is lost (as if the spin had
    # already given up): the re-read after the spin must still find the item.
    waiter.during.append(lambda: inbox._queue.append(_Item("unannounced", log)))
    inbox.post(_Item("first", log))
    await _settle()
    assert log == ["first", "unannounced"]


@pytest.mark.asyncio
@INBOXES
async def test_a_closed_inbox_does_not_spin_and_fails_what_comes_later(
        inbox_class: type[Inbox]) -> None:
    loop = asyncio.get_running_loop()
    inbox, waiter, log = _spinning_inbox(loop, inbox_class)
    inbox.post(_Item("first", log))
    loop.call_soon(inbox.close)  # runs between the drain and the spin it schedules
    await _settle()
    inbox.post(_Item("after close", log))
    await _settle()
    assert log == ["first", "failed after close"]
    assert waiter.waits == 0


@pytest.mark.asyncio
@INBOXES
async def test_tasks_a_batch_woke_take_their_step_before_the_spin(inbox_class: type[Inbox]) -> None:
    loop = asyncio.get_running_loop()
    inbox, waiter, log = _spinning_inbox(loop, inbox_class)
    woken = loop.create_future()

    async def task_body() -> None:
        await woken
        log.append("task step")

    task = loop.create_task(task_body())
    await _settle()

    class _Wakes(_Item):
        def _deliver(self) -> bool:
            woken.set_result(None)
            return super()._deliver()

    waiter.during.append(lambda: log.append("spin"))
    inbox.post(_Wakes("wake", log))
    await task
    await _settle()
    assert log == ["wake", "task step", "spin"]


# ---------------------------------------------------------------- under real threads


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(8))
async def test_no_call_is_lost_or_reordered_with_many_producers(main: aptio.Apartment,
                                                                seed: int) -> None:
    rng = random.Random(seed)
    # The longest spin, so that producers often find the STA spinning (in the compiled build).
    sta = await aptio.start_sta("spinning", idle_spin=idle_spin.LONGEST)
    ledger = await sta.create(Ledger)
    per_sender = 120

    def thread_sender(sender: int, sender_seed: int) -> list[int]:
        local = random.Random(sender_seed)
        results: list[int] = []
        for index in range(per_sender):
            method = ledger.add_later if local.random() < 0.3 else ledger.add
            results.append(method(sender, index).result(timeout=30))
            if local.random() < 0.3:
                time.sleep(local.choice((0, 0, 1e-5, 1e-4)))  # lands in, or after, a spin
        return results

    other = await aptio.start_sta("caller")
    burst_sender = await other.create(BurstSender)
    threads = 3
    thread_results = [asyncio.to_thread(thread_sender, s, rng.randrange(1 << 30))
                      for s in range(threads)]
    results = await asyncio.gather(
        *thread_results,
        _send_in_bursts(ledger, threads, per_sender, rng.randrange(1 << 30)),
        burst_sender.send(ledger, threads + 1, per_sender, rng.randrange(1 << 30)))
    assert all(got == list(range(per_sender)) for got in results)
    # Each sender's calls ran in the order it sent them (each waits for, or pipelines, its own).
    assert await ledger.by_sender() == {s: list(range(per_sender)) for s in range(threads + 2)}
    await other.shutdown()
    await sta.shutdown()


@pytest.mark.asyncio
async def test_a_spinning_sta_still_runs_its_timers_and_shuts_down(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("spinning", idle_spin=idle_spin.LONGEST)
    ledger = await sta.create(Ledger)

    timer = ledger.nap()  # sleeps 10 ms on the STA's loop, then returns
    calls = 0
    while not timer.done():  # calls one after another meanwhile: the STA spins between them
        assert await ledger.add(0, calls) == calls
        calls += 1
        assert calls < 1_000_000, "the STA's timer never fired while calls kept coming"
    assert await timer == "woke"
    await sta.shutdown()
