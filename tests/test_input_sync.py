"""Input-synchronized calls (COM: calls an STA makes while it handles user input): while one is
out, the STA takes no other incoming call, and the callee may not call back into it."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest

import aptio

pytestmark = pytest.mark.timeout(60)


class Ledger:
    """Shared by the test and its main-STA objects (all on the main STA's thread)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.out: list[aptio.Call[Any]] = []  # the input-synchronized calls sent
        self.overlaps = 0  # incoming calls that ran while one had no outcome yet


@aptio.coclass
class Journal:
    """Lives on the main STA: records the calls that reach it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def touch(self, label: str) -> str:
        if not all(call.done() for call in self.ledger.out):
            self.ledger.overlaps += 1
        self.ledger.events.append(label)
        return label


@aptio.coclass
class Blocker:
    """Lives on a worker STA: returns once released."""

    def __init__(self) -> None:
        self.release = aptio.Event()

    async def wait_released(self) -> str:
        await self.release.wait()
        self.release.clear()
        return "released"

    def open(self) -> None:
        self.release.set()

    def ping(self) -> str:
        return "pong"

    async def call_back(self, journal: Any, label: str) -> str:
        return str(await journal.touch(label))


@aptio.coclass
class Outsider:
    """Lives on another worker STA: calls the main STA on chains of its own."""

    def __init__(self) -> None:
        self.sent = aptio.Event()

    async def poke(self, journal: Any, label: str) -> str:
        call = journal.touch(label)  # sent now
        self.sent.set()
        return str(await call)

    async def wait_sent(self) -> None:
        await self.sent.wait()
        self.sent.clear()


@pytest.mark.asyncio
async def test_incoming_calls_wait_until_the_input_synchronized_call_returns(
        main: aptio.Apartment) -> None:
    ledger = Ledger()
    journal = await aptio.create(Journal, ledger)
    blocker = await (await aptio.start_sta("handler-target")).create(Blocker)
    outsider = await (await aptio.start_sta("outsider")).create(Outsider)

    with aptio.input_synchronized():
        synchronized = blocker.wait_released()  # sent, input-synchronized
    ledger.out.append(synchronized)
    poke = outsider.poke(journal, "outsider")  # a chain of its own: held, not failed
    await outsider.wait_sent()
    # The touch reached the main STA's inbox before wait_sent returned, and so before this
    # reply: once the ping is back, the touch was dispatched and held.
    assert await blocker.ping() == "pong"
    assert ledger.events == []
    assert not poke.done()

    await blocker.open()
    assert await synchronized == "released"
    assert await poke == "outsider"
    assert ledger.events == ["outsider"]
    assert ledger.overlaps == 0


@pytest.mark.asyncio
async def test_held_calls_run_in_their_order_ahead_of_later_ones(main: aptio.Apartment) -> None:
    ledger = Ledger()
    journal = await aptio.create(Journal, ledger)
    blocker = await (await aptio.start_sta("handler-target")).create(Blocker)
    outsider = await (await aptio.start_sta("outsider")).create(Outsider)

    with aptio.input_synchronized():
        synchronized = blocker.wait_released()
    pokes = []
    for i in range(5):
        pokes.append(outsider.poke(journal, f"held-{i}"))
        await outsider.wait_sent()
    assert await blocker.ping() == "pong"  # every touch is held by now
    await blocker.open()
    await synchronized
    later = outsider.poke(journal, "later")
    assert await asyncio.gather(*pokes, later) == [f"held-{i}" for i in range(5)] + ["later"]
    assert ledger.events == [f"held-{i}" for i in range(5)] + ["later"]


@pytest.mark.asyncio
async def test_a_callback_of_the_same_chain_fails_with_input_sync_error(
        main: aptio.Apartment) -> None:
    ledger = Ledger()
    journal = await aptio.create(Journal, ledger)
    blocker = await (await aptio.start_sta("handler-target")).create(Blocker)

    with aptio.input_synchronized():
        call = blocker.call_back(journal, "inside")
    with pytest.raises(aptio.InputSyncError, match=r"input-synchronized call of the same chain"):
        await call
    assert ledger.events == []
    # Outside the block the same callback is an ordinary nested call.
    assert await blocker.call_back(journal, "outside") == "outside"
    assert ledger.events == ["outside"]


@pytest.mark.asyncio
async def test_calls_to_objects_of_the_same_sta_run_as_usual(main: aptio.Apartment) -> None:
    ledger = Ledger()
    journal = await aptio.create(Journal, ledger)
    with aptio.input_synchronized():
        assert await journal.touch("own") == "own"
    assert ledger.events == ["own"]


@pytest.mark.asyncio
async def test_tasks_started_inside_the_block_make_input_synchronized_calls(
        main: aptio.Apartment) -> None:
    ledger = Ledger()
    journal = await aptio.create(Journal, ledger)
    blocker = await (await aptio.start_sta("handler-target")).create(Blocker)

    async def handler() -> str:
        return await blocker.call_back(journal, "from-task")

    with aptio.input_synchronized():
        task = asyncio.create_task(handler())  # copies the context, marker included
    with pytest.raises(aptio.InputSyncError):
        await task


@pytest.mark.asyncio
async def test_cancelling_the_input_synchronized_call_releases_the_held_calls(
        main: aptio.Apartment) -> None:
    ledger = Ledger()
    journal = await aptio.create(Journal, ledger)
    blocker = await (await aptio.start_sta("handler-target")).create(Blocker)
    outsider = await (await aptio.start_sta("outsider")).create(Outsider)

    with aptio.input_synchronized():
        synchronized = blocker.wait_released()
    poke = outsider.poke(journal, "after-cancel")
    await outsider.wait_sent()
    assert await blocker.ping() == "pong"
    assert ledger.events == []
    synchronized.cancel()
    assert await poke == "after-cancel"
    with pytest.raises(asyncio.CancelledError):
        await synchronized


def test_off_an_sta_input_synchronized_is_refused() -> None:
    with pytest.raises(aptio.WrongApartmentError, match=r"not an STA's"), \
            aptio.input_synchronized():
        pass


@aptio.coclass(aptio.ThreadingModel.FREE)
class FreeHandler:
    def try_it(self) -> str:
        try:
            with aptio.input_synchronized():
                return "allowed"
        except aptio.WrongApartmentError as error:
            return str(error)


@pytest.mark.asyncio
async def test_the_mta_cannot_make_input_synchronized_calls(main: aptio.Apartment) -> None:
    handler = await aptio.create(FreeHandler)
    assert "the MTA and plain threads cannot make them" in await handler.try_it()


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(8))
async def test_no_incoming_call_runs_while_one_is_out_under_random_interleavings(
        main: aptio.Apartment, seed: int) -> None:
    rng = random.Random(seed)
    ledger = Ledger()
    journal = await aptio.create(Journal, ledger)
    blockers = [await (await aptio.start_sta(f"target-{i}")).create(Blocker) for i in range(2)]
    outsiders = [await (await aptio.start_sta(f"outsider-{i}")).create(Outsider)
                 for i in range(2)]
    stop = threading.Event()
    pokes: list[aptio.Call[str]] = []

    async def poke_forever(outsider: Any, name: str) -> None:
        n = 0
        while not stop.is_set():
            pokes.append(outsider.poke(journal, f"{name}-{n}"))
            await outsider.wait_sent()
            n += 1
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)

    feeders = [asyncio.create_task(poke_forever(o, f"o{i}")) for i, o in enumerate(outsiders)]
    for _ in range(30):
        blocker = rng.choice(blockers)
        with aptio.input_synchronized():
            synchronized = blocker.wait_released()
        ledger.out.append(synchronized)
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        await blocker.open()
        assert await synchronized == "released"
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
    stop.set()
    await asyncio.gather(*feeders)
    results = await asyncio.gather(*pokes)
    assert ledger.overlaps == 0
    assert sorted(ledger.events) == sorted(results)
    for name in ("o0", "o1"):  # each outsider's calls ran in the order it sent them
        mine = [event for event in ledger.events if event.startswith(name + "-")]
        assert mine == sorted(mine, key=lambda event: int(event.split("-")[1]))


class RejectAll(aptio.MessageFilter):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle_incoming_call(self, info: aptio.CallInfo) -> aptio.ServerCall:
        self.seen.append(info.method)
        return aptio.ServerCall.REJECTED


@pytest.mark.asyncio
async def test_a_message_filter_cannot_turn_an_input_synchronized_call_away(
        main: aptio.Apartment) -> None:
    target = await aptio.start_sta("filtered")
    blocker = await target.create(Blocker)
    target_filter = RejectAll()
    target.set_message_filter(target_filter)
    with aptio.input_synchronized():
        assert await blocker.ping() == "pong"  # COM dispatches it whatever the filter says
    with pytest.raises(aptio.CallRejectedError):
        await blocker.ping()
    assert target_filter.seen == ["ping", "ping"]  # the filter was asked both times
