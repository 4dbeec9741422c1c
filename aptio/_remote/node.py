"""This process as one of a session of aptio processes: its identity, its key, where it
listens, the objects it exports, and the peers it talks to.

Every process of a session (the client that started the servers, the servers, the servers
they start) shares one secret key, handed to each child on its standard input; each listens on
a Unix socket in a directory only the user can read. A connection's first bytes authenticate
both ends (:mod:`aptio._wire.handshake`); then its ``Hello`` says what it carries: calls from
one of the peer's apartments to one of ours (driven by our apartment's own loop), or the
control messages (reference counting, liveness), driven by the node's I/O loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any, Final

from .._apartments.base import Apartment, Owner
from .._apartments.mta import MTA
from .._apartments.sta import STA
from .._call.call import Call
from .._call.context import current_site, thread_state, thread_states
from .._call.contract import ApartmentContract, CallRecord
from .._proxy.proxy import Proxy, proxy_class
from .._proxy.stub import Stub
from .._threads.loops import running_loop
from .._values.errors import DisconnectedError, ProtocolError
from .._wire.messages import (
    AddRef,
    ApartmentRef,
    Bye,
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
from .exports import Exports, LiveCalls
from .io_thread import IoThread
from .leases import Leases
from .links import TargetLink
from .peer import Driver, Peer
from .remote_stub import RemoteStub, RemoteStubs
from .sockets import accept_socket, dial_socket
from .transport import Dialer, Setup

__all__ = ["Node"]

#: How setting up an incoming connection can fail without it being a bug of ours (the peer
#: broke the protocol, hung up, went silent, or the node is closing): the connection is
#: dropped and the node goes on.
_SETUP_FAILURES: Final = (OSError, ProtocolError, DisconnectedError, TimeoutError,
                          asyncio.CancelledError)

#: How many cancels that overtook their requests a node remembers.
_EARLY_CANCELS: Final = 10_000


class Node:
    """See the module docstring."""

    def __init__(self, owner: Owner, name: str, key: bytes, directory: str,
                 max_message_size: int, use_uvloop: bool | None,
                 apartment_of: Callable[[str], Apartment | None]) -> None:
        self.owner = owner
        self.name = name
        self.key = key
        self.directory = directory
        self.max_message_size = max_message_size
        self.node_id = uuid.uuid4().hex
        self.address = ""
        self.exports = Exports()
        self.remote_stubs = RemoteStubs()
        self.live_calls = LiveCalls()
        self.serving: dict[tuple[str, int], CallRecord[Any]] = {}
        #: Cancels that overtook their requests (they travel on another connection); bounded.
        self.cancelled_early: dict[tuple[str, int], None] = {}
        self._apartment_of = apartment_of
        self._io = IoThread(f"{name} I/O", use_uvloop)
        self._io_driver = Driver("io", self._io.loop, self._io.thread.ident or 0, None)
        self._drivers: dict[str, Driver] = {}
        self._peers: dict[str, Peer] = {}
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._socket_path = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        #: Other ways to reach peers (``aptio.ray`` adds its own), asked in order before the
        #: session's sockets.
        self.dialers: list[Dialer] = []
        self.leases = Leases(self)

    # ------------------------------------------------------------------ listening

    def listen(self) -> str:
        """Listen for connections (once); returns the address."""
        with self._lock:
            if self._listener is not None:
                return self.address
            path = os.path.join(self.directory, f"{self.node_id[:16]}.sock")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            os.chmod(path, 0o600)
            listener.listen(128)
            listener.setblocking(False)
            self._listener = listener
            self._socket_path = self.address = path
        self._io.call(lambda: self._io.loop.add_reader(listener.fileno(), self._on_accept))
        return path

    def _on_accept(self) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        sock.setblocking(False)
        task = self._io.loop.create_task(self._serve_inbound(sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_inbound(self, sock: socket.socket) -> None:
        """Authenticate a new socket (nothing is unpickled before), then accept what it
        carries."""
        loop = asyncio.get_running_loop()
        try:
            setup = await accept_socket(loop, sock, self.key, self.max_message_size)
        except _SETUP_FAILURES:
            return
        if setup is not None:  # else not one of ours: nothing of it was read
            await self.accept(setup)

    async def accept(self, setup: Setup) -> None:
        """Serve a connection another process opened, once its transport authenticated it
        (on the loop ``setup`` runs on): read its ``Hello``, answer, and hand it to the loop
        that drives what it carries."""
        try:
            _, _, fields, _ = codec.decode(await setup.receive(), self)
            if fields is None:
                raise ProtocolError("unreadable hello")
            hello = Hello(*fields)
            peer = self.peer(hello.node, hello.address, hello.apartment.process)
            if not hello.target:
                await self._open_control(setup, peer)
            else:
                await self._open_target(setup, peer, hello)
        except _SETUP_FAILURES:
            setup.abort()

    async def _send_hello(self, setup: Setup, apartment: ApartmentRef) -> None:
        hello = Hello(self.node_id, self.address, os.getpid(), self.name, apartment, "")
        await setup.send(codec.encode(hello, 0, self, "", True))

    async def _open_control(self, setup: Setup, peer: Peer) -> None:
        connection: Connection

        def on_frame(payload: bytes) -> None:
            self._on_control(peer, connection, payload)

        def on_close(error: BaseException | None) -> None:
            peer.inbound_control(False)

        connection = Connection(asyncio.get_running_loop(), threading.get_ident(),
                                self.max_message_size, f"control from {peer.name}", on_frame,
                                on_close)
        await self._send_hello(setup, ApartmentRef(self.node_id, "", "", "control", self.name))
        peer.inbound_control(True)
        connection.open(*setup.opened())

    async def _open_target(self, setup: Setup, peer: Peer, hello: Hello) -> None:
        apartment = self._apartment_of(hello.target)
        driver = self._driver_of(apartment) if apartment is not None else None
        if apartment is None or driver is None or apartment.is_closed:
            await self._send_hello(setup, ApartmentRef(self.node_id, "", "", "", self.name))
            setup.abort()
            return
        caller = peer.apartment(hello.apartment)
        connection = Connection(driver.loop, driver.thread_id, self.max_message_size,
                                f"calls from {peer.name} to {apartment.name!r}",
                                lambda payload: link.on_frame(payload),
                                lambda error: link.on_close(error))
        link = TargetLink(self, peer.node_id, caller, connection)
        await self._send_hello(setup, self.apartment_ref(apartment))
        if driver.on_stop is not None:
            driver.on_stop.append(lambda: connection.close(None))
        transport, reader = setup.opened()
        driver.run(lambda: connection.open(transport, reader))

    def _on_control(self, peer: Peer, connection: Connection, payload: bytes) -> None:
        cls, _, fields, _ = codec.decode(payload, self)
        if fields is None:
            return
        if cls is Release:
            release = Release(*fields)
            self.exports.release(release.object_id, peer.node_id, release.references)
        elif cls is AddRef:
            add = AddRef(*fields)
            self.exports.add_ref(add.object_id, add.holder)
            self.leases.passed_on(add.holder)
        elif cls is Cancel:
            key = (peer.node_id, Cancel(*fields).call_id)
            call = self.serving.get(key)
            if isinstance(call, Call):
                call.cancel()  # its ``_cancelled`` flag: a busy sync method polls it
            elif call is None:
                early = self.cancelled_early
                early[key] = None  # the request is still on its way: it never starts
                if len(early) > _EARLY_CANCELS:
                    del early[next(iter(early))]
        elif cls is Ping:
            connection.send(codec.encode(Pong(Ping(*fields).token), 0, self, "", True))
        elif cls is Lease:
            self.leases.held(Lease(*fields))
        elif cls is Claim:
            self.leases.claimed(peer.node_id, Claim(*fields))
        elif cls is Bye:
            connection.close(None)

    async def dial(self, node_id: str, address: str) -> Setup:
        """A new authenticated connection to process ``node_id`` (on the loop that will drive
        it): through the first dialer that reaches it, else the socket at ``address``."""
        for dialer in self.dialers:
            setup = await dialer.dial(node_id, address)
            if setup is not None:
                return setup
        if not os.path.isabs(address):
            raise DisconnectedError(f"no way to reach process {node_id} at {address!r} from "
                                    "here (it listens on no socket of this machine)")
        return await dial_socket(asyncio.get_running_loop(), address, self.key,
                                 self.max_message_size)

    # ------------------------------------------------------------------ drivers

    def driver(self) -> Driver:
        """The loop that drives this thread's calls to other processes: its STA's, the MTA's
        loop (on that thread), else the node's I/O loop."""
        here = thread_state().apartment
        if isinstance(here, STA) and here._loop is not None:
            return self._driver_of(here) or self._io_driver
        if isinstance(here, MTA):
            loop_thread = here._loop_thread
            if loop_thread is not None and running_loop() is loop_thread.loop:
                return self._driver_of(here) or self._io_driver
        return self._io_driver

    def io_driver(self) -> Driver:
        return self._io_driver

    def _driver_of(self, apartment: Apartment) -> Driver | None:
        key = apartment.apartment_id
        found = self._drivers.get(key)
        if found is not None:
            return found
        if isinstance(apartment, STA) and apartment._loop is not None:
            found = Driver(key, apartment._loop, apartment._thread_id, apartment._stop_hooks)
        elif isinstance(apartment, MTA):
            loop_thread = apartment.loop_thread()
            if loop_thread is None:
                return None
            found = Driver(key, loop_thread.loop, loop_thread.inbox.thread_id,
                           apartment._stop_hooks)
        else:
            return self._io_driver
        with self._lock:
            self._drivers[key] = found
        apartment._stop_hooks.append(lambda: self._forget_driver(key))
        return found

    def _forget_driver(self, key: str) -> None:
        with self._lock:
            self._drivers.pop(key, None)

    # ------------------------------------------------------------------ peers

    def peer(self, node_id: str, address: str, name: str) -> Peer:
        found = self._peers.get(node_id)
        if found is None:
            with self._lock:
                found = self._peers.get(node_id)
                if found is None:
                    found = Peer(self, node_id, address, name)
                    if self._closed:
                        found.mark_gone(DisconnectedError("this process is shutting down"))
                    self._peers[node_id] = found
        return found

    def control_peers(self) -> list[Peer]:
        """The live peers whose control object this process knows: the servers it started
        or connected to."""
        with self._lock:
            peers = list(self._peers.values())
        return [peer for peer in peers if peer.control_ref is not None and not peer.is_gone]

    def peer_gone(self, peer: Peer) -> None:
        self.exports.holder_gone(peer.node_id)

    def caller_apartment(self) -> ApartmentRef:
        site = current_site()
        if isinstance(site, Apartment) and not site._remote:
            return self.apartment_ref(site)
        return ApartmentRef(self.node_id, "", "mta", "a thread in no apartment", self.name)

    def apartment_ref(self, apartment: ApartmentContract) -> ApartmentRef:
        apartment_id = apartment.apartment_id if isinstance(apartment, Apartment) else ""
        return ApartmentRef(self.node_id, apartment_id, apartment.kind.value, apartment.name,
                            self.name)

    # ------------------------------------------------------------------ the codec's resolver

    def resolver(self) -> Node:
        return self

    def local_apartment(self, apartment_id: str) -> Apartment | None:
        """A running apartment of this process, by id."""
        return self._apartment_of(apartment_id)

    def export(self, stub: Stub, holder: str) -> ObjectRef:
        if not self.address:
            self.listen()  # the holder will call back, or release, here
        object_id = self.exports.export(stub, holder)
        return ObjectRef(self.node_id, self.address, object_id,
                         self.apartment_ref(stub.apartment), codec.class_ref(stub.cls))

    def unexport(self, ref: ObjectRef, holder: str) -> None:
        self.exports.unexport(ref.object_id, holder)

    def pass_on(self, stub: Stub, holder: str) -> ObjectRef:
        assert isinstance(stub, RemoteStub)
        ref = stub.ref
        if holder != ref.node:
            self.peer(ref.node, ref.address, ref.apartment.process).add_ref(ref.object_id,
                                                                             holder)
        return ref

    def arrived(self, ref: ObjectRef) -> Proxy[Any]:
        if ref.node == self.node_id:
            stub = self.exports.lookup(ref.object_id)
            if stub is None:
                raise DisconnectedError(
                    f"a reference to object {ref.object_id} of this process came back after "
                    "the object was released")
            return proxy_class(stub.cls)(stub)
        peer = self.peer(ref.node, ref.address, ref.apartment.process)
        peer.ensure_control()  # to release it, and to hear if its owner goes
        return self.remote_stubs.arrived(ref, peer.apartment(ref.apartment))

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop listening, close every connection, release what others held (any thread but
        the node's I/O thread)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            peers = list(self._peers.values())
            listener, self._listener = self._listener, None
        for peer in peers:
            peer.close()
        for state in list(thread_states.values()):
            # The links threads kept to this node's peers (all closed now): a thread that
            # outlives the node (the main thread, across runs) would keep them, and through
            # them the node, until its next call elsewhere.
            state.caller_links.clear()
        if listener is not None:
            self._io.call(lambda: _stop_listening(self._io.loop, listener))
        self._io.stop()
        if listener is not None:
            listener.close()
        for dialer in self.dialers:
            dialer.close()
        if self._socket_path:
            try:
                os.unlink(self._socket_path)
            except FileNotFoundError:
                pass
        self.exports.clear()


def _stop_listening(loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
    loop.remove_reader(listener.fileno())
