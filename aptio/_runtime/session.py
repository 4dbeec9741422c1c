"""The session of processes this process belongs to: the secret key they share, the private
directory their sockets live in, and this process's name among them.

The first process that starts a server begins a session (a fresh key, a new directory only
its user can read); every server it starts, and every server those start, joins it: the
configuration a server reads on its standard input carries the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Final

import attrs

from .._wire.handshake import new_key
from .._wire.messages import MAX_MESSAGE_SIZE

__all__ = ["Session", "joined_session", "new_session", "remove_session_directory"]

CLIENT_NAME: Final = "client"


@attrs.frozen(repr=False)
class Session:
    key: bytes
    directory: str
    #: This process's name in the session: "client", or its server name.
    name: str
    #: True for the process that began the session (it removes the directory at the end).
    root: bool
    max_message_size: int = MAX_MESSAGE_SIZE
    #: For a single-use server: the class it was started for (``module:qualname``).
    serves: str | None = None

    def __repr__(self) -> str:
        return f"<aptio session {self.name!r} in {self.directory!r} (key hidden)>"


def new_session(max_message_size: int = MAX_MESSAGE_SIZE) -> Session:
    """Begin a session: a fresh key and a private directory (mode 0700)."""
    directory = tempfile.mkdtemp(prefix="aptio-")
    os.chmod(directory, 0o700)
    return Session(new_key(), directory, CLIENT_NAME, True, max_message_size)


_joined: Session | None = None


def join_session(session: Session) -> None:
    """This process is a server of ``session`` (set before its runtime starts)."""
    global _joined
    _joined = session


def joined_session() -> Session | None:
    return _joined


def remove_session_directory(session: Session) -> None:
    """The root's last act: remove the session's directory (servers removed their sockets)."""
    shutil.rmtree(session.directory, ignore_errors=True)
