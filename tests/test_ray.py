"""aptio servers on a Ray cluster (aptio.ray): the same proxies, calls, errors and guarantees
as a local server, carried on Ray."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'aptio[ray]'")

import aptio  # noqa: E402
import aptio.ray  # noqa: E402

import ray_workers  # noqa: E402
from process_state import ended_within  # noqa: E402
from remote_classes import (  # noqa: E402
    Bouncer,
    Chained,
    Client,
    Custom,
    FreeService,
    Service,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("ray_cluster")]


@pytest.mark.asyncio
async def test_objects_in_a_server_on_ray_answer_calls_from_here(
    main: aptio.Apartment,
) -> None:
    async with await aptio.ray.start_server("basics") as server:
        assert server.pid != os.getpid() and server.is_alive
        assert server.address.startswith("ray:")
        service = await server.create(Service, 10)
        assert aptio.is_proxy(service)
        assert await service.where() == (server.pid, "aptio main STA")  # its main STA
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
        await server.ping()
    assert not server.is_alive
    with pytest.raises(aptio.DisconnectedError, match="server 'basics'"):
        await service.inc()


@pytest.mark.asyncio
async def test_threading_models_and_remote_apartments_apply_on_ray(
    main: aptio.Apartment,
) -> None:
    async with await aptio.ray.start_server("models") as server:
        free = await server.create(FreeService)
        pid, thread = await free.where()
        assert pid == server.pid and thread.startswith("aptio MTA worker")
        sta = await server.start_sta("worker")
        there = await sta.create(Service)
        assert await there.where() == (server.pid, "aptio worker")
        assert await there.apartment_name() == "worker"
        mta = await server.mta().create(Service)  # APARTMENT from the MTA: the host STA
        assert (await mta.where())[1] == "aptio host STA"
        await sta.shutdown()
        with pytest.raises(aptio.DisconnectedError):
            await there.inc()


@pytest.mark.asyncio
async def test_errors_on_ray_keep_their_type_and_carry_the_remote_traceback(
    main: aptio.Apartment,
) -> None:
    async with await aptio.ray.start_server("errors") as server:
        service = await server.create(Service)
        with pytest.raises(Custom, match=r"^nope") as raised:
            await service.fail("nope")
        (note,) = raised.value.__notes__
        assert "Raised in server 'errors'" in note and "in fail" in note
        with pytest.raises(aptio.RemoteError, match="Unpicklable: it holds a lock") as foreign:
            await service.fail_unpicklable()
        assert "fail_unpicklable" in foreign.value.traceback_text
        with pytest.raises(aptio.NotPicklableError, match=r"result of Service\.unpicklable"):
            await service.unpicklable_result()
        with pytest.raises(aptio.NotPicklableError, match="argument 1"):
            await service.record(threading.Lock())  # failed before anything was sent
        assert await service.inc() == 1  # the server keeps serving


@pytest.mark.asyncio
async def test_calls_from_one_caller_start_in_order_over_ray(main: aptio.Apartment) -> None:
    # Ray's async actors do not keep the order of calls: aptio's channel does.
    async with await aptio.ray.start_server("order") as server:
        service = await server.create(Service)
        for _ in range(5):
            calls = [service.record(i) if i % 3 else service.arecord(i) for i in range(400)]
            await asyncio.gather(*calls)
        expected = [i for _ in range(5) for i in range(400)]
        assert await service.get_log() == expected


@pytest.mark.asyncio
async def test_cancelling_crosses_to_a_server_on_ray(main: aptio.Apartment) -> None:
    async with await aptio.ray.start_server("cancel") as server:
        service = await server.create(Service)
        task = asyncio.create_task(service.hang("awaited"))
        await service.wait_started()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while "awaited" not in await service.get_cancelled():
            await service.inc(0)
        worker = await server.start_sta("busy")
        busy_service = await worker.create(Service)
        probe = await server.create(FreeService)
        busy = busy_service.busy_wait(60.0)
        await probe.wait_flag("busy started")
        busy.cancel()  # travels on the control connection while the STA is busy
        await probe.wait_flag("busy saw the cancel")
        assert await busy_service.inc() == 1
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await service.hang("timeout")


@pytest.mark.asyncio
async def test_a_server_on_ray_calls_back_into_the_driver(main: aptio.Apartment) -> None:
    # The driver cannot be called by Ray: the server's calls come back over its channel.
    async with await aptio.ray.start_server("callbacks") as server:
        service = await server.create(Service)
        free = await server.create(FreeService)
        mine = await aptio.create(Client)
        here = (os.getpid(), threading.current_thread().name)
        assert await service.acall_back(mine) == here
        assert await free.call_back(mine) == here  # blocking, from a server MTA thread
        ping = aptio.callback(lambda: "called back")
        assert await service.acall_back(_Where(ping)) == "called back"
        bouncer = await server.create(Bouncer)
        chained = await aptio.create(Chained)
        assert await chained.go(bouncer, chained) == ["go", "back", "back"]


class _Where:
    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def where(self) -> Any:
        return self.callback()


@pytest.mark.asyncio
async def test_proxies_travel_between_servers_on_ray(main: aptio.Apartment) -> None:
    async with await aptio.ray.start_server("owner") as owner, \
            await aptio.ray.start_server("holder") as holder:
        keeper = await owner.create(Service)
        await keeper.collect_garbage(False)  # as an idle Ray worker
        base = await keeper.live_count()
        held = await owner.create(Service, 40)
        other = await holder.create(Service)
        await other.collect_garbage(False)  # the holder's release needs no collection either
        await other.keep(held)  # a proxy to an object of "owner" now held in "holder" too
        del held
        gc.collect()
        assert await other.call_kept_inc() == 41  # "holder" calls "owner" directly
        assert await keeper.live_count() == base + 1
        await other.drop()
        while await keeper.live_count() != base:  # released by every holder: gone
            await owner.ping()


@pytest.mark.asyncio
async def test_objects_on_ray_live_while_any_process_holds_a_proxy(
    main: aptio.Apartment,
) -> None:
    async with await aptio.ray.start_server("lifetime") as server:
        keeper = await server.create(Service)
        await keeper.collect_garbage(False)  # as an idle Ray worker
        base = await keeper.live_count()
        other = await server.create(Service)
        assert await keeper.live_count() == base + 1
        del other
        gc.collect()
        while await keeper.live_count() != base:
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


def _weak(proxy: Any) -> Any:
    import weakref

    return weakref.ref(aptio.unwrap(proxy))


@pytest.mark.asyncio
async def test_a_class_the_server_cannot_import_is_named(
    main: aptio.Apartment, tmp_path: Path,
) -> None:
    async with await aptio.ray.start_server("imports") as server:
        (tmp_path / "only_on_the_driver.py").write_text(textwrap.dedent("""
            import aptio

            @aptio.coclass
            class OnlyHere:
                pass
        """))
        sys.path.insert(0, str(tmp_path))  # after the server started: it cannot see it
        try:
            import only_on_the_driver
        finally:
            sys.path.remove(str(tmp_path))
        with pytest.raises(aptio.UnreadableValueError, match="only_on_the_driver"):
            await server.create(only_on_the_driver.OnlyHere)
        assert await (await server.create(Service)).inc() == 1


@pytest.mark.asyncio
async def test_registered_classes_are_created_in_servers_on_ray(main: aptio.Apartment) -> None:
    shared = await aptio.create(ray_workers.RayShared)
    again = await aptio.create(ray_workers.RayShared)
    pid = await shared.pid()
    assert pid != os.getpid() and await again.pid() == pid  # one server, multiple-use
    assert await shared.sibling_pid() == pid  # inside its server, create makes it there
    own = await aptio.create(ray_workers.RayOwn)
    own_pid = await own.pid()
    second = await aptio.create(ray_workers.RayOwn)
    assert own_pid not in (pid, os.getpid(), await second.pid())  # a server per object
    assert await own.sibling_pid() == own_pid
    del own
    gc.collect()
    # the single-use server ends once its object is released
    assert await ended_within(own_pid, 60)
    assert await second.pid() != own_pid and await shared.pid() == pid  # the others live



@pytest.mark.asyncio
async def test_a_registered_class_the_cluster_cannot_import_fails_to_start_saying_so(
    main: aptio.Apartment, tmp_path: Path,
) -> None:
    (tmp_path / "registered_on_the_driver.py").write_text(textwrap.dedent("""
        import aptio
        import aptio.ray

        @aptio.ray.server(single_use=True, num_cpus=0)
        @aptio.coclass
        class OnlyHere:
            pass
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        import registered_on_the_driver
    finally:
        sys.path.remove(str(tmp_path))  # the server cannot see it
    with pytest.raises(aptio.ServerStartError,
                       match=r"cannot import class 'OnlyHere' from module "
                             r"'registered_on_the_driver'.*runtime_env"):
        await aptio.create(registered_on_the_driver.OnlyHere)


