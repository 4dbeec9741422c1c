"""The servers a runtime started or reached: ``aptio.start_server``, ``aptio.connect_server``,
and the servers that ``@aptio.local_server`` classes are created in."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from typing import Any, Final

from .._remote.node import Node
from .._remote.peer import Peer
from .._remote.server import Server, ServerCredentials, control_ref
from .._remote.spawn import ServerProcess, main_module_config
from .._trace.recorder import installed_recorder
from .._values.declarations import ServerClass
from .._values.errors import DisconnectedError
from .session import Session

__all__ = ["DEFAULT_START_TIMEOUT", "Servers", "qualified_name"]

#: How long a new server gets to be ready.
DEFAULT_START_TIMEOUT: Final = 60.0

_numbers = itertools.count(1)


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class Servers:
    """The servers of one runtime (it shuts down those it started, with itself)."""

    def __init__(self, node: Node, session: Session, use_uvloop: bool | None) -> None:
        self._node = node
        self._session = session
        self._use_uvloop = use_uvloop
        self._servers: list[Server] = []
        self._named: dict[str, asyncio.Future[Server]] = {}
        self._closing = False

    async def start(self, name: str | None, *, python: str | None = None,
                    env: dict[str, str] | None = None,
                    start_timeout: float = DEFAULT_START_TIMEOUT,
                    max_message_size: int | None = None, use_uvloop: bool | None = None,
                    single_use: bool = False, serves: str | None = None) -> Server:
        if self._closing:
            raise DisconnectedError("the aptio runtime is shutting down; no new servers")
        node = self._node
        node.listen()
        label = name if name is not None else f"server-{next(_numbers)}"
        session = self._session
        recorder = installed_recorder()  # a recording runs: the server records too
        config: dict[str, Any] = {
            "key": session.key.hex(),
            "directory": session.directory,
            "name": label,
            "max_message_size": max_message_size or session.max_message_size,
            "use_uvloop": self._use_uvloop if use_uvloop is None else use_uvloop,
            "sys_path": list(sys.path),
            "cwd": os.getcwd(),
            "single_use": single_use,
            "serves": serves,
            "trace": recorder.limit if recorder is not None else None,
            **main_module_config(),
        }
        gone: list[Peer] = []

        def on_exit(code: int) -> None:
            for peer in gone:
                peer.mark_gone(DisconnectedError(f"server {label!r} exited (code {code})"))

        process = ServerProcess(label, config, python, env, on_exit)
        try:
            ready = await process.ready(start_timeout)
        except BaseException:
            process.kill()
            raise
        peer = node.peer(ready["node"], ready["address"], label)
        peer.control_ref = control_ref(ready["node"], ready["address"], label)
        peer.max_message_size = config["max_message_size"]
        gone.append(peer)
        if process.exited.is_set():
            on_exit(process.returncode or 0)
        server = Server(label, peer, process, session.key, self._forget)
        self._servers.append(server)
        return server

    async def connect(self, credentials: ServerCredentials) -> Server:
        """Reach a server another process of this session started."""
        if not isinstance(credentials, ServerCredentials):
            raise TypeError(f"connect_server() takes aptio.ServerCredentials, not "
                            f"{type(credentials).__qualname__}")
        peer = self._node.peer(credentials.node, credentials.address, credentials.name)
        peer.control_ref = control_ref(credentials.node, credentials.address, credentials.name)
        await peer.ping()
        return Server(credentials.name, peer, None, credentials.key, lambda server: None)

    async def for_class(self, registration: ServerClass, cls: type) -> Server:
        """The server ``cls``'s instances are created in (started on first need)."""
        if registration.single_use:
            return await self._start_for(registration, registration.name, cls)
        name = registration.name
        assert name is not None
        future = self._named.get(name)
        if future is None or (future.done() and (future.exception() is not None
                                                 or not future.result().is_alive)):
            future = asyncio.get_running_loop().create_future()
            self._named[name] = future
            try:
                server = await self._start_for(registration, name, cls)
            except BaseException as error:
                future.set_exception(error)
                future.exception()  # retrieved: the caller raises it
                self._named.pop(name, None)
                raise
            future.set_result(server)
            return server
        return await asyncio.shield(future)

    async def _start_for(self, registration: ServerClass, name: str | None,
                         cls: type) -> Server:
        single_use = registration.single_use
        serves = qualified_name(cls) if single_use else None
        if registration.starter is None:
            return await self.start(name, single_use=single_use, serves=serves)
        if self._closing:
            raise DisconnectedError("the aptio runtime is shutting down; no new servers")
        server = await registration.starter(name, single_use, qualified_name(cls))
        if not isinstance(server, Server):
            raise TypeError(f"the server starter of {cls.__qualname__} returned "
                            f"{type(server).__qualname__}, not an aptio.Server")
        return server

    def add(self, server: Server) -> None:
        """A server started elsewhere (on a cluster, say): shut down with this runtime."""
        if self._closing:
            raise DisconnectedError("the aptio runtime is shutting down; no new servers")
        self._servers.append(server)

    def forget(self, server: Server) -> None:
        """``server`` was shut down."""
        self._forget(server)

    def _forget(self, server: Server) -> None:
        if server in self._servers:
            self._servers.remove(server)

    async def shutdown_all(self, timeout: float | None) -> None:
        self._closing = True
        servers = list(self._servers)
        await asyncio.gather(*(server.shutdown(timeout) for server in servers),
                             return_exceptions=True)
