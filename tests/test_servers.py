"""Apartments in other processes (COM's local server): the same proxies, calls, errors and
guarantees as in one process."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import weakref
from typing import Any

import pytest

import aptio

from process_state import ended_within
from remote_classes import (
    Bouncer,
    Chained,
    Client,
    Custom,
    FreeService,
    Guarded,
    OwnServer,
    Service,
    SharedService,
)

pytestmark = pytest.mark.timeout(120)


@pytest.mark.asyncio
async def test_objects_in_a_server_answer_calls_from_here(main: aptio.Apartment) -> None:
    async with await aptio.start_server("basics") as server:
        assert server.pid != os.getpid() and server.is_alive
        service = await server.create(Service, 10)
        assert aptio.is_proxy(service)
        assert await service.where() == (server.pid, "MainThread")  # its main STA
        assert await service.inc() == 11
        assert await service.ainc(4) == 15
        assert aptio.apartment_of(service).kind is aptio.ApartmentKind.MAIN_STA
        assert "server 'basics'" in aptio.apartment_of(service).name
        assert await service.caller_name() == "main STA of the client process"
        sent = [1, 2]
        assert await service.mutate(sent) == [1, 2, 99]
        assert sent == [1, 2]  # values cross by value
        assert [x async for x in service.rows(5)] == [0, 1, 2, 3, 4]
        assert [x async for x in service.arows(3)] == [0, 1, 2]
        child = await service.make_child(3)  # a coclass result crosses by reference
        assert aptio.is_proxy(child) and await child.inc() == 4
    assert not server.is_alive
    assert server.pid is not None


@pytest.mark.asyncio
async def test_threading_models_apply_inside_the_server(main: aptio.Apartment) -> None:
    async with await aptio.start_server("models") as server:
        free = await server.create(FreeService)
        pid, thread = await free.where()
        assert pid == server.pid and thread.startswith("aptio MTA worker")
        sta = await server.start_sta("worker")
        there = await sta.create(Service)
        assert await there.where() == (server.pid, "aptio worker")
        assert await there.apartment_name() == "worker"
        mta = await server.mta().create(Service)  # APARTMENT from the MTA: the host STA
        assert (await mta.where())[1] == "aptio host STA"


@pytest.mark.asyncio
async def test_errors_keep_their_type_and_carry_the_remote_traceback(
    main: aptio.Apartment,
) -> None:
    async with await aptio.start_server("errors") as server:
        service = await server.create(Service)
        with pytest.raises(Custom, match=r"^nope") as raised:
            await service.fail("nope")
        (note,) = raised.value.__notes__
        assert "Raised in server 'errors'" in note and "in fail" in note
        with pytest.raises(aptio.RemoteError, match="Unpicklable: it holds a lock") as foreign:
            await service.fail_unpicklable()
        assert foreign.value.type_name == "remote_classes.Unpicklable"
        assert "fail_unpicklable" in foreign.value.traceback_text
        with pytest.raises(aptio.NotPicklableError, match=r"result of Service\.unpicklable"):
            await service.unpicklable_result()
        with pytest.raises(aptio.NotPicklableError, match="argument 1"):
            await service.record(threading.Lock())
        assert await service.get_log() == []  # nothing was sent
        with pytest.raises(AttributeError, match="has no method 'nope'"):
            service.nope()
        assert await service.inc() == 1  # the object is fine


class _Held:
    """Something a caller's frame holds while its call fails (a proxy, say)."""


