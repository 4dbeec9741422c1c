"""Frames: how messages are delimited on a byte stream. Each frame is a 4-byte big-endian
length and that many bytes; the first byte of a message frame is its :class:`Kind`.

A reader never buffers more than the size limit for one frame: a header announcing a larger
frame is a protocol violation, reported before its body is read.
"""

from __future__ import annotations

import struct
from typing import Final

from .._values.errors import ProtocolError

__all__ = ["HEADER_SIZE", "FrameReader", "frame"]

HEADER_SIZE: Final = 4
_HEADER: Final = struct.Struct(">I")
_unpack_from: Final = _HEADER.unpack_from


def frame(payload: bytes, limit: int) -> bytes:
    """``payload`` framed; ProtocolError if it is over ``limit`` bytes."""
    size = len(payload)
    if size > limit:
        raise ProtocolError(
            f"a message of {size} bytes is over the limit of {limit} bytes "
            "(max_message_size); send less at once, or raise the limit on both sides"
        )
    return _HEADER.pack(size) + payload


class FrameReader:
    """Splits a byte stream into frames, whatever pieces it arrives in."""

    __slots__ = ("_buffer", "_limit")

    def __init__(self, limit: int) -> None:
        #: Bytes of a frame not complete yet (empty between whole frames).
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """Add received bytes; return the frames they complete, in order."""
        buffer = self._buffer
        if buffer:  # a frame began in an earlier read: go on from there
            buffer += data
            frames, used = self._split(buffer)
            if used:
                del buffer[:used]
        else:  # the usual read, of whole frames: split it where it lies, copying each once
            frames, used = self._split(data)
            if used < len(data):
                buffer += data[used:]
        return frames

    def _split(self, data: bytes | bytearray | memoryview) -> tuple[list[bytes], int]:
        """The complete frames at the start of ``data``, and how many bytes they take."""
        frames: list[bytes] = []
        start = 0
        end = len(data)
        limit = self._limit
        while end - start >= HEADER_SIZE:
            size: int = _unpack_from(data, start)[0]
            if size > limit:
                raise ProtocolError(
                    f"the peer announced a message of {size} bytes, over the limit of "
                    f"{limit} bytes (max_message_size); the connection is closed"
                )
            body = start + HEADER_SIZE
            if end - body < size:
                break
            start = body + size
            frames.append(bytes(data[body:start]))
        return frames, start

    @property
    def pending(self) -> int:
        """Bytes received and not yet part of a complete frame."""
        return len(self._buffer)
