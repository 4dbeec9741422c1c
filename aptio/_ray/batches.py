"""An exchange's two messages as one ``bytes`` each: what a caller end hands the actor
(``pack_batch``) and what comes back (``pack_answer``).

Ray serializes each argument and each return value of an actor call on its own, at a cost
that dwarfs the bytes themselves (measured on 2 cores: a call with five plain arguments
returning a tuple costs about 1.35x one without arguments; a single ``bytes`` argument
returned as is costs about the same as none). So an exchange carries exactly one ``bytes``
each way, packed here with ``struct``.

A batch: ``seq (8) | record count (4) | 3 strings (channel id, sender, receiver node)`` then
the records; an answer: ``status (1) | seq (8) | record count (4)`` then the records, or the
reason (one string) when the status is not OK. A string is its UTF-8 length (2) and bytes; a
record is ``connection id (8) | length (4, or 0xFFFFFFFF: the connection closed)`` and its
bytes. A relay's message (:func:`pack_items`) is ``status (1) | seq (8) | item count (4) |
a string`` and, per item, ``2 strings | number (8) | record count (4, or 0xFFFFFFFF: the
channel is closed)`` and its records.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["Item", "pack_answer", "pack_batch", "pack_items", "unpack_answer", "unpack_batch",
           "unpack_items"]

Record = tuple[int, bytes | None]
#: One channel's part of a relay's message: channel id, the caller's node, the batch's number
#: on its channel, and its records (None: the channel is closed).
Item = tuple[str, str, int, list[Record] | None]

_BATCH: Final = struct.Struct(">qI")
_ANSWER: Final = struct.Struct(">BqI")
_RECORD: Final = struct.Struct(">qI")
_ITEM: Final = struct.Struct(">qI")
_TEXT: Final = struct.Struct(">H")
#: The length of a record that closes its connection.
_CLOSED: Final = 0xFFFFFFFF


def _pack_records(parts: list[bytes], records: list[Record]) -> None:
    for conn_id, data in records:
        if data is None:
            parts.append(_RECORD.pack(conn_id, _CLOSED))
        else:
            parts.append(_RECORD.pack(conn_id, len(data)))
            parts.append(data)


def _unpack_records(blob: bytes, offset: int, count: int) -> tuple[list[Record], int]:
    records: list[Record] = []
    view = memoryview(blob)
    for _ in range(count):
        conn_id, size = _RECORD.unpack_from(blob, offset)
        offset += _RECORD.size
        if size == _CLOSED:
            records.append((conn_id, None))
        else:
            if offset + size > len(blob):
                raise ValueError("a record runs past the end of its exchange")
            records.append((conn_id, bytes(view[offset:offset + size])))
            offset += size
    return records, offset


def _whole(records: list[Record], offset: int, blob: bytes) -> list[Record]:
    if offset != len(blob):
        raise ValueError("an exchange's records do not fill its bytes")
    return records


def _text(value: str) -> bytes:
    data = value.encode()
    return _TEXT.pack(len(data)) + data


def _read_text(blob: bytes, offset: int) -> tuple[str, int]:
    (size,) = _TEXT.unpack_from(blob, offset)
    offset += _TEXT.size
    return blob[offset:offset + size].decode(), offset + size


def pack_batch(channel_id: str, sender: str, node: str, seq: int,
               records: list[Record]) -> bytes:
    """What one exchange hands the actor end: a batch of the caller's records."""
    parts = [_BATCH.pack(seq, len(records)), _text(channel_id), _text(sender), _text(node)]
    _pack_records(parts, records)
    return b"".join(parts)


def unpack_batch(blob: bytes) -> tuple[str, str, str, int, list[Record]]:
    """``(channel id, sender, node, seq, records)``; ValueError or struct.error if
    ``blob`` is not a batch."""
    seq, count = _BATCH.unpack_from(blob, 0)
    channel_id, offset = _read_text(blob, _BATCH.size)
    sender, offset = _read_text(blob, offset)
    node, offset = _read_text(blob, offset)
    return channel_id, sender, node, seq, _whole(*_unpack_records(blob, offset, count), blob)


def pack_answer(status: int, seq: int, records: list[Record] | str) -> bytes:
    """What an exchange returns: the actor's records for the caller (``status`` OK), or why
    there are none (a reason, any other status)."""
    if isinstance(records, str):
        return _ANSWER.pack(status, seq, 0) + _text(records)
    parts = [_ANSWER.pack(status, seq, len(records))]
    _pack_records(parts, records)
    return b"".join(parts)


def unpack_answer(blob: bytes, ok: int) -> tuple[int, list[Record] | str]:
    """``(seq, records)``, or ``(seq, reason)`` for a status other than ``ok``."""
    status, seq, count = _ANSWER.unpack_from(blob, 0)
    if status != ok:
        reason, _ = _read_text(blob, _ANSWER.size)
        return seq, reason
    return seq, _whole(*_unpack_records(blob, _ANSWER.size, count), blob)


def pack_items(status: int, seq: int, head: str, items: list[Item]) -> bytes:
    """A relay's message (:mod:`aptio._ray.relay`): batches of several channels at once.
    ``head``: the host's secret (to the relay), or the reason of a status other than OK."""
    parts = [_ANSWER.pack(status, seq, len(items)), _text(head)]
    for channel_id, sender, number, records in items:
        parts.append(_text(channel_id))
        parts.append(_text(sender))
        parts.append(_ITEM.pack(number, _CLOSED if records is None else len(records)))
        if records is not None:
            _pack_records(parts, records)
    return b"".join(parts)


def unpack_items(blob: bytes) -> tuple[int, int, str, list[Item]]:
    """``(status, seq, head, items)`` of a relay's message."""
    status, seq, count = _ANSWER.unpack_from(blob, 0)
    head, offset = _read_text(blob, _ANSWER.size)
    items: list[Item] = []
    for _ in range(count):
        channel_id, offset = _read_text(blob, offset)
        sender, offset = _read_text(blob, offset)
        number, size = _ITEM.unpack_from(blob, offset)
        offset += _ITEM.size
        records: list[Record] | None = None
        if size != _CLOSED:
            records, offset = _unpack_records(blob, offset, size)
        items.append((channel_id, sender, number, records))
    if offset != len(blob):
        raise ValueError("a relay message's items do not fill its bytes")
    return status, seq, head, items
