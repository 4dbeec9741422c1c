"""A connection: an ordered stream of frames between two processes, driven by one event loop,
over any :class:`~aptio._remote.transport.Transport` (a Unix socket, see
:mod:`aptio._remote.sockets`; a Ray channel, see :mod:`aptio.ray`).

All reads and writes run on that loop's thread; any thread may ``send``. Frames sent are
batched like the inbox's items (:mod:`aptio._threads.inbox`): a send appends its frame and
schedules a flush only if none is due, so a burst of calls costs one wake-up of the loop and
one write of the transport. The transport hands whatever bytes arrived to ``received``, which
passes every complete frame to ``on_frame`` in order, on the loop's thread.

Flush invariant (as the inbox's): a sender (A) appends, then (B) reads ``_flush_due`` and, if
False, sets it and schedules a flush; the flush (C) clears ``_flush_due`` and then (D) takes
every frame. Either B saw True before C (so D takes the frame) or the sender scheduled a flush
itself. Close invariant: ``close`` marks the connection closed and then reports once; frames
sent after that are dropped (their calls are failed by whoever owns them, see ``on_close``).

Compiled with the call path (see ``setup.py``): one connection per caller loop and target
apartment, so every call and reply passes through it.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable

from .._values.errors import DisconnectedError, ProtocolError
from .._wire.framing import FrameReader, frame
from .transport import Transport

__all__ = ["Connection"]

_get_ident = threading.get_ident


class Connection:
    """See the module docstring. ``on_frame(payload)`` and ``on_close(error)`` run on the
    loop's thread; ``on_close`` runs once, with None for a clean end of stream."""

    __slots__ = ("_closed", "_flush_due", "_limit", "_on_close", "_on_frame", "_out",
                 "_reader", "_send_limit", "_transport", "batch", "label", "loop",
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
        self._transport: Transport | None = None  # set by ``open``: until then frames wait
        self._reader = FrameReader(limit)
        self._out: collections.deque[bytes] = collections.deque()
        self._flush_due = False
        #: How many frames the read being handled brought (for ``on_frame``'s choices).
        self.batch = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def open(self, transport: Transport, reader: FrameReader) -> None:
        """Start serving ``transport`` (authenticated; on the loop's thread), with the frames
        the setup's reader may already hold."""
        if self._closed:
            transport.stop()
            return
        self._transport = transport
        self._reader = reader
        transport.start(self)
        self._flush()
        if reader.pending:
            self.received(b"")

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
                except RuntimeError:  # the loop is closed: nothing will flush or read
                    self.close(DisconnectedError(f"{self.label}: its event loop is closed"))

    def _flush(self) -> None:
        self._flush_due = False
        transport = self._transport
        if transport is None or self._closed:
            return  # not open yet (``open`` flushes), or gone
        out = self._out
        if not out:
            return
        transport.write(b"".join([out.popleft() for _ in range(len(out))]))

    def received(self, data: bytes | memoryview) -> None:
        """Bytes from the transport (on the loop's thread): every frame they complete goes to
        ``on_frame``, in order; what handling them sent leaves at once."""
        if self.closed:  # bytes the transport had in hand as the connection closed
            return
        try:
            frames = self._reader.feed(data)
        except ProtocolError as error:
            self.close(error)
            return
        self.batch = len(frames)
        # While the frames are handled, a flush counts as due: a send (from this thread or
        # any other) only appends, and the flush below takes it, without a callback of its own
        # and the extra turn of the loop that would cost (the flush invariant holds: the flag
        # is set before any of these sends and cleared by the flush that takes their frames).
        self._flush_due = True
        try:
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
        finally:
            self._flush()  # what handling them sent (replies, next calls) leaves at once

    def close(self, error: BaseException | None) -> None:
        """Close now if on the loop's thread, else as soon as the loop runs (any thread)."""
        if _get_ident() != self.thread_id:
            try:
                self.loop.call_soon_threadsafe(self.close, error)
                return
            except RuntimeError:
                pass  # the loop is closed: nothing reads or writes any more; finish here
        if self._closed and self._transport is None:
            return
        already = self._closed
        self._closed = True
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.stop()
        self._out.clear()
        if not already:
            self._on_close(error)
