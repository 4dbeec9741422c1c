"""Causality (COM: causality IDs and CALLTYPE): the logical thread crosses every hop, sync and
async, STA and MTA, and ``current_call()`` names the innermost call the code runs in."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

import aptio
from aptio import CallType


@aptio.coclass
class Hop:
    """Forwards a call along a path of objects and reports the call info seen at each hop."""

    def info(self) -> aptio.CallInfo | None:
        return aptio.current_call()

    async def ainfo(self) -> aptio.CallInfo | None:
        await asyncio.sleep(0)
        return aptio.current_call()

    async def path(self, rest: list[Any]) -> list[aptio.CallInfo]:
        here = aptio.current_call()
        assert here is not None
        if not rest:
            return [here]
        head, *tail = rest
        return [here, *await head.path(tail)]

    def sync_path(self, rest: list[Any]) -> list[aptio.CallInfo]:
        """A sync MTA method: forwards with a blocking wait."""
        here = aptio.current_call()
        assert here is not None
        if not rest:
            return [here]
        head, *tail = rest
        return [here, *head.path(tail).result(timeout=30)]


@aptio.coclass(aptio.ThreadingModel.FREE)
class FreeHop(Hop):
    pass


@pytest.mark.asyncio
async def test_current_call_is_none_outside_calls(main: aptio.Apartment) -> None:
    assert aptio.current_call() is None


@pytest.mark.asyncio
async def test_call_info_fields(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("target")
    hop = await sta.create(Hop)
    info = await hop.info()
    assert info is not None
    assert info.method == "info"
    assert info.caller is main
    assert info.apartment is sta
    assert info.call_type is CallType.TOPLEVEL
    assert not info.cancelled
    with pytest.raises(AttributeError):
        info.method = "other"  # type: ignore[misc]  # frozen


@pytest.mark.asyncio
async def test_top_level_calls_get_distinct_ids(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    hop = await sta.create(Hop)
    infos = [await hop.info() for _ in range(5)] + [await hop.ainfo() for _ in range(5)]
    ids = [info.causality_id for info in infos if info is not None]
    assert len(set(ids)) == 10


@pytest.mark.asyncio
async def test_one_chain_across_stas_and_the_mta(main: aptio.Apartment) -> None:
    stas = [await aptio.start_sta() for _ in range(3)]
    hops: list[Any] = [await sta.create(Hop) for sta in stas]
    free: list[Any] = [await aptio.create(FreeHop) for _ in range(2)]
    route = [hops[1], free[0], hops[2], free[1], hops[0]]
    infos = await hops[0].path(route)
    assert len({info.causality_id for info in infos}) == 1
    assert [info.apartment for info in infos] == [
        stas[0], stas[1], aptio.mta(), stas[2], aptio.mta(), stas[0]
    ]
    callers = [info.caller for info in infos]
    assert callers[0] is main
    assert callers[1:] == [stas[0], stas[1], aptio.mta(), stas[2], aptio.mta()]


@pytest.mark.asyncio
async def test_the_chain_crosses_blocking_waits_on_mta_threads(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    hop = await sta.create(Hop)
    free = await aptio.create(FreeHop)
    infos = await free.sync_path([hop, hop])
    assert len({info.causality_id for info in infos}) == 1
    assert infos[0].method == "sync_path"


@pytest.mark.asyncio
async def test_call_types_seen_by_an_sta_that_waits(main: aptio.Apartment) -> None:
    sta_a = await aptio.start_sta("A")
    sta_b = await aptio.start_sta("B")

    @aptio.coclass
    class Waiter:
        def __init__(self) -> None:
            self.release = asyncio.Event()
            self.waiting = asyncio.Event()

        async def call_out(self, other: Any, me: Any) -> aptio.CallInfo:
            # While this awaits B, B calls back into this STA on the same chain.
            return await other.call_back(me)  # type: ignore[no-any-return]

        async def hold(self, other: Any) -> None:
            self.waiting.set()
            await other.park()

        async def wait_waiting(self) -> None:
            await self.waiting.wait()

        def info(self) -> aptio.CallInfo | None:
            return aptio.current_call()

    @aptio.coclass
    class Peer:
        def __init__(self) -> None:
            self.gate = asyncio.Event()

        async def call_back(self, waiter: Any) -> aptio.CallInfo:
            return await waiter.info()  # type: ignore[no-any-return]

        async def park(self) -> None:
            await self.gate.wait()

        def open(self) -> None:
            self.gate.set()

    waiter = await sta_a.create(Waiter)
    peer = await sta_b.create(Peer)
    nested = await waiter.call_out(peer, waiter)
    assert nested.call_type is CallType.NESTED

    holding = waiter.hold(peer)  # A now waits on B for another chain
    await waiter.wait_waiting()
    other = await waiter.info()
    assert other is not None
    assert other.call_type is CallType.TOPLEVEL_CALLPENDING
    await peer.open()
    await holding
    idle = await waiter.info()
    assert idle is not None
    assert idle.call_type is CallType.TOPLEVEL


_user_var: contextvars.ContextVar[str] = contextvars.ContextVar("user_var", default="unset")


@aptio.coclass
class ReadsContext:
    def read(self) -> str:
        return _user_var.get()

    async def aread(self) -> str:
        return _user_var.get()


@pytest.mark.asyncio
async def test_context_variables_do_not_cross_apartments(main: aptio.Apartment) -> None:
    """Only causality crosses: an apartment boundary is an isolation boundary, as a thread
    boundary is in COM. A same-apartment call is a direct call and sees the caller's context."""
    sta = await aptio.start_sta()
    far = await sta.create(ReadsContext)
    near = await aptio.create(ReadsContext)
    token = _user_var.set("caller's value")
    try:
        for _ in range(3):  # several posts, so later drains cannot inherit an earlier poster
            assert await far.read() == "unset"
            assert await far.aread() == "unset"
        assert await near.read() == "caller's value"
        assert await near.aread() == "caller's value"
    finally:
        _user_var.reset(token)


