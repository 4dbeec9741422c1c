"""The codec's per-call half, compiled with the call path: a frame payload's header, the
encoding of messages with nothing in them that crosses by reference, and decoding.

A payload is ``kind (1 byte) | call id (8 bytes) | pickle of the message's other fields``
(:mod:`aptio._remote.codec` has the rest: the pickler that sends objects by reference, and
the functions that turn references back into proxies).

Invariant: only a payload whose kind byte has the :data:`REFERENCES` bit can hold a reference:
the codec's reference-aware pickler sets it, and :func:`encode_plain`, for messages of plain
values, does not. Only those payloads are decoded with ``decoding.resolver`` set (a
thread-local write and restore cost more than decoding a small reply does); a reference in
any other payload fails to decode, as an unreadable message.
"""

from __future__ import annotations

import pickle
import struct
import threading
from typing import Any, Final

from mypy_extensions import mypyc_attr

from .._wire.messages import CLASS_OF

__all__ = ["HEADER", "HEADER_SIZE", "PROTOCOL", "REFERENCES", "decode", "decoding",
           "encode_plain", "loads"]

HEADER: Final = struct.Struct(">BQ")
_pack: Final = HEADER.pack
_unpack_from: Final = HEADER.unpack_from
HEADER_SIZE: Final = 9
PROTOCOL: Final = pickle.HIGHEST_PROTOCOL
_dumps: Final = pickle.dumps
_loads: Final = pickle.loads

#: The kind byte's bit saying the payload may hold references (see the invariant).
REFERENCES: Final = 0x80
_KIND_BITS: Final = 0x7F


# A Python class even where this module is compiled: a compiled subclass of threading.local
# would keep its attributes in the object itself, shared by every thread.
@mypyc_attr(native_class=False)
class _Decoding(threading.local):
    """The resolver of the message this thread is decoding (for the codec's reference
    functions), or None."""

    resolver: Any = None


decoding: Final = _Decoding()


def encode_plain(kind: int, call_id: int, fields: tuple[Any, ...]) -> bytes:
    """A message's payload when nothing in ``fields`` crosses by reference (the caller checked):
    the C pickler alone encodes it."""
    return _pack(kind, call_id) + _dumps(fields, PROTOCOL)


def decode(payload: bytes, resolver: object) -> tuple[type, int, tuple[Any, ...] | None,
                                                       BaseException | None]:
    """A frame payload's message class, call id and fields, or (fields None) the error that
    reading the fields raised (a class this process cannot import, say). ``resolver`` turns
    the references in it into proxies."""
    kind, call_id = _unpack_from(payload)
    cls = CLASS_OF[kind & _KIND_BITS]
    try:
        if kind & REFERENCES:
            fields = loads(payload[HEADER_SIZE:], resolver)
        else:
            fields = _loads(payload[HEADER_SIZE:])
    except Exception as error:
        return cls, call_id, None, error
    return cls, call_id, fields, None


def loads(data: bytes, resolver: object) -> Any:
    """Unpickle ``data`` (from an authenticated peer) with references resolved by
    ``resolver``."""
    previous = decoding.resolver
    decoding.resolver = resolver
    try:
        return _loads(data)
    finally:
        decoding.resolver = previous
