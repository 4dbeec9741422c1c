"""The messages of aptio's wire protocol (version 1), each a small value type.

A connection carries calls from one caller apartment to one target apartment: requests one
way, replies the other, plus the cancels, reference counting and liveness messages. Every
message is a ``NamedTuple`` whose fields are plain values (and, inside a call's arguments or
result, references to objects: see :class:`ObjectRef`). ``docs/protocol.md`` describes them.
"""

from __future__ import annotations

import enum
from typing import Any, Final, NamedTuple

__all__ = [
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_VERSION",
    "AddRef",
    "ApartmentRef",
    "Bye",
    "Cancel",
    "Claim",
    "ClassRef",
    "Hello",
    "Kind",
    "Lease",
    "Message",
    "ObjectRef",
    "Ping",
    "Pong",
    "Release",
    "Reply",
    "ReplyStatus",
    "Request",
]

#: The version this code speaks; a peer speaking another is refused in the handshake.
PROTOCOL_VERSION: Final = 2
#: The default limit on one message's size in bytes (configurable per server).
MAX_MESSAGE_SIZE: Final = 64 * 1024 * 1024


class Kind(enum.IntEnum):
    """The first byte of every message frame."""

    HELLO = 1
    REQUEST = 2
    REPLY = 3
    CANCEL = 4
    RELEASE = 5
    ADDREF = 6
    PING = 7
    PONG = 8
    BYE = 9
    LEASE = 10
    CLAIM = 11


class ApartmentRef(NamedTuple):
    """An apartment of some process, as other processes name it."""

    node: str  # the process's node id
    apartment_id: str  # unique in that process ("main", "mta", "na", or an STA's id)
    kind: str  # an ApartmentKind value
    name: str  # for messages and ``repr``
    process: str  # the process's name ("client", or a server's name)


class ClassRef(NamedTuple):
    """An object's class, as much as a caller needs to call it: where to import it from, and
    which methods are generators (their calls are iterated, not awaited)."""

    module: str
    qualname: str
    iterators: tuple[str, ...]
    async_iterators: tuple[str, ...]
    #: For a class of a process's main script, the script's real path ("" otherwise): a server
    #: loads the script of the process that started it as ``__mp_main__``, and that process
    #: knows the class as its own ``__main__``'s by this path.
    script: str = ""


class ObjectRef(NamedTuple):
    """A reference to an object that stays in its process (an object crossing by reference)."""

    node: str  # the owner's node id
    address: str  # where the owner listens for connections
    object_id: int  # unique in the owner's export table
    apartment: ApartmentRef  # where the object lives
    cls: ClassRef

    @property
    def aptio_class_name(self) -> str:
        """The object's class, for messages (a call's ``describe()``)."""
        return self.cls.qualname


class Hello(NamedTuple):
    """First message of each side once the handshake authenticated it."""

    node: str  # the sender's node id
    address: str  # where the sender listens ("" if it does not)
    pid: int
    name: str  # the sender's name (a server's, or "client")
    #: The connecting side: the apartment its calls come from; the accepting side: the
    #: apartment the calls run in.
    apartment: ApartmentRef
    #: The connecting side: the id of the apartment its calls go to ("" for the control
    #: connection, which carries reference counting and liveness only); "" from the other side.
    target: str


class Request(NamedTuple):
    """Run ``method(*args, **kwargs)`` on object ``object_id`` of the receiving process."""

    call_id: int  # unique on its connection; the reply and a cancel name it
    object_id: int
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    causality: int  # the logical thread the call belongs to
    #: The calls this one is nested in, innermost first: (node id, call key). A chain that
    #: left a process and comes back into it is recognized by these.
    ancestry: tuple[tuple[str, int], ...]


class ReplyStatus(enum.IntEnum):
    """How a call ended, and what a reply's ``value`` then holds."""

    VALUE = 0  # the result
    #: (the exception's pickle, or None if it does not pickle as itself; its type's qualified
    #: name; its message); ``traceback`` is its traceback as text
    ERROR = 1
    REJECTED = 2  # the ServerCall verdict's name: the caller's message filter decides
    CANCELLED = 3  # the call was cancelled where it ran (None)


class Reply(NamedTuple):
    call_id: int
    status: int  # a ReplyStatus
    value: Any
    traceback: str


class Cancel(NamedTuple):
    """The caller cancelled the call: do not start it, or cancel it where it runs."""

    call_id: int


class Release(NamedTuple):
    """The sender holds ``references`` fewer references to the receiver's ``object_id``."""

    object_id: int
    references: int


class AddRef(NamedTuple):
    """The sender passed a reference to the receiver's object to ``holder``, which now holds
    one more (sent to the owner before the reference itself leaves the sender)."""

    object_id: int
    holder: str  # a node id


class Lease(NamedTuple):
    """The sender handed a reference to the receiver's object to something outside aptio (a
    pickle Ray carries): hold the object for it, under ``lease``, until a process claims the
    lease or ``seconds`` pass (sent to the owner before the pickle leaves the sender)."""

    object_id: int
    lease: str  # a random token, unique per pickle
    seconds: float


class Claim(NamedTuple):
    """The sender unpickled a reference that travelled under ``lease``: it holds one more
    reference to the receiver's object (released as any other), and the lease ends."""

    object_id: int
    lease: str


class Ping(NamedTuple):
    token: int


class Pong(NamedTuple):
    token: int


class Bye(NamedTuple):
    """The sender closes the connection (a reason, for the log)."""

    reason: str


Message = (Hello | Request | Reply | Cancel | Release | AddRef | Ping | Pong | Bye | Lease
           | Claim)

#: Each message class's kind byte, and back.
KIND_OF: Final[dict[type, Kind]] = {
    Hello: Kind.HELLO, Request: Kind.REQUEST, Reply: Kind.REPLY, Cancel: Kind.CANCEL,
    Release: Kind.RELEASE, AddRef: Kind.ADDREF, Ping: Kind.PING, Pong: Kind.PONG, Bye: Kind.BYE,
    Lease: Kind.LEASE, Claim: Kind.CLAIM,
}
CLASS_OF: Final[dict[int, type]] = {int(kind): cls for cls, kind in KIND_OF.items()}
