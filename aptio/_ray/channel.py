"""A channel: every connection between two aptio processes of a Ray cluster, carried on Ray
actor calls (its two ends are in :mod:`aptio._ray.ends`).

One end is an aptio server, a Ray actor (the *actor end*); the other, the *caller end*, is
any process that can call it: the driver, a task, another actor. Ray lets the caller call the
actor and never the reverse (a driver cannot be called), so every exchange is an actor call
the caller end makes: ``exchange(seq, records)`` hands the actor a batch of the caller's
records and returns the next batch of the actor's records for it as soon as there is one (a
long poll). The caller end keeps an exchange waiting at the actor at all times, so the actor
can always speak: a reply, a call back into the caller, a new connection it opens.

A record is ``(connection id, bytes)``: whole frames of one connection, as a socket would
carry them, or ``(connection id, None)``: that connection closed. The caller end numbers the
connections it opens 1, 3, 5...; the actor end 2, 4, 6...; the first record of a new id
carries its opener's ``Hello``, and the other end accepts it as a node accepts a socket.

Ordering. Ray keeps no order between an async actor's calls, nor between their replies, so
each end numbers the batches it sends (``seq``: 0, 1, 2...) and the other end delivers them in
that order, holding back a batch that overtook an earlier one. A batch that carries nothing
has seq ``NOTHING`` and is not ordered. Delivery posts each connection's bytes to its loop
under the channel's lock, so batches delivered from two threads reach a loop in order too.

Faults. An exchange that fails (the actor died, its node died, Ray shut down) fails the whole
channel: every connection on it closes with DisconnectedError, so every call waiting on it
fails and later ones fail as they are sent. An actor restarted by Ray is a new process with a
new node id, which answers the old channel's exchanges with ``GONE``: its objects are gone,
and calls fail instead of reaching fresh ones. The actor end fails a channel whose caller has
not been heard of for ``expiry`` seconds (the caller end renews its waiting exchange at least
every ``keepalive`` seconds, when the actor releases it empty).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
from typing import Protocol

from .._remote.sockets import HANDSHAKE_TIMEOUT
from .._remote.transport import Receiver, Setup, Transport
from .._values.errors import DisconnectedError, ProtocolError
from .._wire.framing import FrameReader, frame
from .mailbox import GONE, NOTHING, OK

__all__ = ["GONE", "NOTHING", "OK", "Channel", "ChannelHost", "RaySetup", "RayTransport",
           "Record"]

Record = tuple[int, bytes | None]


class ChannelHost(Protocol):
    """What a channel needs from its process's network."""

    max_message_size: int

    def accept(self, setup: Setup) -> None:
        """Serve a connection the other end opened (from any thread)."""

    def forget(self, channel: Channel) -> None:
        """The channel failed: dial anew next time."""


class Channel:
    """What both ends share: the connections, their ids, ordered delivery, failure."""

    def __init__(self, host: ChannelHost, channel_id: str, peer_node: str, first_id: int,
                 label: str) -> None:
        self.host = host
        self.channel_id = channel_id
        self.peer_node = peer_node
        self.label = label
        self._lock = threading.Lock()
        self._ends: dict[int, RaySetup | RayTransport] = {}
        self._ids = itertools.count(first_id, 2)
        self._theirs = 1 - first_id % 2  # the parity of the ids the other end opens
        self._next_in = 0
        self._held: dict[int, list[Record]] = {}
        self.error: BaseException | None = None

    def send(self, conn_id: int, data: bytes | None) -> None:
        """Send one record to the other end (any thread)."""
        raise NotImplementedError

    def open(self) -> RaySetup:
        """A new connection to the other end, before its ``Hello`` went out."""
        with self._lock:
            if self.error is not None:
                raise DisconnectedError(f"{self.label}: {self.error}")
            setup = RaySetup(self, next(self._ids))
            self._ends[setup.conn_id] = setup
        return setup

    def received(self, seq: int, records: list[Record]) -> None:
        """A batch from the other end (any thread): delivered in ``seq`` order."""
        accepted: list[RaySetup] = []
        with self._lock:
            if self.error is not None or seq == NOTHING:
                return
            if seq != self._next_in:
                self._held[seq] = records
                return
            batches = [records]
            self._next_in += 1
            while self._next_in in self._held:
                batches.append(self._held.pop(self._next_in))
                self._next_in += 1
            for batch in batches:
                self._deliver(batch, accepted)
        for setup in accepted:
            self.host.accept(setup)

    def _deliver(self, records: list[Record], accepted: list[RaySetup]) -> None:
        # Under the lock: posts to each loop keep the order of the batches.
        joined: dict[int, list[bytes]] = {}
        ends = self._ends
        for conn_id, data in records:
            end = ends.get(conn_id)
            if end is None:
                if data is None or conn_id % 2 != self._theirs:
                    continue  # a record for a connection this end closed already
                end = ends[conn_id] = RaySetup(self, conn_id)
                accepted.append(end)
            if data is None:
                pending = joined.pop(conn_id, None)
                if pending:
                    end.take(b"".join(pending))
                del ends[conn_id]
                end.take(None)
            elif isinstance(end, RaySetup):
                end.take(data)
            else:
                joined.setdefault(conn_id, []).append(data)
        for conn_id, parts in joined.items():
            ends[conn_id].take(b"".join(parts))

    def fail(self, error: BaseException) -> None:
        """The channel is gone: every connection on it closes with ``error`` (any thread)."""
        with self._lock:
            if self.error is not None:
                return
            self.error = error
            ends = list(self._ends.values())
            self._ends.clear()
            self._held.clear()
        for end in ends:
            end.fail(error)
        self.host.forget(self)

    def _replace(self, conn_id: int, setup: RaySetup, transport: RayTransport) -> list[bytes]:
        """The connection opened: ``transport`` takes what its setup received meanwhile."""
        with self._lock:
            if self.error is not None:
                raise DisconnectedError(f"{self.label}: {self.error}")
            if self._ends.get(conn_id) is setup:
                self._ends[conn_id] = transport
            return setup.leftover()

    def _closed(self, conn_id: int) -> None:
        """This end closed ``conn_id``: the other end hears of it."""
        with self._lock:
            if self._ends.pop(conn_id, None) is None or self.error is not None:
                return
        self.send(conn_id, None)


