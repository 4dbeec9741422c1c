"""Proxies through plain Ray: a proxy passed to a Ray task or actor, or put in Ray's object
store, keeps working where Ray unpickles it (a worker with no aptio of its own), with the same
results, errors, ordering and cancellation; its object lives while any holder anywhere holds
it (a lease covers the journey), and an owner's death or a lease that ran out fail the calls
with aptio's errors."""

from __future__ import annotations

import asyncio
import copy
import gc
import os
import pickle
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Callable
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'aptio[ray]'")

import aptio  # noqa: E402
import aptio.ray  # noqa: E402

import ray_workers  # noqa: E402
from remote_classes import Client, Service  # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("ray_cluster")]

#: How long a state may take to change (a bound for a loaded machine, never a synchronization).
BOUND = 60.0


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (polling, bounded) until ``condition()`` holds, collecting garbage meanwhile."""
    async with asyncio.timeout(BOUND):
        while not condition():
            gc.collect()
            await asyncio.sleep(0.01)


async def _first_failure_of(holder: Any, method: str = "inc") -> aptio.DisconnectedError:
    """The error of the first call ``holder`` (a Ray actor) makes through its kept proxy that
    fails (within BOUND seconds)."""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                await holder.call_kept.remote(method)
            except aptio.DisconnectedError as error:
                return error


async def _released(keeper: Any, base: int) -> None:
    async with asyncio.timeout(BOUND):
        while await keeper.live_count() != base:
            gc.collect()
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_proxy_passed_to_a_ray_task_works_there(main: aptio.Apartment) -> None:
    async with await aptio.ray.start_server("transit-task") as server:
        service = await server.create(Service, 10)
        value, pid = await ray_workers.inc.remote(service, 5)
        assert value == 15 and pid not in (os.getpid(), server.pid)
        assert await service.inc() == 16  # the same object
        threads = await ray_workers.where_the_runtime_runs.remote(service)
        assert "aptio background" in threads  # the worker's runtime, started on demand
        kind, message, note = await ray_workers.failure_of.remote(service, "nope")
        assert (kind, message) == ("Custom", "nope")
        assert "Raised in server 'transit-task'" in note and "in fail" in note
        ordered = await server.create(Service)
        assert await ray_workers.record_in_order.remote(ordered, 300) == list(range(300))
        assert await ray_workers.cancel_a_hanging_call.remote(service)
        async with asyncio.timeout(BOUND):
            while "from a Ray task" not in await service.get_cancelled():
                await service.inc(0)


@pytest.mark.asyncio
async def test_a_ray_actor_keeps_a_proxy_and_calls_it_later(main: aptio.Apartment) -> None:
    async with await aptio.ray.start_server("transit-actor") as server:
        service = await server.create(Service)
        holder = ray_workers.Holder.remote()
        try:
            assert await holder.keep.remote(service) == 1
            assert await service.inc() == 1
            assert await holder.call_kept.remote("inc", 10) == 11
            value, _ = await holder.pass_on.remote(3)  # unpickled there, pickled again
            assert value == 14
            assert await holder.call_kept.remote("ainc", 1) == 15
        finally:
            ray.kill(holder)


@pytest.mark.asyncio
async def test_a_proxy_travels_through_rays_object_store(main: aptio.Apartment) -> None:
    async with await aptio.ray.start_server("transit-store") as server:
        service = await server.create(Service)
        ref = ray.put(service)
        assert await ray_workers.inc_from_store.remote([ref], 2) == 2
        assert await ray_workers.inc_from_store.remote([ref], 3) == 5  # a second reader
        holder = ray_workers.Holder.remote()
        try:
            assert await holder.fetch.remote([ref]) == 6  # unpickled on a thread of Ray's
        finally:
            ray.kill(holder)
        here = ray.get(ref)  # back in the driver: the same object, through its server
        assert await here.inc() == 7
        assert here == service


@pytest.mark.asyncio
async def test_a_server_on_ray_hands_proxies_to_ray_tasks_too(main: aptio.Apartment) -> None:
    async with await aptio.ray.start_server("transit-dispatch") as server:
        dispatcher = await server.create(ray_workers.Dispatcher)
        service = await server.create(Service)
        assert await dispatcher.to_a_task(service, 4) == 4  # its own object
        mine = await aptio.create(Service, 10)
        assert await dispatcher.to_a_task(mine, 1) == 11  # the driver's, passed on again


@pytest.mark.asyncio
async def test_an_object_that_travelled_through_ray_lives_until_every_holder_let_go(
    main: aptio.Apartment,
) -> None:
    async with await aptio.ray.start_server("transit-lifetime") as server:
        keeper = await server.create(Service)
        await keeper.collect_garbage(False)  # as an idle Ray worker
        base = await keeper.live_count()
        service = await server.create(Service)
        holder = ray_workers.Holder.remote()
        try:
            await holder.keep.remote(service)
            ref = ray.put(service)
            assert await ray_workers.inc_from_store.remote([ref], 1) == 1
            del service, ref
            gc.collect()
            assert await holder.call_kept.remote("inc", 1) == 2  # the actor still holds it
            assert await keeper.live_count() == base + 1
            await holder.drop.remote()
            await _released(keeper, base)  # the last holder let go: the object is gone
        finally:
            ray.kill(holder)


@pytest.mark.asyncio
async def test_an_object_of_the_driver_is_reached_through_its_relay(
    main: aptio.Apartment,
) -> None:
    # The driver cannot be called by Ray: the workers reach it through its relay actor.
    mine = await aptio.create(Service, 100)
    alive = weakref.ref(aptio.unwrap(mine))
    value, _ = await ray_workers.inc.remote(mine, 1)
    assert value == 101
    holder = ray_workers.Holder.remote()
    try:
        await holder.keep.remote(mine)
        assert await holder.call_kept.remote("ainc", 10) == 111
        assert await holder.call_kept.remote("where") == (os.getpid(), "MainThread")
        kind, message, note = await ray_workers.failure_of.remote(mine, "here")
        assert (kind, message) == ("Custom", "here") and "the client process" in note
        del mine
        gc.collect()
        assert alive() is not None  # the actor holds it
        await holder.drop.remote()
        await _until(lambda: alive() is None)
    finally:
        ray.kill(holder)


@pytest.mark.asyncio
async def test_calls_through_a_proxy_whose_server_died_fail_naming_it(
    main: aptio.Apartment,
) -> None:
    server = await aptio.ray.start_server("transit-doomed")
    service = await server.create(Service)
    holder = ray_workers.Holder.remote()
    try:
        await holder.keep.remote(service)
        assert await holder.call_kept.remote("inc") == 1
        ray.kill(server._process.actor)  # type: ignore[union-attr]
        assert "server 'transit-doomed'" in str(await _first_failure_of(holder))
        kind, message = await ray_workers.error_of.remote(service, "inc")  # a new receiver
        assert kind == "DisconnectedError" and "server 'transit-doomed'" in message
    finally:
        ray.kill(holder)
        await server.shutdown()


@pytest.mark.asyncio
async def test_a_pickled_proxy_whose_lease_ran_out_fails_on_first_use(
    main: aptio.Apartment,
) -> None:
    previous = aptio.ray.set_transit_lease(0.2)
    try:
        async with await aptio.ray.start_server("transit-lease") as server:
            keeper = await server.create(Service)
            await keeper.collect_garbage(False)  # as an idle Ray worker: the release needs none
            base = await keeper.live_count()
            service = await server.create(Service)
            ref = ray.put(service)  # nobody unpickles it in time
            del service
            await _released(keeper, base)
            kind, message = await ray_workers.error_of.remote(ref, "inc")
            assert kind == "LeaseExpiredError"
            assert "inc(): the object was released" in message
            assert "aptio.ray.set_transit_lease" in message
        mine = await aptio.create(Client)
        alive = weakref.ref(aptio.unwrap(mine))
        mine_ref = ray.put(mine)
        del mine
        await _until(lambda: alive() is None)
        kind, message = await ray_workers.error_of.remote(mine_ref, "where")
        assert kind == "LeaseExpiredError"  # the driver answers through its relay
        came_back = ray.get(mine_ref)  # unpickled where it lived, after it went
        with pytest.raises(aptio.LeaseExpiredError, match=r"^Client\.where\(\): the object"):
            came_back.where()
    finally:
        aptio.ray.set_transit_lease(previous)
    with pytest.raises(ValueError, match="seconds > 0"):
        aptio.ray.set_transit_lease(0)


@pytest.mark.asyncio
async def test_proxies_that_cannot_travel_through_ray_say_why(
    main: aptio.Apartment, monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine = await aptio.create(Client)
    assert copy.copy(mine) is mine and copy.deepcopy([mine])[0] is mine
    async with await aptio.start_server("transit-local") as local:
        there = await local.create(Service)
        with pytest.raises(TypeError, match="not on this Ray cluster"):
            ray.put(there)
    from aptio._proxy import proxy as proxy_module

    monkeypatch.setattr(proxy_module, "_pickle_hook", None)
    with pytest.raises(TypeError, match=r"import aptio\.ray first"):
        pickle.dumps(mine)


def test_a_driver_of_its_own_gets_a_runtime_for_a_proxy_and_exits_cleanly(
    tmp_path: Any, ray_cluster: Any,
) -> None:
    # A second driver on the shared cluster, with no aptio runtime of its own: the proxy it
    # fetches brings one up in the background; at exit that runtime shuts down, and the
    # holder of the second driver's own object then hears that it is gone.
    script = tmp_path / "second_driver.py"
    script.write_text(textwrap.dedent("""
        import asyncio, sys
        import ray, aptio
        from remote_classes import Client

        ray.init(address=sys.argv[1], namespace=sys.argv[2], log_to_driver=False,
                 configure_logging=False)
        holder = ray.get_actor("transit-holder", namespace=sys.argv[2])
        proxy = ray.get(holder.get_kept.remote())
        print("called:", proxy.inc(1).result(timeout=60))
        mine = asyncio.run(aptio.create(Client))  # in its background runtime
        ray.get(holder.keep.remote(mine))
        print("kept:", ray.get(holder.call_kept.remote("where"))[0] > 0)
    """))
    namespace = f"transit-{os.getpid()}"
    holder = ray_workers.Holder.options(name="transit-holder", namespace=namespace).remote()

    async def scenario() -> None:
        async with await aptio.ray.start_server("transit-second") as server:
            keeper = await server.create(Service)
            await keeper.collect_garbage(False)  # as an idle Ray worker
            base = await keeper.live_count()
            service = await server.create(Service)
            await holder.keep.remote(service)
            del service
            env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, str(script), ray_cluster.address, namespace],
                capture_output=True, text=True, timeout=150, env=env, check=False)
            assert done.returncode == 0, done.stderr[-3000:]
            assert "called: 1" in done.stdout and "kept: True" in done.stdout
            assert "Traceback" not in done.stderr, done.stderr[-3000:]
            error = await _first_failure_of(holder, "where")
            assert "the client process" in str(error)
            await holder.drop.remote()
            await _released(keeper, base)

    try:
        aptio.run(scenario)
    finally:
        ray.kill(holder)
