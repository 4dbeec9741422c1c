"""``python -m aptio demo``: a short narrated tour of apartments, models, calls and shutdown.

Each line of the narration is printed only once what it reports has happened, so the output
follows the real order of events; where two things happen at the same time in different
threads, the narration says so. It synchronizes on events, never on sleeps: the test suite
runs the demo and checks its story.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aptio
from aptio import ThreadingModel


class _Where:
    def where(self) -> str:
        here = aptio.current_apartment()
        name = here.name if here is not None else "no apartment"
        return f"{name} (thread {threading.current_thread().name!r})"


@aptio.coclass(ThreadingModel.SINGLE)
class Single(_Where):
    """Lives in the main STA, whoever creates it."""


@aptio.coclass(ThreadingModel.APARTMENT)
class Apartment(_Where):
    """Lives in its creator's STA (the host STA when created from the MTA)."""


@aptio.coclass(ThreadingModel.FREE)
class Free(_Where):
    """Lives in the MTA; calls run on pool threads."""


@aptio.coclass(ThreadingModel.BOTH)
class Both(_Where):
    """Lives wherever its creator is."""


@aptio.coclass(ThreadingModel.NEUTRAL)
class Neutral(_Where):
    """Lives in the neutral apartment; calls run on the caller's own thread."""


MODELS: list[type[_Where]] = [Single, Apartment, Free, Both, Neutral]


@aptio.coclass
class Creator:
    """Creates one object of each model from the apartment it lives in."""

    async def tour(self) -> list[tuple[str, str]]:
        rows = []
        for cls in MODELS:
            proxy: Any = await aptio.create(cls)
            rows.append((cls.__name__, await proxy.where()))
        return rows


@aptio.coclass(ThreadingModel.FREE)
class MtaCreator(Creator):
    """The same tour, from the MTA."""


@aptio.coclass
class Sleeper(_Where):
    """Takes an hour-long nap, and reports when it started and when it was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()  # asyncio events: set and awaited on this STA's loop
        self.cancelled = asyncio.Event()

    async def nap(self) -> str:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return "woke up"  # pragma: no cover

    async def wait_started(self) -> None:
        await self.started.wait()

    async def wait_cancelled(self) -> None:
        await self.cancelled.wait()


THREAD_NAMES = [
    "Thread names: aptio names the threads it starts 'aptio <apartment>'; 'MainThread' is the",
    "thread that called aptio.run, the main STA. The MTA has two kinds of threads: pool",
    "workers ('aptio MTA worker N') run the sync methods that other apartments call, and one",
    "event-loop thread ('aptio MTA loop') runs coroutine methods. The tour from the MTA is a",
    "coroutine method, so it runs on the MTA loop thread, and the MTA objects it calls (Free,",
    "Both) run there too: a call inside its own apartment needs no thread switch. NEUTRAL",
    "objects run on the thread that calls them.",
]


def _say(text: str = "") -> None:
    print(text, flush=True)


async def tour() -> None:
    main = aptio.current_apartment()
    assert main is not None
    _say(f"aptio {aptio.__version__}: the COM apartment model on asyncio")
    _say(f"1. This thread is the main STA: {main!r}")
    worker = await aptio.start_sta("worker")
    _say(f"2. Started another STA, {worker.name!r}: an event loop on its own thread")
    _say(f"   and the MTA, a worker pool: {aptio.mta()!r}")
    _say("3. One object of each threading model, created from three apartments:")
    creators: list[tuple[str, Any]] = [
        ("main STA", await aptio.create(Creator)),
        ("worker STA", await worker.create(Creator)),
        ("MTA", await aptio.create(MtaCreator)),
    ]
    for label, creator in creators:
        _say(f"   created from the {label}:")
        for model, where in await creator.tour():
            _say(f"     {model:<10} -> {where}")
    for line in THREAD_NAMES:
        _say(f"   {line}")
    _say("4. A call crosses apartments as an awaitable; cancelling it cancels it in its STA:")
    sleeper = await worker.create(Sleeper)

    async def caller() -> None:
        await sleeper.nap()

    task = asyncio.create_task(caller())
    await sleeper.wait_started()
    _say(f"   {worker.name}: nap() started; it sleeps for an hour")
    _say("   main STA: cancelling the task that awaits nap()")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        _say(f"   main STA: the task ended with CancelledError at once, without waiting "
             f"for {worker.name!r}")
    await sleeper.wait_cancelled()
    _say(f"   {worker.name}, meanwhile: nap() got CancelledError at its await and unwound")
    _say(f"5. Shutting {worker.name!r} down; later calls fail with DisconnectedError:")
    await worker.shutdown()
    try:
        await sleeper.where()
    except aptio.DisconnectedError as error:
        _say(f"   DisconnectedError: {error}")
    _say("6. Leaving aptio.run(): every apartment stops and every thread is joined.")


def main() -> None:
    aptio.run(tour)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("aptio ")]
    _say(f"   threads left behind: {leftover or 'none'}")
