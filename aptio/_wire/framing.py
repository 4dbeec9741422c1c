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
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """Add received bytes; return the frames they complete, in order."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start = 0
        end = len(buffer)
        while end - start >= HEADER_SIZE:
            (size,) = _HEADER.unpack_from(buffer, start)
            if size > self._limit:
                raise ProtocolError(
                    f"the peer announced a message of {size} bytes, over the limit of "
                    f"{self._limit} bytes (max_message_size); the connection is closed"
                )
            if end - start - HEADER_SIZE < size:
                break
            body = start + HEADER_SIZE
            frames.append(bytes(buffer[body:body + size]))
            start = body + size
        if start:
            del buffer[:start]
        return frames

    @property
    def pending(self) -> int:
        """Bytes received and not yet part of a complete frame."""
        return len(self._buffer)
