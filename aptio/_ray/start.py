"""Starting an aptio server as a Ray actor, and what the client holds of it.

The server is an :class:`aptio.Server` like a local one: the same peer, links, codec, exports
and control object, with its connections carried on a Ray channel instead of sockets. The
actor is owned by the process that started it (it ends with that process) and is never
restarted behind aptio's back unless asked (``max_restarts``); a restarted actor is a new
server without the old one's objects, so calls through old proxies fail.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import sys
import threading
import uuid
from typing import Any

import attrs
import ray
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from .._remote.peer import Peer
from .._remote.server import Server, control_ref
from .._remote.spawn import main_module_config
from .._runtime.entry import get_runtime
from .._runtime.servers import DEFAULT_START_TIMEOUT
from .._trace.recorder import installed_recorder
from .._values.errors import DisconnectedError, ServerStartError
from .actor import ServerActor
from .network import DEFAULT_KEEPALIVE, actor_address, install
from .security import check_cluster, note_insecure_allowed

__all__ = ["RayServerHandle", "Role", "launch", "start_options", "start_server"]

_numbers = itertools.count(1)
_actor_class: Any = None
_actor_lock = threading.Lock()


class RayServerHandle:
    """What the client holds of a server's actor (an :class:`aptio._remote.server.
    ServerHandle`): ``exited`` is set once the actor ended, however it ended."""

    def __init__(self, actor: Any, pid: int, on_exit: Any) -> None:
        self.actor = actor
        self._pid = pid
        self._exited = threading.Event()
        self._on_exit = on_exit
        self.reason = ""
        actor.wait_stopped.remote()._on_completed(self._ended)

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def exited(self) -> threading.Event:
        return self._exited

    def _ended(self, result: Any) -> None:
        if isinstance(result, BaseException):
            text = str(result).strip().splitlines()
            self.reason = f"its actor died: {type(result).__name__}: {(text or [''])[0][:300]}"
        else:
            self.reason = "it stopped"
        self._exited.set()
        self._on_exit(self.reason)

    def close_stdin(self) -> None:
        """Nothing to do: the actor ends once its runtime stopped (``wait_stopped``)."""

    def kill(self) -> None:
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:  # gone already, or Ray is shut down
            self._exited.set()


def _actor_remote() -> Any:
    global _actor_class
    with _actor_lock:
        if _actor_class is None:
            _actor_class = ray.remote(ServerActor)
        return _actor_class


async def start_server(
    name: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    memory: float | None = None,
    resources: dict[str, float] | None = None,
    node_id: str | None = None,
    placement_group: Any = None,
    placement_group_bundle_index: int = -1,
    scheduling_strategy: Any = None,
    runtime_env: dict[str, Any] | None = None,
    max_restarts: int = 0,
    max_message_size: int | None = None,
    use_uvloop: bool | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    keepalive: float = DEFAULT_KEEPALIVE,
    allow_insecure_cluster: bool = False,
) -> Server:
    """Start an aptio server as a Ray actor and return it once it is ready: an
    :class:`aptio.Server` like a local one (``create``, ``start_sta``, ``mta()``, shutdown
    with the runtime or ``await server.shutdown()``).

    Ray must be initialized (``ray.init()``) on a cluster that checks Ray's authentication
    token (else :class:`aptio.ray.InsecureClusterError`, unless
    ``allow_insecure_cluster=True``). ``num_cpus``, ``num_gpus``, ``memory``, ``resources``,
    ``runtime_env`` and ``max_restarts`` go to the actor; ``node_id`` pins it to a node,
    ``placement_group`` (with ``placement_group_bundle_index``) to a bundle, and
    ``scheduling_strategy`` is any of Ray's. ``start_timeout``: seconds for the actor to be
    placed and ready (:class:`aptio.ServerStartError` after). ``keepalive``: how long an idle
    exchange waits at the actor (four of them without a word mean a peer is gone)."""
    options = {key: value for key, value in locals().items() if key != "name"}
    return await launch(name, options, Role())


def start_options() -> dict[str, Any]:
    """Every option :func:`start_server` takes after the name, with its default."""
    parameters = inspect.signature(start_server).parameters
    return {key: parameter.default for key, parameter in parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


@attrs.frozen
class Role:
    """What a server is started for, beyond :func:`start_server`: ``single_use`` (it stops
    once its last object goes), ``serves`` (the class it was started for, ``module:qualname``,
    which must import there) and ``caller`` (what the user called, for errors)."""

    single_use: bool = False
    serves: str | None = None
    caller: str = "aptio.ray.start_server()"


async def launch(name: str | None, options: dict[str, Any], role: Role) -> Server:
    """Start a server with :func:`start_server`'s ``options`` (all of them), for ``role``."""
    if not ray.is_initialized():
        raise ServerStartError(
            "Ray is not initialized in this process: call ray.init() (a local cluster) or "
            f"ray.init(address=...) (an existing one) before {role.caller}")
    allow_insecure_cluster = options["allow_insecure_cluster"]
    check_cluster(allow_insecure_cluster)
    if allow_insecure_cluster:
        note_insecure_allowed()
    runtime = get_runtime()
    node = runtime.node()
    install(node)
    session = runtime.session
    label = name if name is not None else f"ray-server-{next(_numbers)}"
    namespace = ray.get_runtime_context().namespace
    actor_name = f"aptio-{label}-{uuid.uuid4().hex[:12]}"
    config: dict[str, Any] = {
        "name": label,
        "address": actor_address(namespace, actor_name),
        "max_message_size": options["max_message_size"] or session.max_message_size,
        "use_uvloop": (runtime.use_uvloop if options["use_uvloop"] is None
                       else options["use_uvloop"]),
        "sys_path": list(sys.path),
        "keepalive": options["keepalive"],
        "single_use": role.single_use,
        "serves": role.serves if role.single_use else None,
        "imports": role.serves,
        "trace": recorder.limit if (recorder := installed_recorder()) is not None else None,
        **main_module_config(),
    }
    actor_options: dict[str, Any] = {"name": actor_name, "namespace": namespace,
                                     "max_restarts": options["max_restarts"],
                                     "max_task_retries": 0}
    for key in ("num_cpus", "num_gpus", "memory", "resources", "runtime_env"):
        if options[key] is not None:
            actor_options[key] = options[key]
    strategy = options["scheduling_strategy"]
    if options["node_id"] is not None:
        strategy = NodeAffinitySchedulingStrategy(options["node_id"], soft=False)
    elif options["placement_group"] is not None:
        strategy = PlacementGroupSchedulingStrategy(options["placement_group"],
                                                    options["placement_group_bundle_index"])
    if strategy is not None:
        actor_options["scheduling_strategy"] = strategy
    try:
        actor = _actor_remote().options(**actor_options).remote(config)
    except Exception as error:
        raise ServerStartError(f"Ray refused to create server {label!r}'s actor: "
                               f"{error}") from None
    try:
        async with asyncio.timeout(options["start_timeout"]):
            info = await actor.ready.remote()
    except TimeoutError:
        ray.kill(actor, no_restart=True)
        raise ServerStartError(
            f"server {label!r} did not start on Ray within {options['start_timeout']} s "
            "(start_timeout): "
            "does the cluster have the resources it asks for?") from None
    except Exception as error:
        raise ServerStartError(f"server {label!r} failed to start on Ray: {error}") from None
    if "failure" in info:
        ray.kill(actor, no_restart=True)
        raise ServerStartError(f"server {label!r} failed to start on Ray: {info['failure']}")
    gone: list[Peer] = []

    def on_exit(reason: str) -> None:
        for peer in gone:
            peer.mark_gone(DisconnectedError(f"server {label!r} on Ray is gone: {reason}"))

    handle = RayServerHandle(actor, info["pid"], on_exit)
    peer = node.peer(info["node"], info["address"], label)
    peer.control_ref = control_ref(info["node"], info["address"], label)
    peer.max_message_size = config["max_message_size"]
    gone.append(peer)
    if handle.exited.is_set():
        on_exit(handle.reason)
    servers = runtime.servers()
    server = Server(label, peer, handle, session.key, servers.forget)
    try:
        servers.add(server)
    except BaseException:
        handle.kill()
        raise
    return server

