"""A connection: one authenticated stream socket driven by one event loop.

All reads and writes run on that loop's thread; any thread may ``send``. Frames sent are
batched like the inbox's items (:mod:`aptio._threads.inbox`): a send appends its frame and
schedules a flush only if none is due, so a burst of calls costs one wake-up of the loop and
one ``send`` system call. Reading takes whatever the socket has and hands every complete frame
to ``on_frame`` in order, on the loop's thread.

Flush invariant (as the inbox's): a sender (A) appends, then (B) reads ``_flush_due`` and, if
False, sets it and schedules a flush; the flush (C) clears ``_flush_due`` and then (D) takes
every frame. Either B saw True before C (so D takes the frame) or the sender scheduled a flush
itself. Close invariant: ``close`` marks the connection closed and then reports once; frames
sent after that are dropped (their calls are failed by whoever owns them, see ``on_close``).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
from collections.abc import Callable
from typing import Final

from .._values.errors import ProtocolError
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

__all__ = ["HANDSHAKE_TIMEOUT", "Connection", "accept_handshake", "connect_handshake",
           "read_frame"]

#: How long a peer has to authenticate before the connection is dropped.
HANDSHAKE_TIMEOUT: Final = 10.0
_RECV_SIZE: Final = 256 * 1024

_get_ident = threading.get_ident


class Connection:
    """See the module docstring. ``on_frame(payload)`` and ``on_close(error)`` run on the
    loop's thread; ``on_close`` runs once, with None for a clean end of stream."""

    __slots__ = ("_closed", "_flush_due", "_limit", "_on_close", "_on_frame", "_out",
                 "_rbuf", "_reader", "_send_limit", "_sock", "_wbuf", "batch", "label", "loop",
                 "thread_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int, limit: int,
                 label: str, on_frame: Callable[[bytes], None],
                 on_close: Callable[[BaseException | None], None],
                 send_limit: int | None = None) -> None:
        self.loop = loop
        self.thread_id = thread_id
        self.label = label
        self._limit = limit  # what this side reads
        self._send_limit = limit if send_limit is None else send_limit  # what the peer reads
        self._on_frame = on_frame
        self._on_close = on_close
        self._sock: socket.socket | None = None  # set by ``open``: until then frames wait
        self._reader = FrameReader(limit)
        self._out: collections.deque[bytes] = collections.deque()
        self._flush_due = False
        self._wbuf = bytearray()
        #: Received bytes land here, reused: a fresh buffer this size per read would cost an
        #: mmap, page faults and an munmap every time.
        self._rbuf = bytearray(_RECV_SIZE)
        #: How many frames the read being handled brought (for ``on_frame``'s choices).
        self.batch = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def open(self, sock: socket.socket, reader: FrameReader) -> None:
        """Start serving ``sock`` (authenticated; on the loop's thread), with the frames the
        handshake's reader may already hold."""
        if self._closed:
            sock.close()
            return
        self._sock = sock
        self._reader = reader
        self.loop.add_reader(sock.fileno(), self._on_readable)
        self._flush()
        if reader.pending:
            self._process(b"")

    def send(self, payload: bytes) -> None:
        """Queue one frame (any thread; ProtocolError if it is over the size limit)."""
        self._out.append(frame(payload, self._send_limit))
        if not self._flush_due:
            self._flush_due = True
            if _get_ident() == self.thread_id:
                self.loop.call_soon(self._flush)
            else:
                try:
                    self.loop.call_soon_threadsafe(self._flush)
                except RuntimeError:  # the loop is closed: nobody sends any more
                    self._closed = True

    def _flush(self) -> None:
        self._flush_due = False
        if self._sock is None or self._closed:
            return  # not open yet (``open`` flushes), or gone
        out = self._out
        if not out:
            return
        data = b"".join([out.popleft() for _ in range(len(out))])
        if self._wbuf:
            self._wbuf += data  # the writer callback sends it in order
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        sock = self._sock
        assert sock is not None
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self.close(error)
            return
        if sent < len(data):
            self._wbuf = bytearray(data[sent:])
            self.loop.add_writer(sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        sock = self._sock
        if sock is None or self._closed:
            return
        try:
            sent = sock.send(self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.close(error)
            return
        del self._wbuf[:sent]
        if not self._wbuf:
            self.loop.remove_writer(sock.fileno())

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None or self._closed:
            return
        try:
            size = sock.recv_into(self._rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.close(error)
            return
        if not size:
            self.close(None)
            return
        self._process(memoryview(self._rbuf)[:size])

    def _process(self, data: bytes | memoryview) -> None:
        try:
            frames = self._reader.feed(data)
        except ProtocolError as error:
            self.close(error)
            return
        self.batch = len(frames)
        for payload in frames:
            if self._closed:
                return
            try:
                self._on_frame(payload)
            except Exception as error:  # a bug of ours; the loop's handler reports it
                self.loop.call_exception_handler({
                    "message": f"aptio: error handling a message on {self.label}",
                    "exception": error,
                })
        if self._out:
            self._flush()  # what handling them sent (replies, next calls) leaves at once

    def close(self, error: BaseException | None) -> None:
        """Close now if on the loop's thread, else as soon as the loop runs (any thread)."""
        if _get_ident() != self.thread_id:
            try:
                self.loop.call_soon_threadsafe(self.close, error)
                return
            except RuntimeError:
                pass  # the loop is closed: nothing reads or writes any more; finish here
        if self._closed and self._sock is None:
            return
        already = self._closed
        self._closed = True
        sock, self._sock = self._sock, None
        if sock is not None:
            if not self.loop.is_closed():
                self.loop.remove_reader(sock.fileno())
                self.loop.remove_writer(sock.fileno())
            sock.close()
        self._out.clear()
        if not already:
            self._on_close(error)


async def _read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ProtocolError("the peer closed the connection during the handshake")
        data += chunk
    return data


async def connect_handshake(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                            key: bytes) -> None:
    """The connecting side's half of the handshake (ProtocolError on any failure)."""
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        server_hello = await _read_exactly(loop, sock, HELLO_SIZE)
        answer, expected = answer_hello(key, server_hello)
        await loop.sock_sendall(sock, answer)
        check_confirm(expected, await _read_exactly(loop, sock, CONFIRM_SIZE))


async def accept_handshake(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                           key: bytes) -> bool:
    """The accepting side's half: True if the peer proved it holds ``key``."""
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        greeting, nonce = hello()
        await loop.sock_sendall(sock, greeting)
        answer = await _read_exactly(loop, sock, ANSWER_SIZE)
        confirm, status = check_answer(key, nonce, answer)
        await loop.sock_sendall(sock, confirm)
        return status == ACCEPTED


async def read_frame(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                     reader: FrameReader) -> bytes:
    """The next frame, during connection setup (after the handshake)."""
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        while True:
            chunk = await loop.sock_recv(sock, _RECV_SIZE)
            if not chunk:
                raise ProtocolError("the peer closed the connection during setup")
            frames = reader.feed(chunk)
            if len(frames) > 1:  # setup exchanges one frame each way, each awaiting the other
                raise ProtocolError("the peer sent messages before setup finished")
            if frames:
                return frames[0]
