"""This process's channels to (and, in a server, from) the other aptio processes of a Ray
cluster: how its node dials them, and how an aptio server's actor takes exchanges.

An aptio server on Ray has the address ``ray:<namespace>/<actor name>``: any process of the
cluster can look its actor up and open a channel to it. Any other process (the driver, a
task's worker) has an address no one can dial (``ray-caller:<node id>``): a server reaches it
only over a channel that process opened, the one it arrived by, found by the process's node
id. Every connection between two processes of the cluster travels on the channel between them
(:mod:`aptio._ray.channel`), never on a socket of aptio's own: Ray's authenticated channel is
the only way in.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import ray

from .._remote.connection import Dialer, Setup
from .._remote.node import Node
from .._values.errors import DisconnectedError
from .batches import pack_answer, pack_batch, unpack_batch
from .channel import GONE, NOTHING, Channel, Record
from .ends import ActorEnd, CallerEnd

__all__ = ["ADDRESS_PREFIX", "CALLER_PREFIX", "DEFAULT_KEEPALIVE", "RayNetwork",
           "actor_address", "install"]

ADDRESS_PREFIX: Final = "ray:"
CALLER_PREFIX: Final = "ray-caller:"
#: How long an exchange waits at the actor when there is nothing to send (the caller end then
#: renews it); a caller not heard of for ``EXPIRY_KEEPALIVES`` of these is gone.
DEFAULT_KEEPALIVE: Final = 5.0
EXPIRY_KEEPALIVES: Final = 4


def actor_address(namespace: str, name: str) -> str:
    return f"{ADDRESS_PREFIX}{namespace}/{name}"


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

    # ------------------------------------------------------------------ dialing

    async def dial(self, node_id: str, address: str) -> Setup | None:
        with self._lock:
            channel = self._by_node.get(node_id)
        if channel is not None and channel.error is None:
            return channel.open()
        if address.startswith(CALLER_PREFIX):
            raise DisconnectedError(
                f"process {node_id} is reached only over a channel it opened, and it opened "
                "none to this one (or that channel is gone)")
        if not address.startswith(ADDRESS_PREFIX):
            return None
        if self._closed:
            raise DisconnectedError("this process is shutting down")
        handle = await self._handle(address)
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
        with self._lock:
            self._closed = True
            channels = list({id(c): c for c in [*self._by_node.values(),
                                                *self._actor_ends.values()]}.values())
        for channel in channels:
            channel.fail(DisconnectedError("this process is shutting down"))


def install(node: Node, keepalive: float = DEFAULT_KEEPALIVE,
            address: str | None = None) -> RayNetwork:
    """The node's Ray network, added on first need. ``address``: the server's own (else the
    node keeps its address, or takes one no one can dial)."""
    for dialer in node.dialers:
        if isinstance(dialer, RayNetwork):
            return dialer
    network = RayNetwork(node, keepalive)
    node.dialers.insert(0, network)
    if address is not None:
        node.address = address
    elif not node.address:
        node.address = f"{CALLER_PREFIX}{node.node_id}"
    return network
