"""``python -m aptio demo``: a short narrated tour of apartments, models, calls and shutdown."""

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
class Sleeper:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def nap(self) -> str:
        self.log.append("nap started")
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.log.append("nap cancelled inside its STA")
            self.cancelled.set()
            raise
        return "woke up"  # pragma: no cover

    async def wait_started(self) -> None:
        await self.started.wait()

    async def wait_cancelled(self) -> None:
        await self.cancelled.wait()

    def history(self) -> list[str]:
        return list(self.log)


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
    _say("4. A call crosses apartments as an awaitable; cancelling it cancels it remotely:")
    sleeper = await worker.create(Sleeper)
    nap = asyncio.ensure_future(sleeper.nap())
    await sleeper.wait_started()
    nap.cancel()
    try:
        await nap
    except asyncio.CancelledError:
        _say("   the caller saw CancelledError at once; the worker's coroutine unwinds next")
    await sleeper.wait_cancelled()
    for line in await sleeper.history():
        _say(f"   {worker.name}: {line}")
    _say(f"5. Shutting {worker.name!r} down; later calls fail with DisconnectedError:")
    await worker.shutdown()
    try:
        await sleeper.history()
    except aptio.DisconnectedError as error:
        _say(f"   DisconnectedError: {error}")
    _say("6. Leaving aptio.run(): every apartment stops and every thread is joined.")


def main() -> None:
    aptio.run(tour)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("aptio ")]
    _say(f"   threads left behind: {leftover or 'none'}")
