"""How a connection's bytes travel and how one is set up: the interfaces a way of reaching
other processes implements (Unix sockets, :mod:`aptio._remote.sockets`; a Ray channel,
:mod:`aptio._ray.channel`).

Before a connection opens, its two ends exchange their ``Hello`` messages over a
:class:`Setup`: the transport once its peer is authenticated, not yet handed to a
:class:`~aptio._remote.connection.Connection`. Kept apart from the connection, which is
compiled: these are subclassed by interpreted classes, and the compiled socket transport
implements :class:`Transport` without deriving from it.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Protocol

from .._wire.framing import FrameReader

__all__ = ["Dialer", "Receiver", "Setup", "Transport"]


class Receiver(Protocol):
    """What a transport feeds: a :class:`~aptio._remote.connection.Connection`."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def received(self, data: bytes | memoryview) -> None: ...

    def close(self, error: BaseException | None) -> None: ...


class Transport(Protocol):
    """How one connection's bytes travel. Every method runs on the connection's loop thread.
    A protocol, so that a compiled class implements it too (the socket transport)."""

    __slots__ = ()

    @abc.abstractmethod
    def start(self, connection: Receiver) -> None:
        """Begin: hand received bytes to ``connection.received`` and report the end with
        ``connection.close(error)`` (None for a clean end), both on the loop's thread."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data`` (whole frames) after everything written before; a failure closes the
        connection."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop reading and writing and let go of what it holds (once, from ``close``)."""


class Setup(abc.ABC):
    """A transport whose peer is authenticated, before a connection opens on it: each end
    sends its ``Hello`` and receives the other's (the connecting end first)."""

    @abc.abstractmethod
    async def send(self, payload: bytes) -> None:
        """Send one message (on the loop that will drive the connection)."""

    @abc.abstractmethod
    async def receive(self) -> bytes:
        """The next message (DisconnectedError if the peer hangs up first, ProtocolError if
        it breaks the protocol, TimeoutError if nothing comes in time)."""

    @abc.abstractmethod
    def opened(self) -> tuple[Transport, FrameReader]:
        """The transport, and the reader holding whatever arrived after the setup's
        messages: pass both to ``Connection.open``."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Give up (the setup failed): close the transport."""


class Dialer(abc.ABC):
    """A way to reach other processes besides the session's sockets (a Ray channel, say)."""

    @abc.abstractmethod
    async def dial(self, node_id: str, address: str) -> Setup | None:
        """A new connection to process ``node_id`` (listening at ``address``), authenticated,
        or None if this dialer does not reach it (on the loop that will drive it)."""

    @abc.abstractmethod
    def close(self) -> None:
        """The node closes: every connection this dialer carries ends."""
