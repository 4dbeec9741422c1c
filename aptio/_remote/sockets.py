"""Connections over Unix domain sockets (the local server's transport): the HMAC handshake
that authenticates both ends before anything is read, the setup that follows it, and the
transport that moves a connection's bytes.

The socket is non-blocking and watched by the connection's loop (``add_reader``; a writer
callback only while a send left bytes behind). Received bytes land in one reused buffer: a
fresh one per read would cost an mmap, page faults and an munmap every time.
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
from .transport import Receiver, Setup, Transport

__all__ = ["HANDSHAKE_TIMEOUT", "SocketSetup", "SocketTransport", "accept_socket",
           "dial_socket"]

#: How long a peer has to authenticate (and each setup message to come) before the
#: connection is dropped.
HANDSHAKE_TIMEOUT: Final = 10.0
_RECV_SIZE: Final = 256 * 1024


class SocketTransport(Transport):
    """A connected, authenticated socket (see the module docstring)."""

    __slots__ = ("_connection", "_loop", "_rbuf", "_sock", "_wbuf")

    def __init__(self, sock: socket.socket) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None  # the connection's, from ``start``
        self._sock: socket.socket | None = sock
        self._connection: Receiver | None = None
        self._wbuf = bytearray()
        self._rbuf = bytearray(_RECV_SIZE)

    def start(self, connection: Receiver) -> None:
        sock = self._sock
        assert sock is not None
        self._connection = connection
        self._loop = connection.loop
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def write(self, data: bytes) -> None:
        if self._wbuf:
            self._wbuf += data  # the writer callback sends it in order
            return
        sock = self._sock
        if sock is None:
            return
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self._fail(error)
            return
        if sent < len(data):
            self._wbuf = bytearray(data[sent:])
            assert self._loop is not None
            self._loop.add_writer(sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sent = sock.send(self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(error)
            return
        del self._wbuf[:sent]
        if not self._wbuf and self._loop is not None:
            self._loop.remove_writer(sock.fileno())

    def _on_readable(self) -> None:
        sock = self._sock
        connection = self._connection
        if sock is None or connection is None:
            return
        try:
            size = sock.recv_into(self._rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            connection.close(error)
            return
        if not size:
            connection.close(None)
            return
        connection.received(memoryview(self._rbuf)[:size])

    def _fail(self, error: OSError) -> None:
        if self._connection is not None:
            self._connection.close(error)

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(sock.fileno())
            loop.remove_writer(sock.fileno())
        sock.close()


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
                chunk = await self._loop.sock_recv(self._sock, _RECV_SIZE)
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
