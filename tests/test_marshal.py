"""Explicit marshaling (COM_SPEC M1-M3, L3): one-shot tokens, the global interface table,
callbacks bound to an apartment, disconnect; lifetimes checked with weak references."""

from __future__ import annotations

import asyncio
import gc
import queue
import threading
import weakref
from typing import Any

import pytest

import aptio
from aptio.testing import apartment_barrier


@aptio.coclass
class Box:
    def __init__(self, value: int = 0) -> None:
        self.value = value

    def get(self) -> int:
        return self.value

    def ref(self) -> weakref.ref[Any]:
        return weakref.ref(self)

    def where(self) -> str:
        return threading.current_thread().name


async def _collected(ref: weakref.ref[Any], home: aptio.Apartment) -> bool:
    """True once the object is gone (its last reference is dropped on its home thread)."""
    gc.collect()
    await apartment_barrier(home)
    gc.collect()
    return ref() is None


@pytest.mark.asyncio
async def test_a_token_transfers_a_proxy_once(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    box = await sta.create(Box, 7)
    token = aptio.marshal(box)
    assert isinstance(token, aptio.MarshalToken)
    handoff: queue.Queue[aptio.MarshalToken] = queue.Queue()
    handoff.put(token)  # a plain queue: the kind of channel COM says must be marshaled by hand
    results: list[int] = []

    def other_thread() -> None:
        proxy = aptio.unmarshal(handoff.get())
        results.append(proxy.get().result(timeout=30))

    thread = threading.Thread(target=other_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert results == [7]
    with pytest.raises(aptio.MarshalError, match=r"already unmarshaled or released"):
        aptio.unmarshal(token)


@pytest.mark.asyncio
async def test_a_token_keeps_its_object_alive_until_consumed(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    box = await sta.create(Box)
    ref = await box.ref()
    token = aptio.marshal(box)
    del box
    assert not await _collected(ref, sta)
    proxy = aptio.unmarshal(token)
    assert not await _collected(ref, sta)
    del proxy
    assert await _collected(ref, sta)

    box = await sta.create(Box)
    ref = await box.ref()
    token = aptio.marshal(box)
    del box
    assert not await _collected(ref, sta)
    aptio.release_marshal_data(token)  # never unmarshaled: COM's CoReleaseMarshalData
    assert await _collected(ref, sta)
    with pytest.raises(aptio.MarshalError):
        aptio.unmarshal(token)


@pytest.mark.asyncio
async def test_marshal_of_a_raw_instance_in_its_apartment(main: aptio.Apartment) -> None:
    raw = Box(3)
    token = aptio.marshal(raw)
    proxy = aptio.unmarshal(token)
    assert aptio.apartment_of(proxy) is main
    assert await proxy.get() == 3


@pytest.mark.asyncio
async def test_marshal_rejects_what_needs_no_marshaling(main: aptio.Apartment) -> None:
    with pytest.raises(TypeError, match=r"need no marshaling"):
        aptio.marshal({"plain": "dict"})
    with pytest.raises(TypeError, match=r"takes an aptio.MarshalToken"):
        aptio.unmarshal(42)  # type: ignore[arg-type]
    with pytest.raises(aptio.MarshalError, match=r"does not come from this runtime"):
        aptio.unmarshal(aptio.MarshalToken(10**9, "Forged"))


@pytest.mark.asyncio
async def test_the_global_interface_table(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    box = await sta.create(Box, 5)
    git = aptio.GlobalInterfaceTable()
    cookie = git.register(box)
    assert aptio.GlobalInterfaceTable().get(cookie) == box  # one table per process

    @aptio.coclass
    class Reader:
        async def read(self, cookie: int) -> int:
            return await aptio.GlobalInterfaceTable().get(cookie).get()  # type: ignore[no-any-return]

    readers = [await (await aptio.start_sta()).create(Reader) for _ in range(3)]
    free_reader = await aptio.mta().create(aptio.coclass(aptio.ThreadingModel.FREE)(
        type("FreeReader", (Reader,), {})))
    values = await asyncio.gather(*(r.read(cookie) for r in [*readers, free_reader] * 3))
    assert values == [5] * 12
    git.revoke(cookie)
    with pytest.raises(aptio.MarshalError, match=r"no such cookie"):
        git.get(cookie)
    with pytest.raises(aptio.MarshalError):
        git.revoke(cookie)
    with pytest.raises(aptio.MarshalError):
        git.get(123456789)
    with pytest.raises(TypeError):
        git.register(object())


@pytest.mark.asyncio
async def test_registered_objects_live_until_revoked(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    box = await sta.create(Box)
    ref = await box.ref()
    git = aptio.GlobalInterfaceTable()
    cookie = git.register(box)
    del box
    assert not await _collected(ref, sta)
    for _ in range(3):
        assert await git.get(cookie).get() == 0
    assert not await _collected(ref, sta)
    git.revoke(cookie)
    assert await _collected(ref, sta)


@pytest.mark.asyncio
async def test_a_callback_runs_in_the_apartment_that_made_it(main: aptio.Apartment) -> None:
    seen: list[tuple[int, str]] = []

    def progress(step: int) -> str:
        seen.append((step, threading.current_thread().name))
        return f"step {step}"

    async def aprogress(step: int) -> str:
        await asyncio.sleep(0)
        seen.append((step, threading.current_thread().name))
        return f"async step {step}"

    report = aptio.callback(progress)
    areport = aptio.callback(aprogress)
    assert report.apartment is main

    @aptio.coclass
    class Worker:
        async def work(self, report: Any, areport: Any) -> list[str]:
            return [await report(1), await areport(2)]

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class FreeWorker:
        def work(self, report: Any) -> str:
            return report(3).result(timeout=30)  # type: ignore[no-any-return]

    worker = await (await aptio.start_sta()).create(Worker)
    assert await worker.work(report, areport) == ["step 1", "async step 2"]
    free = await aptio.create(FreeWorker)
    assert await free.work(report) == "step 3"
    plain = await asyncio.to_thread(lambda: report(4).result(timeout=30))
    assert plain == "step 4"
    here = threading.current_thread().name
    assert seen == [(1, here), (2, here), (3, here), (4, here)]


def test_callback_bad_input() -> None:
    with pytest.raises(TypeError, match=r"takes a callable"):
        aptio.callback(42)  # type: ignore[arg-type]
    with pytest.raises(aptio.NotInitializedError):
        aptio.callback(print)


@pytest.mark.asyncio
async def test_disconnect_fails_later_calls_through_every_proxy(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Worker:
        def __init__(self) -> None:
            self.go = asyncio.Event()

        async def long(self) -> str:
            await self.go.wait()
            return "finished"

        def open(self) -> None:
            self.go.set()

        def ref(self) -> weakref.ref[Any]:
            return weakref.ref(self)

    worker = await sta.create(Worker)
    ref = await worker.ref()
    other_proxy = aptio.GlobalInterfaceTable().get(aptio.GlobalInterfaceTable().register(worker))
    in_flight = worker.long()
    opener = worker.open()  # already sent: it runs
    aptio.disconnect(worker)
    aptio.disconnect(worker)  # twice: no error
    assert await in_flight == "finished"
    await opener
    for proxy in (worker, other_proxy):
        with pytest.raises(aptio.DisconnectedError, match=r"disconnected"):
            proxy.open()
    with pytest.raises(aptio.DisconnectedError):
        aptio.unwrap(worker)
    assert "disconnected" in repr(worker)
    assert await _collected(ref, sta)  # the apartment let go of it, though proxies remain


@pytest.mark.asyncio
async def test_disconnect_bad_input(main: aptio.Apartment) -> None:
    with pytest.raises(TypeError):
        aptio.disconnect("nothing")
    aptio.disconnect(Box())  # a raw instance with no proxies: nothing to do


@aptio.coclass(aptio.ThreadingModel.APARTMENT, agile=True)
class Agile:
    """Self-synchronized (COM: free-threaded marshaler): usable from every apartment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0

    def hit(self) -> str:
        with self._lock:
            self.hits += 1
        return threading.current_thread().name

    def me(self) -> Agile:
        return self


@pytest.mark.asyncio
async def test_agile_objects_cross_as_themselves(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("elsewhere")
    agile_proxy = await sta.create(Agile)
    raw = aptio.unwrap(agile_proxy)  # works in any apartment
    assert isinstance(raw, Agile)
    assert await agile_proxy.hit() == threading.current_thread().name  # runs right here

    @aptio.coclass
    class Inspector:
        def check(self, value: Any) -> tuple[bool, Any]:
            return aptio.is_proxy(value), value

    inspector = await sta.create(Inspector)
    is_proxy, value = await inspector.check(raw)
    assert not is_proxy
    assert value is raw
    assert await agile_proxy.me() is raw  # a returned agile object is the object itself


@aptio.coclass(aptio.ThreadingModel.NEUTRAL)
class Tally:
    """Read-modify-write with a yield in between: only serialization keeps it exact."""

    def __init__(self) -> None:
        self.count = 0
        self.inside = 0
        self.most_inside = 0

    def bump(self) -> str:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        value = self.count
        threading.Event().wait(0.0001)  # let other threads run in the middle
        self.count = value + 1
        self.inside -= 1
        here = aptio.current_apartment()
        assert here is not None
        return here.kind.name

    async def abump(self) -> str:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        value = self.count
        await asyncio.sleep(0)
        self.count = value + 1
        self.inside -= 1
        here = aptio.current_apartment()
        assert here is not None
        return here.kind.name

    def stats(self) -> tuple[int, int]:
        return self.count, self.most_inside

    async def reenter(self, via: Any, me: Any) -> str:
        return await via.call_back(me)  # type: ignore[no-any-return]


@pytest.mark.asyncio
async def test_neutral_objects_take_one_call_at_a_time_from_every_caller(
    main: aptio.Apartment,
) -> None:
    tally = await aptio.create(Tally)
    stas = [await aptio.start_sta() for _ in range(3)]

    @aptio.coclass
    class Caller:
        async def hammer(self, tally: Any, n: int) -> set[str]:
            kinds = await asyncio.gather(*(tally.bump() if i % 2 else tally.abump()
                                           for i in range(n)))
            return set(kinds)

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class FreeCaller:
        def hammer(self, tally: Any, n: int) -> set[str]:
            return {tally.bump().result(timeout=30) for _ in range(n)}

    callers = [await sta.create(Caller) for sta in stas]
    free = await aptio.create(FreeCaller)

    def plain(n: int) -> None:
        for i in range(n):
            (tally.bump() if i % 2 else tally.abump()).result(timeout=30)

    threads = [threading.Thread(target=plain, args=(40,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    kinds = await asyncio.gather(*(c.hammer(tally, 40) for c in callers),
                                 free.hammer(tally, 40), free.hammer(tally, 40),
                                 tally.abump())
    for thread in threads:
        await asyncio.to_thread(thread.join)
    count, most_inside = await tally.stats()
    assert count == 3 * 40 + 2 * 40 + 1 + 2 * 40
    assert most_inside == 1
    assert kinds[-1] == "NEUTRAL"
    assert all(k == {"NEUTRAL"} for k in kinds[:-1])


@pytest.mark.asyncio
async def test_a_neutral_object_reentered_by_its_own_chain_does_not_deadlock(
    main: aptio.Apartment,
) -> None:
    @aptio.coclass
    class Via:
        async def call_back(self, tally: Any) -> str:
            return await tally.abump()  # type: ignore[no-any-return]

    tally = await aptio.create(Tally)
    via = await (await aptio.start_sta()).create(Via)
    assert await tally.reenter(via, tally) == "NEUTRAL"
