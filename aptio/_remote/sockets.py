"""Connections over Unix domain sockets (the local server's transport): the HMAC handshake
that authenticates both ends before anything is read, the setup that follows it, and the
transport that moves a connection's bytes.

Once set up, a connection's bytes move through :class:`SocketTransport`
(:mod:`aptio._remote.socket_transport`, compiled with the call path).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final

from .._values.errors import DisconnectedError, ProtocolError
from .._wire.framing import FrameReader, frame
from .._wire.handshake import (
    ACCEPTED,
    ANSWER_SIZE,
    CONFIRM_SIZE,
    HELLO_SIZE,
    answer_hello,
    check_answer,
    check_confirm,
    hello,
)
from .socket_transport import RECV_SIZE, SocketTransport
from .transport import Setup, Transport

__all__ = ["HANDSHAKE_TIMEOUT", "SocketSetup", "SocketTransport", "accept_socket",
           "dial_socket"]

#: How long a peer has to authenticate (and each setup message to come) before the
#: connection is dropped.
HANDSHAKE_TIMEOUT: Final = 10.0


class SocketSetup(Setup):
    """An authenticated socket before its connection opens (see :class:`Setup`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 limit: int) -> None:
        self._loop = loop
        self._sock = sock
        self._limit = limit
        self._reader = FrameReader(limit)

    async def send(self, payload: bytes) -> None:
        await self._loop.sock_sendall(self._sock, frame(payload, self._limit))

    async def receive(self) -> bytes:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            while True:
                chunk = await self._loop.sock_recv(self._sock, RECV_SIZE)
                if not chunk:  # gone (killed, say): a disconnect, not a broken protocol
                    raise DisconnectedError("the peer closed the connection during setup")
                frames = self._reader.feed(chunk)
                if len(frames) > 1:  # setup exchanges one frame each way, each awaiting the other
                    raise ProtocolError("the peer sent messages before setup finished")
                if frames:
                    return frames[0]

    def opened(self) -> tuple[Transport, FrameReader]:
        return SocketTransport(self._sock), self._reader

    def abort(self) -> None:
        self._sock.close()


async def _read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:  # gone (killed, say): a disconnect, not a broken protocol
            raise DisconnectedError("the peer closed the connection during the handshake")
        data += chunk
    return data


async def dial_socket(loop: asyncio.AbstractEventLoop, address: str, key: bytes,
                      limit: int) -> SocketSetup:
    """Connect to ``address`` and authenticate both ends (the connecting side's half of the
    handshake): OSError if nobody listens there, DisconnectedError if the peer closes the
    connection before it is done, ProtocolError on any other failure."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, address)
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            server_hello = await _read_exactly(loop, sock, HELLO_SIZE)
            answer, expected = answer_hello(key, server_hello)
            await loop.sock_sendall(sock, answer)
            check_confirm(expected, await _read_exactly(loop, sock, CONFIRM_SIZE))
    except BaseException:
        sock.close()
        raise
    return SocketSetup(loop, sock, limit)


async def accept_socket(loop: asyncio.AbstractEventLoop, sock: socket.socket, key: bytes,
                        limit: int) -> SocketSetup | None:
    """The accepting side's half of the handshake: the setup if the peer proved it holds
    ``key``, else None (the socket is closed, nothing of it read beyond the handshake)."""
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            greeting, nonce = hello()
            await loop.sock_sendall(sock, greeting)
            answer = await _read_exactly(loop, sock, ANSWER_SIZE)
            confirm, status = check_answer(key, nonce, answer)
            await loop.sock_sendall(sock, confirm)
    except BaseException:
        sock.close()
        raise
    if status != ACCEPTED:
        sock.close()
        return None
    return SocketSetup(loop, sock, limit)
