"""A connection's bytes over a Unix domain socket, once both ends are authenticated (the
handshake and the setup before it: :mod:`aptio._remote.sockets`).

The socket is non-blocking and watched by the connection's loop (``add_reader``; a writer
callback only while a send left bytes behind). Received bytes land in one reused buffer: a
fresh one per read would cost an mmap, page faults and an munmap every time.

Compiled with the call path (every call and reply is read and written here), so it implements
:class:`~aptio._remote.transport.Transport` structurally: a compiled class cannot derive from
a class of an interpreted module.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, Final

from .transport import Receiver

__all__ = ["RECV_SIZE", "SocketTransport"]

#: The most one read takes (the size of the reused buffer).
RECV_SIZE: Final = 256 * 1024


class SocketTransport:
    """A connected, authenticated socket (see the module docstring)."""

    __slots__ = ("_connection", "_loop", "_rbuf", "_received", "_sock", "_view", "_wbuf")

    def __init__(self, sock: socket.socket) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None  # the connection's, from ``start``
        self._sock: socket.socket | None = sock
        self._connection: Receiver | None = None
        #: The connection's ``received``, bound once (called for every read).
        self._received: Callable[[bytes | memoryview], None] | None = None
        self._wbuf = bytearray()
        self._rbuf = bytearray(RECV_SIZE)
        self._view = memoryview(self._rbuf)

    def start(self, connection: Receiver) -> None:
        sock = self._sock
        assert sock is not None
        self._connection = connection
        self._received = connection.received
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
            _stop_writing(self._loop, sock.fileno())

    def _on_readable(self) -> None:
        sock = self._sock
        received = self._received
        if sock is None or received is None:
            return
        try:
            size = sock.recv_into(self._rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(error)
            return
        if not size:
            connection = self._connection
            if connection is not None:
                connection.close(None)
            return
        received(self._view[:size])

    def _fail(self, error: OSError) -> None:
        if self._connection is not None:
            self._connection.close(error)

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._received = None
        loop = self._loop
        if loop is not None and not loop.is_closed():
            _unwatch(loop, sock.fileno())
        sock.close()


def _stop_writing(loop: Any, fd: int) -> None:
    """Stop the writer callback (``loop``: Any, as in ``_unwatch``)."""
    loop.remove_writer(fd)


def _unwatch(loop: Any, fd: int) -> None:
    """Stop watching ``fd``. ``loop`` is Any: the stubs say ``remove_reader`` returns a bool,
    uvloop's returns None, and compiled code checks the result of a call it knows the type of
    (``TypeError: bool object expected``)."""
    loop.remove_reader(fd)
    loop.remove_writer(fd)