@pytest.mark.asyncio
async def test_a_failed_call_does_not_keep_its_callers_frames_alive(
    main: aptio.Apartment,
) -> None:
    # The error's traceback holds the frames it went through; if it also held the call, which
    # holds the error, what those frames hold would wait for a garbage collection (in a Ray
    # worker that can be never).
    async with await aptio.start_server("cycles") as server:
        service = await server.create(Service)

        async def awaiting(held: _Held) -> bool:
            try:
                await service.fail("awaited")
            except Custom:
                return True
            return False

        caught: list[bool] = []

        def blocking(held: _Held) -> None:
            try:
                service.fail("blocked").result()
            except Custom:
                caught.append(True)

        enabled = gc.isenabled()
        gc.disable()
        try:
            held = _Held()
            alive = weakref.ref(held)
            assert await awaiting(held)
            del held
            await asyncio.sleep(0)  # the reply woke this Task inside its handling: unwind
            assert alive() is None
            held = _Held()
            alive = weakref.ref(held)
            thread = threading.Thread(target=blocking, args=(held,))
            del held
            thread.start()
            await asyncio.to_thread(thread.join)  # its frames are gone
            assert caught == [True]
            assert alive() is None
        finally:
            if enabled:
                gc.enable()


@pytest.mark.asyncio
async def test_calls_from_one_caller_start_in_order(main: aptio.Apartment) -> None:
    async with await aptio.start_server("order") as server:
        service = await server.create(Service)
        sta = await aptio.start_sta("other caller")
        calls = [service.record(i) if i % 3 else service.arecord(i) for i in range(600)]
        await asyncio.gather(*calls)
        assert await service.get_log() == list(range(600))
        del sta


@pytest.mark.asyncio
async def test_cancelling_crosses_the_process_boundary(main: aptio.Apartment) -> None:
    async with await aptio.start_server("cancel") as server:
        service = await server.create(Service)
        task = asyncio.create_task(service.hang("awaited"))
        await service.wait_started()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while "awaited" not in await service.get_cancelled():
            await service.inc(0)  # a round trip: the cancel arrived before it
        # A sync method cannot be interrupted: it polls current_call().cancelled, which the
        # cancel sets though the method's thread is busy (it arrives on another connection).
        worker = await server.start_sta("busy")
        busy_service = await worker.create(Service)
        probe = await server.create(FreeService)  # MTA: free while the busy STA is not
        busy = busy_service.busy_wait(60.0)
        await probe.wait_flag("busy started")
        busy.cancel()
        await probe.wait_flag("busy saw the cancel")
        assert await busy_service.inc() == 1  # the STA is free again
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await service.hang("timeout")


@pytest.mark.asyncio
async def test_objects_and_callbacks_cross_back_by_reference(main: aptio.Apartment) -> None:
    async with await aptio.start_server("callbacks") as server:
        service = await server.create(Service)
        free = await server.create(FreeService)
        mine = await aptio.create(Client)
        here = (os.getpid(), threading.current_thread().name)
        assert await service.acall_back(mine) == here
        assert await free.call_back(mine) == here  # blocking, from a server MTA thread
        assert await service.acall_back(Client()) == here  # a raw object of this apartment
        ping = aptio.callback(lambda: "called back")
        assert await service.acall_back(_Where(ping)) == "called back"


