"""Faults of aptio servers on Ray: a killed actor, a dead node, an actor Ray restarted, a
cluster without token authentication, a server that cannot start. Every pending and later
call fails with DisconnectedError naming the server, and the rest keeps working."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'aptio[ray]'")

import aptio  # noqa: E402
import aptio.ray  # noqa: E402

from ray_harness import worker_environment  # noqa: E402
from remote_classes import Service  # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("ray_cluster")]

#: How long a fault may take to reach the calls waiting on it (Ray notices a dead process at
#: once, a dead node within seconds): generous for a loaded machine, never a synchronization.
BOUND = 60.0


def _actor(server: aptio.Server) -> Any:
    return server._process.actor  # type: ignore[union-attr]


async def _first_failure(service: Any) -> aptio.DisconnectedError:
    """The error of the first call to ``service`` that fails (within BOUND seconds)."""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                await service.inc()
            except aptio.DisconnectedError as error:
                return error


@pytest.mark.asyncio
async def test_an_actor_killed_mid_call_fails_every_pending_and_later_call(
    main: aptio.Apartment,
) -> None:
    server = await aptio.ray.start_server("doomed")
    service = await server.create(Service)
    pending = [service.hang(str(i)) for i in range(3)]
    await service.wait_started()
    ray.kill(_actor(server), no_restart=True)
    async with asyncio.timeout(BOUND):
        for call in pending:
            with pytest.raises(aptio.DisconnectedError, match="server 'doomed'"):
                await call
    with pytest.raises(aptio.DisconnectedError, match="server 'doomed'"):
        await service.inc()
    assert not server.is_alive
    await server.shutdown()  # idempotent on a dead server
    async with await aptio.ray.start_server("after") as other:  # the rest keeps working
        assert await (await other.create(Service)).inc() == 1


@pytest.mark.asyncio
async def test_an_actor_killed_between_calls_fails_the_next(main: aptio.Apartment) -> None:
    server = await aptio.ray.start_server("between")
    service = await server.create(Service)
    assert await service.inc() == 1
    ray.kill(_actor(server), no_restart=True)
    error = await _first_failure(service)  # the standing exchange fails as Ray reports it
    assert "server 'between'" in str(error)
    await server.shutdown()


@pytest.mark.asyncio
async def test_a_restarted_actor_never_serves_old_proxies(main: aptio.Apartment) -> None:
    # max_restarts lets Ray start a new actor after a crash: a new process without the old
    # objects. Old proxies must fail, never reach a fresh object.
    server = await aptio.ray.start_server("phoenix", max_restarts=1)
    service = await server.create(Service, 41)
    assert await service.inc() == 42
    ray.kill(_actor(server), no_restart=False)
    error = await _first_failure(service)
    assert "server 'phoenix'" in str(error)
    with pytest.raises(aptio.DisconnectedError):
        await service.inc()
    await server.shutdown()


@pytest.mark.asyncio
async def test_a_dead_node_fails_the_calls_of_its_servers(
    main: aptio.Apartment, ray_cluster: Any,
) -> None:
    with worker_environment():
        # No CPU: nothing but the server that asks for its resource lands there (Ray takes a
        # while to mark a removed node dead, and would place other actors on it meanwhile).
        node = ray_cluster.add_node(num_cpus=0, resources={"doomed_node": 1})
    try:
        await asyncio.to_thread(ray_cluster.wait_for_nodes)
        server = await aptio.ray.start_server("remote node", num_cpus=0,
                                             resources={"doomed_node": 1})
        service = await server.create(Service)
        here = await aptio.ray.start_server("head node")
        survivor = await here.create(Service)
        hanging = service.hang("node")
        await service.wait_started()
        doomed = node.node_id
        await asyncio.to_thread(ray_cluster.remove_node, node, False)
        node = None
        async with asyncio.timeout(BOUND):
            with pytest.raises(aptio.DisconnectedError, match="server 'remote node'"):
                await hanging
        with pytest.raises(aptio.DisconnectedError, match="server 'remote node'"):
            await service.inc()
        assert await survivor.inc() == 1  # a server on a live node keeps serving
        await server.shutdown()
        await here.shutdown()
        # Until Ray marks the node dead its scheduler may still place actors there: the next
        # tests wait for that (a state to poll, not a delay).
        while any(n["NodeID"] == doomed and n["Alive"] for n in await asyncio.to_thread(ray.nodes)):
            await asyncio.sleep(0.2)
    finally:
        if node is not None:
            ray_cluster.remove_node(node)


@pytest.mark.asyncio
async def test_a_cluster_without_token_authentication_is_refused(
    main: aptio.Apartment, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ray._private.authentication import authentication_utils

    from aptio._ray import security

    monkeypatch.setattr(authentication_utils, "is_token_auth_enabled", lambda: False)
    monkeypatch.setattr(security, "_insecure_allowed", False)  # the opt-out below is noted
    with pytest.raises(aptio.ray.InsecureClusterError, match="allow_insecure_cluster=True"):
        await aptio.ray.start_server("insecure")
    async with await aptio.ray.start_server("accepted", allow_insecure_cluster=True) as server:
        assert await (await server.create(Service)).inc() == 1
    monkeypatch.setattr(ray, "__version__", "2.58.1")
    with pytest.raises(aptio.ray.InsecureClusterError, match="upgrade Ray"):
        await aptio.ray.start_server("old")
    assert issubclass(aptio.ray.InsecureClusterError, aptio.AptioError)


@pytest.mark.asyncio
async def test_a_server_that_cannot_be_placed_fails_to_start(main: aptio.Apartment) -> None:
    with pytest.raises(aptio.ServerStartError, match="did not start on Ray within 2"):
        await aptio.ray.start_server("nowhere", resources={"no such resource": 1},
                                     start_timeout=2)


def test_ray_shutting_down_fails_pending_calls(tmp_path: Any, ray_cluster: Any) -> None:
    # A driver of its own (a child process on the shared cluster) shuts its Ray down.
    script = tmp_path / "shutdown_mid_call.py"
    script.write_text(textwrap.dedent("""
        import asyncio, sys, threading
        import ray, aptio, aptio.ray
        from remote_classes import Service

        async def main():
            server = await aptio.ray.start_server("short-lived")
            service = await server.create(Service)
            pending = service.hang("x")
            await service.wait_started()
            await asyncio.to_thread(ray.shutdown)
            try:
                async with asyncio.timeout(60):
                    await pending
            except aptio.DisconnectedError as error:
                assert "server 'short-lived'" in str(error), error
            try:
                await service.inc()
            except aptio.DisconnectedError:
                print("all failed")

        if __name__ == "__main__":
            ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
            aptio.run(main)
    """))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    done = subprocess.run([sys.executable, str(script), ray_cluster.address],
                          capture_output=True, text=True,
                          timeout=150, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "all failed" in done.stdout
