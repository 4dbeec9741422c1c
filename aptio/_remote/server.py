"""``aptio.Server``: a process hosting an aptio runtime (COM's local server), as its client
holds it: create objects there, start STAs there, shut it down."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar, final

import attrs

from .._apartments.base import Apartment
from .._proxy.proxy import Proxy
from .._values.enums import ApartmentKind
from .._values.errors import DisconnectedError
from .._wire.messages import ApartmentRef, ObjectRef
from . import codec
from .control import NodeControl
from .exports import CONTROL_OBJECT_ID
from .peer import Peer

__all__ = ["Server", "ServerCredentials", "ServerHandle"]

T = TypeVar("T")

#: How long ``shutdown`` waits for the process to exit after its runtime stopped.
EXIT_GRACE: Final = 10.0


@final
@attrs.frozen(repr=False)
class ServerCredentials:
    """What another process of the session needs to reach a server: its address and the
    session's secret key. Hand it over only through a private channel (a pipe, not a file or a
    command line): whoever holds the key can run code in every process of the session."""

    name: str
    address: str
    node: str
    key: bytes

    def __repr__(self) -> str:
        return f"<aptio.ServerCredentials {self.name!r} at {self.address!r} (key hidden)>"


def apartment_ref(node: str, server: str, apartment_id: str, kind: ApartmentKind,
                  name: str) -> ApartmentRef:
    return ApartmentRef(node, apartment_id, kind.value, name, server)


def control_ref(node: str, address: str, server: str) -> ObjectRef:
    """The reference to a server's control object (object 0, in its main STA)."""
    return ObjectRef(node, address, CONTROL_OBJECT_ID,
                     apartment_ref(node, server, "main", ApartmentKind.MAIN_STA, "main STA"),
                     codec.class_ref(NodeControl))


class ServerHandle(Protocol):
    """What a server holds of the process it started (a :class:`ServerProcess`, or what
    stands for a server on a cluster)."""

    @property
    def pid(self) -> int: ...

    @property
    def exited(self) -> threading.Event: ...

    def close_stdin(self) -> None:
        """Tell the server its client is done with it."""

    def kill(self) -> None: ...


@final
class Server:
    """A server process (see :func:`aptio.start_server`). Use it as an async context manager
    to shut it down on exit."""

    def __init__(self, name: str, peer: Peer, process: ServerHandle | None, key: bytes,
                 forget: Callable[[Server], None]) -> None:
        self._name = name
        self._peer = peer
        self._process = process
        self._key = key
        self._forget = forget
        self._closed = False

    def __repr__(self) -> str:
        state = "gone" if self._peer.is_gone else "running"
        pid = f" pid {self._process.pid}" if self._process is not None else ""
        return f"<aptio.Server {self._name!r}{pid} {state}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def pid(self) -> int | None:
        """The server's process id (None for a server this process did not start)."""
        return self._process.pid if self._process is not None else None

    @property
    def address(self) -> str:
        return self._peer.address

    @property
    def is_alive(self) -> bool:
        """False once this process knows the server is gone (shut down, exited, killed: its
        connection closed, or its exit seen), which can be a moment after a call fails."""
        return not self._peer.is_gone

    @property
    def main_sta(self) -> Apartment:
        """The server's main STA (where its control object, and APARTMENT objects it creates
        for you, live)."""
        return self._apartment("main", ApartmentKind.MAIN_STA, "main STA")

    def mta(self) -> Apartment:
        """The server's MTA (started there on first use)."""
        return self._apartment("mta", ApartmentKind.MTA, "MTA")

    def _apartment(self, apartment_id: str, kind: ApartmentKind, name: str) -> Apartment:
        return self._peer.apartment(apartment_ref(self._peer.node_id, self._name,
                                                  apartment_id, kind, name))

    def credentials(self) -> ServerCredentials:
        """What another process of this session needs to connect (see ServerCredentials)."""
        return ServerCredentials(self._name, self._peer.address, self._peer.node_id, self._key)

    async def create(self, cls: type[T], *args: Any, **kwargs: Any) -> Proxy[T]:
        """Create ``cls(*args, **kwargs)`` in the server, as from its main STA (the class's
        threading model decides where it lives there). The class must be importable in the
        server (a module on its ``sys.path``, or the script that started it)."""
        proxy: Proxy[T] = await self._peer.control_call("create", "main", cls, args, kwargs)
        return proxy

    async def start_sta(self, name: str | None = None) -> Apartment:
        """Start an STA in the server; returns it (its ``create`` creates there)."""
        ref = await self._peer.control_call("start_sta", name)
        return self._peer.apartment(ApartmentRef(*ref))

    async def ping(self) -> None:
        """A round trip to the server's process (DisconnectedError if it is gone)."""
        await self._peer.ping()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Shut the server down (idempotent): its apartments stop as ``aptio.run``'s do
        (running calls get ``timeout`` seconds), then the process exits and is reaped."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._peer.is_gone:
                try:
                    await self._peer.control_call("shutdown", timeout)
                except DisconnectedError:
                    pass
            process = self._process
            if process is not None:
                process.close_stdin()
                exited = await asyncio.to_thread(
                    process.exited.wait, None if timeout is None else timeout + EXIT_GRACE)
                if not exited:
                    process.kill()
                    await asyncio.to_thread(process.exited.wait, EXIT_GRACE)
            self._peer.mark_gone(DisconnectedError(f"server {self._name!r} was shut down"))
        finally:
            self._forget(self)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.shutdown()