class RaySetup(Setup):
    """A connection on a channel before it opens: its two ``Hello`` messages (see
    :class:`aptio._remote.transport.Setup`). ``take`` runs under the channel's lock."""

    def __init__(self, channel: Channel, conn_id: int) -> None:
        self.channel = channel
        self.conn_id = conn_id
        self._reader = FrameReader(channel.host.max_message_size)
        self._frames: collections.deque[bytes] = collections.deque()
        self._ended: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def take(self, data: bytes | None) -> None:
        if data is None:
            # Gone (its actor died, say): a disconnect, not a broken protocol.
            self._ended = DisconnectedError("the peer closed the connection during setup")
        else:
            try:
                self._frames.extend(self._reader.feed(data))
            except ProtocolError as error:
                self._ended = error
        self._wake()

    def fail(self, error: BaseException) -> None:
        with self.channel._lock:
            self._ended = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            try:
                waiter.get_loop().call_soon_threadsafe(_resolve, waiter)
            except RuntimeError:  # that loop is closed: nobody waits
                pass

    def leftover(self) -> list[bytes]:
        frames = [frame(payload, 1 << 62) for payload in self._frames]
        self._frames.clear()
        return frames

    async def send(self, payload: bytes) -> None:
        self.channel.send(self.conn_id, frame(payload, self.channel.host.max_message_size))

    async def receive(self) -> bytes:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            while True:
                with self.channel._lock:
                    if self._frames:
                        return self._frames.popleft()
                    if self._ended is not None:
                        raise self._ended
                    waiter = self._waiter = asyncio.get_running_loop().create_future()
                await waiter

    def opened(self) -> tuple[Transport, FrameReader]:
        return RayTransport(self.channel, self.conn_id, self), FrameReader(
            self.channel.host.max_message_size)

    def abort(self) -> None:
        self.channel._closed(self.conn_id)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class RayTransport(Transport):
    """One open connection on a channel. Received bytes are posted to the connection's loop
    (``take``, under the channel's lock); written bytes leave as one record."""

    __slots__ = ("_channel", "_conn_id", "_connection", "_setup")

    def __init__(self, channel: Channel, conn_id: int, setup: RaySetup) -> None:
        self._channel = channel
        self._conn_id = conn_id
        self._setup = setup
        self._connection: Receiver | None = None

    def start(self, connection: Receiver) -> None:
        self._connection = connection
        try:
            backlog = self._channel._replace(self._conn_id, self._setup, self)
        except DisconnectedError as error:
            connection.close(error)
            return
        if backlog:
            connection.received(b"".join(backlog))

    def take(self, data: bytes | None) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            if data is None:
                connection.loop.call_soon_threadsafe(connection.close, None)
            else:
                connection.loop.call_soon_threadsafe(connection.received, data)
        except RuntimeError:  # the connection's loop is closed: it is gone
            pass

    def fail(self, error: BaseException) -> None:
        if self._connection is not None:
            self._connection.close(error)

    def write(self, data: bytes) -> None:
        self._channel.send(self._conn_id, data)

    def stop(self) -> None:
        self._channel._closed(self._conn_id)
