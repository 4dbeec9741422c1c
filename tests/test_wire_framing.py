"""Frames on a byte stream, read whatever pieces the stream arrives in: every frame comes out
once, whole and in order, whether a read holds many frames, part of one, or the end of one and
the start of the next; an oversized header is refused before its body is read."""

from __future__ import annotations

import random

import pytest

import aptio
from aptio._wire.framing import HEADER_SIZE, FrameReader, frame

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("seed", range(40))
def test_frames_come_out_whole_and_in_order_however_the_stream_is_cut(seed: int) -> None:
    rng = random.Random(seed)
    payloads = [rng.randbytes(rng.choice([0, 1, 3, 4, 5, 60, 700, 5000]))
                for _ in range(rng.randint(1, 60))]
    stream = b"".join(frame(payload, 10_000) for payload in payloads)
    reader = FrameReader(10_000)
    out: list[bytes] = []
    position = 0
    while position < len(stream):
        step = rng.choice([1, 2, HEADER_SIZE, 7, 100, 4096, len(stream)])
        piece = stream[position:position + step]
        # Reads arrive as views of a reused buffer (the socket transport) or as bytes.
        data = memoryview(bytearray(piece)) if rng.random() < 0.5 else piece
        out.extend(reader.feed(data))
        position += step
    assert out == payloads
    assert reader.pending == 0


def test_a_reused_read_buffer_does_not_change_frames_already_returned() -> None:
    reader = FrameReader(100)
    buffer = bytearray(64)
    first = frame(b"abc", 100) + frame(b"de", 100)[:3]  # a whole frame and a partial one
    buffer[:len(first)] = first
    frames = reader.feed(memoryview(buffer)[:len(first)])
    buffer[:] = bytes(64)  # the next read overwrites the buffer
    rest = frame(b"de", 100)[3:]
    buffer[:len(rest)] = rest
    frames += reader.feed(memoryview(buffer)[:len(rest)])
    assert frames == [b"abc", b"de"]


@pytest.mark.parametrize("buffered", [False, True])
def test_a_header_over_the_limit_is_refused_before_its_body(buffered: bool) -> None:
    reader = FrameReader(10)
    if buffered:
        assert reader.feed(frame(b"ok", 10) + b"\x00") == [b"ok"]  # a header's first byte
        data = b"\x00\x00\x0b"
    else:
        data = b"\x00\x00\x00\x0b"
    with pytest.raises(aptio.ProtocolError, match="over the limit of 10 bytes"):
        reader.feed(data)


def test_sending_over_the_limit_fails_before_anything_is_framed() -> None:
    with pytest.raises(aptio.ProtocolError, match="max_message_size"):
        frame(bytes(11), 10)
