"""Another process this process talks to: its caller links (one per caller loop and target
apartment), its control connection (reference counting and liveness), and the remote
apartments that stand for its apartments here.

A peer is *gone* once its control connection closed (or, for a server this process started,
once the process exited): calls waiting on it fail with DisconnectedError at once, later calls
fail as they are sent, and the references it held to this process's objects are released.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from .._apartments.base import Owner
from .._values.errors import DisconnectedError, ProtocolError
from .._wire.messages import (
    AddRef,
    ApartmentRef,
    Cancel,
    Claim,
    Hello,
    Lease,
    ObjectRef,
    Ping,
    Pong,
    Release,
)
from . import codec
from .connection import Connection
from .links import CallerLink, LinkOwner
from .remote_apartment import RemoteApartment
from .remote_stub import RemoteStub, RemoteStubs
from .transport import Setup

__all__ = ["Driver", "Peer", "PeerHost", "describe_process"]


def describe_process(name: str) -> str:
    """How messages name a process: its server name, or "the client process"."""
    return "the client process" if name == "client" else f"server {name!r}"


class Driver:
    """A loop that drives connections: an STA's, the MTA's, or the node's I/O loop."""

    __slots__ = ("key", "loop", "on_stop", "thread_id")

    def __init__(self, key: str, loop: asyncio.AbstractEventLoop, thread_id: int,
                 on_stop: list[Callable[[], None]] | None) -> None:
        self.key = key
        self.loop = loop
        self.thread_id = thread_id
        #: Where to register a closer that runs as the driving apartment stops (None: the
        #: node's own loop, closed with the node).
        self.on_stop = on_stop

    def run(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the driver's thread: now if this is it, else soon."""
        if threading.get_ident() == self.thread_id:
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)


class PeerHost(LinkOwner, Protocol):
    """What a peer needs from its node."""

    key: bytes
    address: str
    name: str
    max_message_size: int
    owner: Owner

    def driver(self) -> Driver: ...

    def io_driver(self) -> Driver: ...

    def caller_apartment(self) -> ApartmentRef: ...

    def peer_gone(self, peer: Peer) -> None: ...

    async def dial(self, node_id: str, address: str) -> Setup: ...


