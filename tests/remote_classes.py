"""Coclasses the server tests create in other processes (a module the servers can import)."""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import aptio
from aptio import ThreadingModel

#: Flags shared by every object of the process (a FREE probe reads them while an STA is busy).
FLAGS: dict[str, aptio.Event] = {}


def flag(name: str) -> aptio.Event:
    return FLAGS.setdefault(name, aptio.Event())


class Unpicklable(Exception):
    """An exception that does not pickle (it holds a lock)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class Custom(Exception):
    pass


@aptio.coclass
class Service:
    """Lives in a server's STA: reports where it runs, holds a log, fails on demand."""

    live: ClassVar[int] = 0

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.log: list[Any] = []
        self.gate = aptio.Event()
        self.started = aptio.Event()
        self.cancelled: list[str] = []
        Service.live += 1

    def __del__(self) -> None:
        Service.live -= 1

    def where(self) -> tuple[int, str]:
        return os.getpid(), threading.current_thread().name

    def inc(self, by: int = 1) -> int:
        self.value += by
        return self.value

    async def ainc(self, by: int = 1) -> int:
        await asyncio.sleep(0)
        self.value += by
        return self.value

    def record(self, item: Any) -> None:
        self.log.append(item)

    async def arecord(self, item: Any) -> None:
        self.log.append(item)

    def get_log(self) -> list[Any]:
        return list(self.log)

    def mutate(self, items: list[int]) -> list[int]:
        items.append(99)  # a copy: the caller's list does not change
        return items

    def fail(self, message: str) -> None:
        raise Custom(message)

    def fail_unpicklable(self) -> None:
        raise Unpicklable("it holds a lock")

    def unpicklable_result(self) -> Any:
        return threading.Lock()

    async def hang(self, tag: str) -> None:
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(tag)
            raise

    def busy_wait(self, seconds: float) -> bool:
        """A sync method that cannot be interrupted: it polls for cancellation."""
        flag("busy started").set()
        info = aptio.current_call()
        assert info is not None
        event = threading.Event()
        for _ in range(int(seconds * 1000)):
            if info.cancelled:
                flag("busy saw the cancel").set()
                return False
            event.wait(0.001)
        return True

    async def wait_flag(self, name: str) -> None:
        await flag(name).wait()

    async def wait_started(self) -> None:
        await self.started.wait()


    def get_cancelled(self) -> list[str]:
        return list(self.cancelled)

    def call_back(self, target: Any, *args: Any) -> Any:
        """Call ``target.where()`` (a proxy into the caller's process) and return the answer."""
        return target.where().result()

    async def acall_back(self, target: Any) -> Any:
        return await target.where()

    def keep(self, thing: Any) -> None:
        self.kept = thing

    def drop(self) -> None:
        self.kept = None

    async def call_kept_inc(self) -> int:
        """Call the kept proxy (an object of a third process)."""
        result: int = await self.kept.inc()
        return result

    def rows(self, n: int) -> Iterator[int]:
        try:
            yield from range(n)
        finally:
            self.log.append("rows closed")

    async def arows(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    def make_child(self, start: int) -> Service:
        return Service(start)

    def big(self, size: int) -> bytes:
        return b"x" * size

    def live_count(self) -> int:
        return Service.live

    def collect_garbage(self, enabled: bool) -> bool:
        """Turn this process's garbage collector on or off; returns whether it was on."""
        was = gc.isenabled()
        if enabled:
            gc.enable()
        else:
            gc.disable()
        return was

    def apartment_name(self) -> str:
        here = aptio.current_apartment()
        return here.name if here is not None else "none"

    def caller_name(self) -> str:
        info = aptio.current_call()
        assert info is not None and info.caller is not None
        return info.caller.name


@aptio.coclass(ThreadingModel.FREE)
class FreeService(Service):
    pass


@aptio.coclass(reentrancy=aptio.Reentrancy.CALL_CHAIN)
class Chained:
    """Serialized per call chain: a callback of the same chain is let back in."""

    def __init__(self) -> None:
        self.entered: list[str] = []

    async def go(self, bouncer: Any, me: Any) -> list[str]:
        self.entered.append("go")
        self.entered.append(await bouncer.bounce(me))  # leaves the process, comes back
        return self.entered

    def back(self) -> str:
        self.entered.append("back")
        return "back"


@aptio.coclass
class Bouncer:
    """Lives in a server: calls a proxy it is given (a chain leaving and coming back)."""

    async def bounce(self, target: Any) -> str:
        result: str = await target.back()
        return result


@aptio.coclass
class Client:
    """Lives in the client: the object a server calls back."""

    def where(self) -> tuple[int, str]:
        return os.getpid(), threading.current_thread().name


@aptio.local_server("shared-services")
@aptio.coclass
class SharedService(Service):
    pass


@aptio.local_server(single_use=True)
@aptio.coclass
class OwnServer(Service):
    def pid(self) -> int:
        return os.getpid()


class Gatekeeper(aptio.MessageFilter):
    """Turns away the first ``refusals`` calls to ``method``; records what it saw."""

    def __init__(self, method: str, refusals: int, verdict: aptio.ServerCall) -> None:
        self.method = method
        self.refusals = refusals
        self.verdict = verdict
        self.seen: list[tuple[str, str]] = []

    def handle_incoming_call(self, info: aptio.CallInfo) -> aptio.ServerCall:
        self.seen.append((info.method, info.call_type.name))
        if info.method == self.method and self.refusals:
            self.refusals -= 1
            return self.verdict
        return aptio.ServerCall.ISHANDLED


@aptio.coclass
class Guarded(Service):
    """Installs a message filter in its own (server) STA."""

    def guard(self, method: str, refusals: int, verdict: str) -> None:
        self.gatekeeper = Gatekeeper(method, refusals, aptio.ServerCall[verdict])
        aptio.current_apartment().set_message_filter(self.gatekeeper)

    def seen(self) -> list[tuple[str, str]]:
        return list(self.gatekeeper.seen)


def rogue_payload(path: str) -> bytes:
    """A pickle whose loading would create ``path``."""

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (path, "w"))

    return pickle.dumps(Exploit())