class _Where:
    """Plain data holding a callback: crosses by value, its callback by reference."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def where(self) -> Any:
        return self.callback()


@pytest.mark.asyncio
async def test_a_chain_that_leaves_and_comes_back_is_let_in(main: aptio.Apartment) -> None:
    async with await aptio.start_server("chains") as server:
        bouncer = await server.create(Bouncer)
        chained = await aptio.create(Chained)
        assert await chained.go(bouncer, chained) == ["go", "back", "back"]


@pytest.mark.asyncio
async def test_objects_live_while_any_process_holds_a_proxy(main: aptio.Apartment) -> None:
    async with await aptio.start_server("lifetime") as server:
        keeper = await server.create(Service)
        base = await keeper.live_count()
        other = await server.create(Service)
        assert await keeper.live_count() == base + 1
        del other
        gc.collect()
        while await keeper.live_count() != base:  # the release is on its way
            await server.ping()
        mine = await aptio.create(Client)
        ref = _weak(mine)
        await keeper.keep(mine)
        del mine
        gc.collect()
        assert ref() is not None  # the server holds it
        await keeper.drop()
        while ref() is not None:
            await server.ping()
            gc.collect()


@pytest.mark.asyncio
async def test_an_object_goes_with_its_last_proxy_in_a_server_that_never_collects(
    main: aptio.Apartment,
) -> None:
    # An idle Ray worker may never run a garbage collection: the calls that created and used
    # an object there must hold it in no reference cycle once they are done.
    async with await aptio.start_server("no-collection") as server:
        keeper = await server.create(Service)
        assert await keeper.collect_garbage(False)
        base = await keeper.live_count()
        service = await server.create(Service)  # the control object's async create()
        assert await service.inc() == 1  # a sync call
        assert await service.ainc(1) == 2  # a coroutine call
        del service
        async with asyncio.timeout(60):  # a bound for a loaded machine
            while await keeper.live_count() != base:  # the release is on its way
                await server.ping()
        assert not await keeper.collect_garbage(True)


def _weak(proxy: Any) -> Any:
    import weakref

    return weakref.ref(aptio.unwrap(proxy))


@pytest.mark.asyncio
async def test_registered_classes_are_created_in_their_servers(main: aptio.Apartment) -> None:
    shared = await aptio.create(SharedService)
    again = await aptio.create(SharedService)
    pid = (await shared.where())[0]
    assert pid != os.getpid() and (await again.where())[0] == pid  # one server, multiple-use
    own = await aptio.create(OwnServer)
    own_pid = await own.pid()
    second = await aptio.create(OwnServer)
    assert own_pid not in (pid, await second.pid())  # a server per object
    del own
    gc.collect()
    # the single-use server exits once its object is released
    assert await ended_within(own_pid, 20)



class RetrySoon(aptio.MessageFilter):
    def __init__(self) -> None:
        self.asked: list[str] = []

    def retry_rejected_call(self, info: aptio.CallInfo, elapsed: float,
                            verdict: aptio.ServerCall) -> float | None:
        self.asked.append(verdict.name)
        return 0.0


@pytest.mark.asyncio
async def test_message_filters_see_incoming_calls_in_the_servers_stas(
        main: aptio.Apartment) -> None:
    async with await aptio.start_server("filtered") as server:
        sta = await server.start_sta("guarded")
        guarded = await sta.create(Guarded)
        await guarded.guard("inc", 1, "REJECTED")
        with pytest.raises(aptio.CallRejectedError, match="REJECTED"):
            await guarded.inc()  # no filter here: the caller gives up at once
        assert await guarded.inc() == 1  # ran once: the rejected call never did
        await guarded.guard("inc", 2, "RETRYLATER")
        retry = RetrySoon()
        main.set_message_filter(retry)
        try:
            assert await guarded.inc() == 2  # the caller's filter retried it across
        finally:
            main.set_message_filter(None)
        assert retry.asked == ["RETRYLATER", "RETRYLATER"]
        seen = await guarded.seen()
        assert seen[:3] == [("inc", "TOPLEVEL")] * 3 and seen[-1] == ("seen", "TOPLEVEL")


@pytest.mark.asyncio
async def test_a_thread_keeps_no_link_to_servers_that_are_gone(main: aptio.Apartment) -> None:
    from aptio._call.context import thread_state

    links = thread_state().caller_links
    for round_ in range(4):
        async with await aptio.start_server(f"links-{round_}") as server:
            service = await server.create(Service)
            assert await service.inc() == 1
            kept = {key: link for key, (_, link) in links.items()}
            assert await service.inc() == 2  # the second call takes the link kept
            assert {key: link for key, (_, link) in links.items()} == kept
        del service
    async with await aptio.start_server("links-last") as server:
        service = await server.create(Service)
        assert await service.inc() == 1
        # The links to the servers shut down went as this thread chose a new one.
        open_links = [link for _, link in links.values() if not link.connection.closed]
        assert len(links) == len(open_links) == 1