class Peer:
    """See the module docstring."""

    def __init__(self, host: PeerHost, node_id: str, address: str, name: str) -> None:
        self.host = host
        self.node_id = node_id
        self.address = address
        self.name = describe_process(name)
        #: The largest message the peer reads (its ``max_message_size``, once known).
        self.max_message_size = host.max_message_size
        self._lock = threading.Lock()
        self._links: dict[tuple[str, str], CallerLink] = {}
        self._apartments: dict[str, RemoteApartment] = {}
        self._control: Connection | None = None
        self._inbound_controls = 0
        self._gone: BaseException | None = None
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.control_ref: ObjectRef | None = None  # the peer's control object, once known

    # ------------------------------------------------------------------ liveness

    def gone_error(self, what: str) -> BaseException | None:
        gone = self._gone
        if gone is None:
            return None
        return DisconnectedError(f"{what}: {self.name} is gone ({gone}); start it again")

    @property
    def is_gone(self) -> bool:
        return self._gone is not None

    def mark_gone(self, reason: BaseException) -> None:
        """The peer's process ended (or its control connection closed): fail what waits."""
        with self._lock:
            if self._gone is not None:
                return
            self._gone = reason
            links = list(self._links.values())
            self._links.clear()
            control, self._control = self._control, None
        for link in links:
            link.peer_gone = True  # a thread's kept link is not used again (remote_apartment)
            if link.connection is not None:
                link.connection.close(reason)
        if control is not None:
            control.close(reason)
        for apartment in list(self._apartments.values()):
            apartment._closing = True
        self.host.peer_gone(self)

    def inbound_control(self, opened: bool) -> None:
        """The peer opened (or closed) a control connection to this process."""
        with self._lock:
            self._inbound_controls += 1 if opened else -1
            last = not opened and self._inbound_controls == 0 and self._control is None
        if last:
            self.mark_gone(DisconnectedError(f"{self.name} closed its connection"))

    # ------------------------------------------------------------------ apartments

    def apartment(self, ref: ApartmentRef) -> RemoteApartment:
        """The remote apartment standing for ``ref`` (one per apartment)."""
        found = self._apartments.get(ref.apartment_id)
        if found is None:
            with self._lock:
                found = self._apartments.get(ref.apartment_id)
                if found is None:
                    found = RemoteApartment(self.host.owner, self, ref)
                    if self._gone is not None:
                        found._closing = True
                    self._apartments[ref.apartment_id] = found
        return found

    # ------------------------------------------------------------------ links

    def links_to(self, apartment_id: str) -> list[CallerLink]:
        """Every caller link to ``apartment_id`` (one per caller loop)."""
        return [link for (target, _), link in list(self._links.items()) if target == apartment_id]

    def caller_link(self, apartment_id: str) -> CallerLink:
        """The link that carries calls from the calling thread's loop to ``apartment_id``."""
        if self._gone is not None:
            error = self.gone_error("a call")
            assert error is not None
            raise error
        driver = self.host.driver()
        key = (apartment_id, driver.key)
        link = self._links.get(key)
        if link is not None and link.connection is not None and not link.connection.closed:
            return link
        with self._lock:
            error = self.gone_error("a call")
            if error is not None:
                raise error
            link = self._links.get(key)
            if link is None or link.connection is None or link.connection.closed:
                link = self._new_link(apartment_id, driver)
                self._links[key] = link
            control_needed = self._control is None
        if control_needed:
            self.ensure_control()
        return link

    def _new_link(self, apartment_id: str, driver: Driver) -> CallerLink:
        host = self.host
        link = CallerLink(host, self.node_id, self.name)
        connection = Connection(driver.loop, driver.thread_id, host.max_message_size,
                                f"calls to {apartment_id} of {self.name}", link.on_frame,
                                link.on_close, min(host.max_message_size, self.max_message_size))
        link.connection = connection
        if driver.on_stop is not None:
            driver.on_stop.append(lambda: connection.close(None))
        caller = host.caller_apartment()
        driver.run(lambda: self._spawn(driver.loop, self._connect(
            driver.loop, connection, caller, apartment_id)))
        return link

    def ensure_control(self) -> None:
        """Open the control connection (reference counting and liveness) if none is open."""
        with self._lock:
            if self._control is not None or self._gone is not None:
                return
            driver = self.host.io_driver()
            control = Connection(driver.loop, driver.thread_id, self.host.max_message_size,
                                 f"control of {self.name}", self._on_control_frame,
                                 self._on_control_close)
            self._control = control
        caller = ApartmentRef(self.host.node_id, "", "", "control", self.host.name)
        driver.run(lambda: self._spawn(driver.loop, self._connect(
            driver.loop, control, caller, "")))

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Any) -> None:
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, loop: asyncio.AbstractEventLoop, connection: Connection,
                       caller: ApartmentRef, target: str) -> None:
        host = self.host
        setup: Setup | None = None
        try:
            setup = await host.dial(self.node_id, self.address)
            hello = Hello(host.node_id, host.address, _pid(), host.name, caller, target)
            await setup.send(codec.encode(hello, 0, host.resolver(), "", True))
            _, _, fields, _ = codec.decode(await setup.receive(), host.resolver())
            if fields is None or Hello(*fields).node != self.node_id:
                raise ProtocolError(f"the process at {self.address} is not {self.name}")
            if target and not Hello(*fields).apartment.apartment_id:
                raise DisconnectedError(
                    f"apartment {target!r} of {self.name} is shut down; create the object "
                    "again in a running apartment")
        except BaseException as failure:
            if setup is not None:
                setup.abort()
            connection.close(failure if not isinstance(failure, OSError)
                             else DisconnectedError(f"cannot connect to {self.name}: {failure}"))
            if isinstance(failure, (KeyboardInterrupt, SystemExit)):
                raise
            return
        connection.open(*setup.opened())

    # ------------------------------------------------------------------ control messages

    def release(self, stub: RemoteStub) -> None:
        """``stub``'s last proxy went: release every reference this process received."""
        references = self.host.remote_stubs.taken(stub)  # type: ignore[attr-defined]
        if references:
            self._send_control(Release(stub.ref.object_id, references))

    def stub_of(self, ref: ObjectRef) -> RemoteStub | None:
        """The live stub of a remote object (a call in flight keeps it)."""
        stubs: RemoteStubs = self.host.remote_stubs  # type: ignore[attr-defined]
        return stubs.find(ref)

    def add_ref(self, object_id: int, holder: str) -> None:
        self._send_control(AddRef(object_id, holder))

    def send_lease(self, object_id: int, lease: str, seconds: float) -> None:
        """A reference to the peer's object leaves aptio under ``lease`` (see
        :mod:`aptio._remote.leases`)."""
        self._send_control(Lease(object_id, lease, seconds))

    def send_claim(self, object_id: int, lease: str) -> None:
        """This process unpickled a reference to the peer's object that travelled leased."""
        self._send_control(Claim(object_id, lease))

    def cancel(self, call_id: int) -> None:
        """The caller cancelled call ``call_id`` (an id unique in this process)."""
        self._send_control(Cancel(call_id))

    def _send_control(self, message: Any) -> None:
        self.ensure_control()
        control = self._control
        if control is None:
            return  # gone: its counts went with it
        try:
            control.send(codec.encode(message, 0, self.host.resolver(), "", True))
        except (ProtocolError, RuntimeError):
            pass

    async def ping(self) -> None:
        """A round trip on the control connection."""
        error = self.gone_error("ping")
        if error is not None:
            raise error
        self.ensure_control()
        control = self._control
        assert control is not None
        loop = asyncio.get_running_loop()
        token = id(loop) ^ len(self._pings) ^ threading.get_ident()
        waiter: asyncio.Future[None] = loop.create_future()
        self._pings[token] = waiter
        try:
            control.send(codec.encode(Ping(token), 0, self.host.resolver(), "", True))
            await waiter
        finally:
            self._pings.pop(token, None)

    def _on_control_frame(self, payload: bytes) -> None:
        cls, _, fields, _ = codec.decode(payload, self.host.resolver())
        if cls is Pong and fields is not None:
            waiter = self._pings.get(Pong(*fields).token)
            if waiter is not None:
                waiter.get_loop().call_soon_threadsafe(_resolve, waiter)

    def _on_control_close(self, error: BaseException | None) -> None:
        self.mark_gone(error if error is not None else DisconnectedError(
            f"{self.name} closed its connection"))

    async def control_call(self, method: str, *args: Any) -> Any:
        """Call ``method`` of the peer's control object (creation, apartments, shutdown)."""
        ref = self.control_ref
        if ref is None:
            raise DisconnectedError(f"{self.name} has no control object known here")
        proxy = self.host.arrived(ref)  # type: ignore[attr-defined]
        return await getattr(proxy, method)(*args)

    def close(self) -> None:
        """This process stops talking to the peer (its node closes)."""
        self.mark_gone(DisconnectedError("this process is shutting down"))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _pid() -> int:
    return os.getpid()
