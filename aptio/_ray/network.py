"""This process's channels to (and, in a server, from) the other aptio processes of a Ray
cluster: how its node dials them, and how an aptio server's actor takes exchanges.

An aptio server on Ray has the address ``ray:<namespace>/<actor name>``: any process of the
cluster can look its actor up and open a channel to it. Any other process (the driver, a
task's worker) cannot be called by Ray: a server reaches it over the channel that process
opened, the one it arrived by, found by the process's node id. Other processes reach it at
``ray-relay:<namespace>/<node id>``: through its relay (:mod:`aptio._ray.relay`), which it
starts once it hands references to its objects to processes it has no channel with (a proxy
pickled for a Ray task, or passed on between servers). Every connection between two
processes of the cluster travels on the channel between them (:mod:`aptio._ray.channel`),
never on a socket of aptio's own: Ray's authenticated channel is the only way in.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import ray

from .._remote.node import Node
from .._remote.transport import Dialer, Setup
from .._values.errors import DisconnectedError
from .._wire.messages import ObjectRef
from .batches import Item, pack_answer, pack_batch, unpack_batch
from .channel import GONE, NOTHING, Channel, Record
from .ends import ActorEnd, CallerEnd
from .relay import EXPIRY_KEEPALIVES, Relay, relay_name
from .relay_host import RelayedEnd, RelayHost

__all__ = ["ADDRESS_PREFIX", "DEFAULT_KEEPALIVE", "RELAY_PREFIX", "RayNetwork",
           "actor_address", "install", "relay_address"]

ADDRESS_PREFIX: Final = "ray:"
RELAY_PREFIX: Final = "ray-relay:"
#: How long an exchange waits at the actor when there is nothing to send (the caller end then
#: renews it); a caller not heard of for ``EXPIRY_KEEPALIVES`` of these is gone.
DEFAULT_KEEPALIVE: Final = 5.0
#: How long a dialer waits for a process's relay to appear (it starts it as it hands out the
#: reference the dialer holds; a reference passed on by a third process may arrive first).
RELAY_WAIT: Final = 15.0
#: How many closed relayed channels are remembered (their late batches are dropped).
_REMEMBERED: Final = 1000

_relay_class: Any = None
_relay_class_lock = threading.Lock()
_install_lock = threading.Lock()


def actor_address(namespace: str, name: str) -> str:
    return f"{ADDRESS_PREFIX}{namespace}/{name}"


def relay_address(namespace: str, node_id: str) -> str:
    return f"{RELAY_PREFIX}{namespace}/{node_id}"


def _relay_remote() -> Any:
    global _relay_class
    with _relay_class_lock:
        if _relay_class is None:
            _relay_class = ray.remote(Relay)
        return _relay_class


class RayNetwork(Dialer):
    """See the module docstring. One per node; thread-safe."""

    def __init__(self, node: Node, keepalive: float) -> None:
        self.node = node
        self.max_message_size = node.max_message_size
        self.keepalive = keepalive
        self._lock = threading.Lock()
        self._by_node: dict[str, Channel] = {}
        self._actor_ends: dict[str, ActorEnd] = {}
        self._handles: dict[str, Any] = {}
        self._tasks: set[Any] = set()
        self._actor_loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        self._closed = False
        self.namespace: str = ray.get_runtime_context().namespace
        self._relay: RelayHost | None = None
        self._relay_lock = threading.Lock()  # never taken on Ray's threads
        self._relayed: dict[str, RelayedEnd] = {}
        self._relayed_gone: dict[str, None] = {}

    # ------------------------------------------------------------------ dialing

    async def dial(self, node_id: str, address: str) -> Setup | None:
        with self._lock:
            channel = self._by_node.get(node_id)
        if channel is not None and channel.error is None:
            return channel.open()
        if address.startswith(RELAY_PREFIX):
            handle = await self._relay_handle(address, node_id)
        elif address.startswith(ADDRESS_PREFIX):
            handle = await self._handle(address)
        else:
            return None
        if self._closed:
            raise DisconnectedError("this process is shutting down")
        me = self.node.node_id

        def exchange(channel_id: str, seq: int, records: list[Record]) -> Any:
            return handle.exchange.remote(pack_batch(channel_id, me, node_id, seq, records))

        caller = CallerEnd(self, uuid.uuid4().hex, node_id, f"the Ray channel to {address}",
                           exchange, self._run_soon)
        with self._lock:
            found = self._by_node.get(node_id)
            if found is not None and found.error is None:
                return found.open()  # another dialer was faster
            self._by_node[node_id] = caller
            watch = not self._watching
            self._watching = True
        caller.start()
        if watch:
            self._run_soon(self._watch)
        return caller.open()

    async def _handle(self, address: str) -> Any:
        handle = self._handles.get(address)
        if handle is None:
            namespace, _, name = address[len(ADDRESS_PREFIX):].partition("/")
            try:
                handle = await asyncio.to_thread(ray.get_actor, name, namespace=namespace)
            except Exception as error:
                raise DisconnectedError(
                    f"no aptio server at {address} in this Ray cluster ({error})") from None
            self._handles[address] = handle
        return handle

    async def _relay_handle(self, address: str, node_id: str) -> Any:
        handle = self._handles.get(address)
        if handle is not None:
            return handle
        namespace = address[len(RELAY_PREFIX):].rpartition("/")[0]
        deadline = time.monotonic() + RELAY_WAIT
        while True:
            try:
                handle = await asyncio.to_thread(ray.get_actor, relay_name(node_id),
                                                 namespace=namespace)
                break
            except ValueError:  # not started yet: its process starts it as it hands refs out
                if time.monotonic() > deadline or self._closed:
                    raise DisconnectedError(
                        f"process {node_id} is reached through its relay, and none appeared "
                        f"within {RELAY_WAIT:g} s: the process is gone, or it is not on this "
                        "Ray cluster") from None
                await asyncio.sleep(0.05)
            except Exception as error:
                raise DisconnectedError(f"cannot reach process {node_id} through its relay "
                                        f"({error})") from None
        self._handles[address] = handle
        return handle

    # ------------------------------------------------------------------ the relay

    def own_address(self) -> str:
        """Where the other processes of the cluster reach this one: its actor, else its
        relay (started now if need be)."""
        if self.node.address.startswith(ADDRESS_PREFIX):
            return self.node.address
        self.ensure_relay()
        return relay_address(self.namespace, self.node.node_id)

    def address_of(self, ref: ObjectRef) -> str | None:
        """Where the other processes of the cluster reach the owner of ``ref`` (None: they
        cannot, it is not on this cluster)."""
        if ref.node == self.node.node_id:
            return self.own_address()
        if ref.address.startswith((ADDRESS_PREFIX, RELAY_PREFIX)):
            return ref.address
        with self._lock:
            channel = self._by_node.get(ref.node)
        if channel is not None and not isinstance(channel, CallerEnd):
            return relay_address(self.namespace, ref.node)  # it opened a channel here
        return None

    def passed_on(self, holder: str) -> None:
        """A reference to an object of this process went to ``holder`` ("": to a pickle):
        if this process has no channel with it, start the relay it will come through."""
        if holder:
            with self._lock:
                channel = self._by_node.get(holder)
            if channel is not None and channel.error is None:
                return
        if not self.node.address.startswith(ADDRESS_PREFIX):
            self.ensure_relay()

    def ensure_relay(self) -> None:
        """Start this process's relay, unless it runs (any thread but Ray's own)."""
        with self._relay_lock:
            if self._closed or (self._relay is not None and self._relay.error is None):
                return
            secret = secrets.token_hex(16)
            try:
                handle = _relay_remote().options(
                    name=relay_name(self.node.node_id), namespace=self.namespace, num_cpus=0,
                    max_restarts=0, max_task_retries=0,
                ).remote(self.node.node_id, secret, self.keepalive)
            except Exception as error:
                raise DisconnectedError(f"Ray could not start this process's relay: {error}"
                                        ) from None
            relay = RelayHost(handle, secret, self._run_soon, self._relayed_items,
                              self._relay_failed)
            self._relay = relay
            watch = not self._watching
            self._watching = True
        relay.start()
        if watch:
            self._run_soon(self._watch)

    def _relayed_items(self, items: list[Item]) -> None:
        """Batches callers sent through the relay (on a thread of Ray's)."""
        relay = self._relay
        for channel_id, sender, seq, records in items:
            with self._lock:
                end = self._relayed.get(channel_id)
                if (end is None and records is not None and relay is not None
                        and channel_id not in self._relayed_gone):
                    end = RelayedEnd(self, relay, channel_id, sender,
                                     f"the Ray channel from {sender} (through this process's "
                                     "relay)")
                    self._relayed[channel_id] = end
                    self._by_node[sender] = end
            if end is None:
                continue
            if records is None:
                end.fail(DisconnectedError(
                    f"not heard from for {self.keepalive * EXPIRY_KEEPALIVES:g} s: its "
                    "process is gone"))
            else:
                end.received(seq, records)

    def _relay_failed(self, error: BaseException) -> None:
        with self._lock:
            ends = list(self._relayed.values())
        for end in ends:
            end.fail(error)

    def _run_soon(self, fn: Callable[[], None]) -> None:
        try:
            self.node.io_driver().loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the node's loop is closed: the process is shutting down
            pass

    def _watch(self) -> None:
        """Fail the channels this process opened whose exchanges stopped coming back, or all
        of them once Ray is shut down here (on the node's I/O loop, periodically)."""
        if self._closed:
            return
        limit = self.keepalive * EXPIRY_KEEPALIVES
        now = time.monotonic()
        initialized = ray.is_initialized()
        with self._lock:
            callers = [channel for channel in self._by_node.values()
                       if isinstance(channel, CallerEnd)]
        relay = self._relay
        if relay is not None and not initialized:
            relay.fail(DisconnectedError("Ray was shut down in this process"))
        for channel in callers:
            if not initialized:
                channel.fail(DisconnectedError("Ray was shut down in this process"))
            elif now - channel.last_heard > limit:
                channel.fail(DisconnectedError(
                    f"its Ray actor has not answered for {limit:g} s (its node is unreachable)"))
        try:
            self.node.io_driver().loop.call_later(min(self.keepalive, 1.0), self._watch)
        except RuntimeError:  # the node's loop is closed
            pass

    # ------------------------------------------------------------------ ChannelHost

    def accept(self, setup: Setup) -> None:
        loop = self.node.io_driver().loop
        try:
            future = asyncio.run_coroutine_threadsafe(self.node.accept(setup), loop)
        except RuntimeError:
            setup.abort()
            return
        self._tasks.add(future)
        future.add_done_callback(self._tasks.discard)

    def forget(self, channel: Channel) -> None:
        with self._lock:
            if self._by_node.get(channel.peer_node) is channel:
                del self._by_node[channel.peer_node]
            if self._actor_ends.get(channel.channel_id) is channel:
                del self._actor_ends[channel.channel_id]
            if self._relayed.pop(channel.channel_id, None) is not None:
                self._relayed_gone[channel.channel_id] = None
                if len(self._relayed_gone) > _REMEMBERED:
                    del self._relayed_gone[next(iter(self._relayed_gone))]

    # ------------------------------------------------------------------ the actor's side

    async def exchange(self, batch: bytes) -> bytes:
        """An exchange from a caller end (on the actor's event loop): its batch in, the
        answer out (see :mod:`aptio._ray.batches`)."""
        try:
            channel_id, sender, node, seq, records = unpack_batch(batch)
        except Exception as error:
            return pack_answer(GONE, NOTHING, f"an unreadable exchange ({error})")
        if node != self.node.node_id:
            return pack_answer(GONE, NOTHING, (
                "the server's actor was restarted by Ray: a new process, without the objects "
                "of the one that died"))
        if self._closed:
            return pack_answer(GONE, NOTHING, "the server shut down")
        end = self._actor_ends.get(channel_id)
        if end is None:
            loop = asyncio.get_running_loop()
            if self._actor_loop is None:
                self._actor_loop = loop
                loop.call_later(self.keepalive, self._expire)
            end = ActorEnd(self, channel_id, sender, f"the Ray channel from {sender}", loop,
                           self.keepalive)
            with self._lock:
                self._actor_ends[channel_id] = end
                self._by_node[sender] = end
        return pack_answer(*await end.exchange(seq, records))

    def _expire(self) -> None:
        """Fail the channels whose callers fell silent (on the actor's loop, periodically)."""
        if self._closed:
            return
        limit = self.keepalive * EXPIRY_KEEPALIVES
        now = time.monotonic()
        with self._lock:
            silent = [end for end in self._actor_ends.values() if now - end.last_heard > limit]
        for end in silent:
            end.fail(DisconnectedError(f"not heard from for {limit:g} s: its process is gone"))
        assert self._actor_loop is not None
        self._actor_loop.call_later(self.keepalive, self._expire)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        with self._relay_lock:
            with self._lock:
                self._closed = True
                channels = list({id(c): c for c in [*self._by_node.values(),
                                                    *self._actor_ends.values(),
                                                    *self._relayed.values()]}.values())
            relay = self._relay
        for channel in channels:
            channel.fail(DisconnectedError("this process is shutting down"))
        if relay is not None:
            relay.fail(DisconnectedError("this process is shutting down"))
            try:
                ray.kill(relay.handle, no_restart=True)
            except Exception:  # gone already, or Ray is shut down here
                pass


def install(node: Node, keepalive: float = DEFAULT_KEEPALIVE,
            address: str | None = None) -> RayNetwork:
    """The node's Ray network, added on first need. ``address``: the server's own (else the
    node keeps its address, or takes its relay's)."""
    with _install_lock:
        for dialer in node.dialers:
            if isinstance(dialer, RayNetwork):
                return dialer
        return _install(node, keepalive, address)


def _install(node: Node, keepalive: float, address: str | None) -> RayNetwork:
    network = RayNetwork(node, keepalive)
    node.dialers.insert(0, network)
    if address is not None:
        node.address = address
    elif not node.address:
        node.address = relay_address(network.namespace, node.node_id)
    node.leases.on_passed_on = network.passed_on
    return network