@pytest.mark.asyncio
async def test_a_registered_class_needs_ray_initialized(
    main: aptio.Apartment, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(aptio.ServerStartError,
                       match=r"^Ray is not initialized in this process: call ray\.init\(\).* "
                             r"before aptio\.create\(\) of ray_workers:RayOwn "):
        await aptio.create(ray_workers.RayOwn)


def test_ray_server_registrations_are_checked_where_they_are_written() -> None:
    with pytest.raises(TypeError, match=r"^aptio\.ray\.server\(\) got unknown options cpus: "):
        aptio.ray.server("x", cpus=1)
    with pytest.raises(TypeError, match=r"^ray\.server\(\) needs a server name, or single_"):
        aptio.ray.server()
    with pytest.raises(TypeError, match=r"decorates classes"):
        aptio.ray.server("x")(len)  # type: ignore[type-var]


def test_the_ray_cluster_example_runs_on_the_cluster(ray_cluster: Any) -> None:
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, RAY_ADDRESS=ray_cluster.address)
    done = subprocess.run([sys.executable, str(root / "examples" / "ray_cluster.py")],
                          cwd=root, capture_output=True, text=True, timeout=150, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("a counter lives in pid") == 2
    assert "a server called back: noted: " in out
    assert "merged on counter-a:" in out and "('the', " in out
