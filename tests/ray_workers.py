"""Plain Ray tasks and actors (no aptio of their own) that receive aptio proxies through Ray:
as arguments, inside other values, or through Ray's object store. Ray's workers import this
module (the tests' directory is on their path)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import Any

import ray

import aptio
import aptio.ray

#: How long a worker waits for one call (a bound for a loaded machine, never a synchronization).
BOUND = 60.0


@ray.remote
def inc(counter: Any, by: int) -> tuple[int, int]:
    """A plain task: call ``counter.inc(by)`` from the worker's own thread (no apartment)."""
    return counter.inc(by).result(timeout=BOUND), os.getpid()


@ray.remote
def inc_from_store(refs: list[Any], by: int) -> int:
    """A plain task: fetch a proxy from Ray's object store, then call it."""
    (counter,) = ray.get(refs)
    result: int = counter.inc(by).result(timeout=BOUND)
    return result


@ray.remote
def record_in_order(service: Any, count: int) -> list[Any]:
    """Send ``count`` calls without waiting, sync and coroutine methods mixed, then read the
    log: calls from one caller start in the order they were sent."""
    calls = [service.record(i) if i % 3 else service.arecord(i) for i in range(count)]
    for call in calls:
        call.result(timeout=BOUND)
    log: list[Any] = service.get_log().result(timeout=BOUND)
    return log


@ray.remote
def failure_of(service: Any, message: str) -> tuple[str, str, str]:
    """The error of a call that raises, as the worker sees it: type, message, the note."""
    try:
        service.fail(message).result(timeout=BOUND)
    except Exception as error:  # the method's own exception
        notes = getattr(error, "__notes__", [""])
        return type(error).__qualname__, str(error), notes[0]
    return "", "", ""


@ray.remote
def error_of(proxy: Any, method: str) -> tuple[str, str]:
    """The type and message of the error ``proxy.method()`` raises here (or of nothing)."""
    try:
        getattr(proxy, method)().result(timeout=BOUND)
    except aptio.AptioError as error:
        return type(error).__qualname__, str(error)
    return "", ""


@ray.remote
def cancel_a_hanging_call(service: Any) -> bool:
    """Start ``service.hang``, wait until it runs there, cancel it from here: the call is
    cancelled where it runs (its coroutine sees CancelledError)."""
    call = service.hang("from a Ray task")
    service.wait_started().result(timeout=BOUND)
    call.cancel()
    try:
        call.result(timeout=BOUND)
    except asyncio.CancelledError:
        return True
    return False


@ray.remote
def where_the_runtime_runs(proxy: Any) -> list[str]:
    """The aptio threads of this worker (its background runtime), once a proxy arrived."""
    assert aptio.is_proxy(proxy)
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("aptio"))


@ray.remote
class Holder:
    """A plain Ray actor (async, as most are) that keeps proxies and calls them later."""

    def __init__(self) -> None:
        self.kept: list[Any] = []
        gc.disable()  # as an idle Ray worker: releasing a proxy must need no collection

    def keep(self, proxy: Any) -> int:
        self.kept.append(proxy)
        return len(self.kept)

    async def call_kept(self, method: str, *args: Any) -> Any:
        return await getattr(self.kept[-1], method)(*args)

    async def fetch(self, refs: list[Any]) -> int:
        """``await`` an object ref holding a proxy (Ray unpickles it on a thread of its own),
        keep the proxy, and call it."""
        proxy = await refs[0]
        self.kept.append(proxy)
        result: int = await proxy.inc(1)
        return result

    async def pass_on(self, by: int) -> tuple[int, int]:
        """Hand the kept proxy on to a Ray task of its own (a proxy that arrived through Ray,
        pickled again)."""
        result: tuple[int, int] = await inc.remote(self.kept[-1], by)
        return result

    def get_kept(self) -> Any:
        """The kept proxy, as a result (Ray pickles it here, again)."""
        return self.kept[-1]

    def drop(self) -> None:
        self.kept.clear()


@aptio.coclass
class Dispatcher:
    """Lives in an aptio server on Ray and hands proxies to plain Ray tasks from there."""

    async def to_a_task(self, proxy: Any, by: int) -> int:
        value, _ = await inc.remote(proxy, by)
        result: int = value
        return result


@aptio.ray.server("ray-shared", num_cpus=0)
@aptio.coclass
class RayShared:
    """Created by ``aptio.create`` in the one server on Ray named "ray-shared"."""

    def pid(self) -> int:
        return os.getpid()

    async def sibling_pid(self) -> int:
        """Inside its server, ``create`` makes another one there."""
        sibling = await aptio.create(RayShared)
        result: int = await sibling.pid()
        return result


@aptio.ray.server(single_use=True, num_cpus=0)
@aptio.coclass
class RayOwn(RayShared):
    """Created by ``aptio.create`` in a server on Ray of its own, which ends with it."""

    async def sibling_pid(self) -> int:
        sibling = await aptio.create(RayOwn)
        result: int = await sibling.pid()
        return result
