"""Mutual authentication before anything is unpickled: an HMAC challenge and response with
the session's secret key, over raw bytes (no pickle, no JSON).

  server -> client  HELLO   magic, version, server nonce                       (40 bytes)
  client -> server  ANSWER  magic, version, client nonce, HMAC(key, "client" + nonces) (72)
  server -> client  CONFIRM status byte, HMAC(key, "server" + nonces)          (33 bytes)

The status byte is 0 (accepted), 1 (authentication failed) or 2 (unknown protocol version).
Each side proves it knows the key without sending it, and each checks the other, so neither
reads a message from a peer that does not hold the key. Nonces are fresh random bytes, so a
recorded exchange cannot be replayed. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Final

from .._values.errors import ProtocolError
from .messages import PROTOCOL_VERSION

__all__ = ["ANSWER_SIZE", "CONFIRM_SIZE", "HELLO_SIZE", "KEY_SIZE", "answer_hello",
           "check_answer", "check_confirm", "hello", "new_key"]

MAGIC: Final = b"APTIO\x00"
NONCE_SIZE: Final = 32
KEY_SIZE: Final = 32
_PREFIX: Final = struct.Struct(">6sH")
HELLO_SIZE: Final = _PREFIX.size + NONCE_SIZE
ANSWER_SIZE: Final = _PREFIX.size + NONCE_SIZE + 32
CONFIRM_SIZE: Final = 1 + 32

ACCEPTED: Final = 0
AUTH_FAILED: Final = 1
BAD_VERSION: Final = 2


def new_key() -> bytes:
    """A fresh secret key for a session of processes."""
    return os.urandom(KEY_SIZE)


def _mac(key: bytes, role: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(key, role + first + second, hashlib.sha256).digest()


def hello() -> tuple[bytes, bytes]:
    """The server's first bytes, and its nonce (kept to check the answer)."""
    nonce = os.urandom(NONCE_SIZE)
    return _PREFIX.pack(MAGIC, PROTOCOL_VERSION) + nonce, nonce


def _split(data: bytes, what: str) -> tuple[int, bytes]:
    magic, version = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError(f"the peer is not an aptio process (bad {what}); connection closed")
    return version, data[_PREFIX.size:]


def answer_hello(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    """The client's answer to the server's hello, and the confirmation it expects back."""
    version, server_nonce = _split(data, "hello")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"the server speaks aptio protocol version {version}, this process version "
            f"{PROTOCOL_VERSION}: run the same aptio release on both sides"
        )
    client_nonce = os.urandom(NONCE_SIZE)
    answer = (_PREFIX.pack(MAGIC, PROTOCOL_VERSION) + client_nonce
              + _mac(key, b"client", server_nonce, client_nonce))
    expected = _mac(key, b"server", client_nonce, server_nonce)
    return answer, expected


def check_answer(key: bytes, server_nonce: bytes, data: bytes) -> tuple[bytes, int]:
    """The server's verdict on an answer: the confirmation to send, and its status."""
    try:
        version, rest = _split(data, "answer")
    except ProtocolError:
        return bytes([AUTH_FAILED]) + bytes(32), AUTH_FAILED
    if version != PROTOCOL_VERSION:
        return bytes([BAD_VERSION]) + struct.pack(">H", PROTOCOL_VERSION) + bytes(30), BAD_VERSION
    client_nonce, mac = rest[:NONCE_SIZE], rest[NONCE_SIZE:]
    if not hmac.compare_digest(mac, _mac(key, b"client", server_nonce, client_nonce)):
        return bytes([AUTH_FAILED]) + bytes(32), AUTH_FAILED
    return bytes([ACCEPTED]) + _mac(key, b"server", client_nonce, server_nonce), ACCEPTED


def check_confirm(expected: bytes, data: bytes) -> None:
    """The client's check of the server's confirmation; ProtocolError if it fails."""
    status = data[0]
    if status == BAD_VERSION:
        (version,) = struct.unpack_from(">H", data, 1)
        raise ProtocolError(
            f"the server refused protocol version {PROTOCOL_VERSION} (it speaks version "
            f"{version}): run the same aptio release on both sides"
        )
    if status != ACCEPTED:
        raise ProtocolError(
            "the server refused this process's key (authentication failed): connect with the "
            "credentials of the session that started it"
        )
    if not hmac.compare_digest(data[1:], expected):
        raise ProtocolError(
            "the peer failed to prove it holds the session key (authentication failed); "
            "connection closed without reading from it"
        )