@pytest.mark.asyncio
async def test_a_neutral_caller_does_not_leak_the_neutral_apartment(
    main: aptio.Apartment,
) -> None:
    @aptio.coclass(aptio.ThreadingModel.NEUTRAL)
    class Neutral:
        async def call_into(self, target: Any) -> Any:
            assert aptio.current_apartment() is not None
            assert aptio.current_apartment().kind is aptio.ApartmentKind.NEUTRAL
            return await target.where()

    @aptio.coclass(aptio.ThreadingModel.FREE)
    class ViaMta:
        async def run(self, neutral: Any, target: Any) -> Any:
            return await neutral.call_into(target)

    @aptio.coclass
    class Where:
        def where(self) -> aptio.Apartment | None:
            return aptio.current_apartment()

        async def awhere(self) -> aptio.Apartment | None:
            return aptio.current_apartment()

    sta = await aptio.start_sta()
    neutral = await aptio.create(Neutral)
    here = await aptio.create(Where)  # same thread as the neutral caller: an inline call
    there = await sta.create(Where)
    assert await neutral.call_into(here) is main
    assert await neutral.call_into(there) is sta
    via = await aptio.create(ViaMta)
    assert await via.run(neutral, there) is sta


@aptio.coclass
class Nesting:
    """Reports ``current_call()`` before, inside and after nested same-apartment calls."""

    def outer_sync(self, me: Any) -> list[Any]:
        seen = [_method_of(aptio.current_call())]
        inner_sync = me.inner_sync()  # same apartment: runs inline, before this line returns
        seen.append(_method_of(aptio.current_call()))
        inner_async = me.inner_async()  # a coroutine call started from inside a sync one
        seen.append(_method_of(aptio.current_call()))
        return [*seen, inner_sync.result(), inner_async]

    def inner_sync(self) -> str:
        return _method_of(aptio.current_call())

    async def inner_async(self) -> str:
        before = _method_of(aptio.current_call())
        await asyncio.sleep(0)
        return f"{before}/{_method_of(aptio.current_call())}"

    def chain_ids(self, me: Any) -> tuple[int, int]:
        outer = aptio.current_call()
        inner = me.inner_info().result()
        assert outer is not None and inner is not None
        return outer.causality_id, inner.causality_id

    def inner_info(self) -> aptio.CallInfo | None:
        return aptio.current_call()


def _method_of(info: aptio.CallInfo | None) -> str:
    return "-" if info is None else info.method


@pytest.mark.asyncio
async def test_nested_inline_calls_see_themselves_and_restore_the_outer_call(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    me = await sta.create(Nesting)
    seen = await me.outer_sync(me)
    assert seen[:3] == ["outer_sync", "outer_sync", "outer_sync"]
    assert seen[3] == "inner_sync"
    # A coroutine call started inside the sync one (its first step runs inside it on 3.12+)
    # sees itself, before and after its first await.
    inner_async = seen[4]
    assert isinstance(inner_async, aptio.Call)
    assert await inner_async == "inner_async/inner_async"
    outer_id, inner_id = await me.chain_ids(me)
    assert outer_id == inner_id  # a call nested in a sync call joins its chain


@pytest.mark.asyncio
async def test_background_work_joins_the_chain_only_from_coroutine_methods(
    main: aptio.Apartment,
) -> None:
    """A task made inside a coroutine method copies its context, and with it the call; a task
    or callback a sync method schedules runs after the method returned, outside any call."""

    @aptio.coclass
    class Spawner:
        def __init__(self) -> None:
            self.seen: list[str] = []
            self.tasks: list[asyncio.Task[None]] = []
            self.done = asyncio.Event()

        async def _probe(self) -> None:
            self.seen.append(_method_of(aptio.current_call()))
            if len(self.seen) == 3:
                self.done.set()

        def _record(self) -> None:
            self.seen.append(_method_of(aptio.current_call()))
            if len(self.seen) == 3:
                self.done.set()

        async def from_coroutine(self) -> None:
            self.tasks.append(asyncio.get_running_loop().create_task(self._probe()))

        def from_sync(self) -> None:
            loop = asyncio.get_running_loop()
            self.tasks.append(loop.create_task(self._probe()))
            loop.call_soon(self._record)

        async def results(self) -> list[str]:
            await self.done.wait()
            return sorted(self.seen)

    sta = await aptio.start_sta()
    spawner = await sta.create(Spawner)
    await spawner.from_coroutine()
    await spawner.from_sync()
    assert await spawner.results() == ["-", "-", "from_coroutine"]
