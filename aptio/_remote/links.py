"""The two ends of a connection that carries calls: the caller's (:class:`CallerLink`: it
sends requests and finishes its calls with the replies) and the target's (:class:`TargetLink`:
it turns requests into local calls and sends their replies).

A caller link serves one caller apartment's loop and one target apartment, so the calls of one
caller reach one apartment in the order they were sent, as in one process.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Protocol

from .._apartments.base import Apartment
from .._apartments.sta import STA
from .._call.call import Call
from .._call.context import process_state
from .._call.contract import DONE, ApartmentContract, CallRecord
from .._call.foreign import ForeignCall
from .._call.retry import reject
from .._proxy.marshaling import all_scalar
from .._proxy.send import serialized
from .._proxy.stub import Stub
from .._values.declarations import SCALAR_TYPES
from .._values.enums import ServerCall
from .._values.errors import (
    AptioError,
    DisconnectedError,
    LeaseExpiredError,
    ProtocolError,
    RemoteError,
    UnreadableValueError,
)
from .._wire.messages import Kind, ReplyStatus, Request
from . import codec
from .connection import Connection
from .exports import Exports, LiveCalls
from .payload import decode, encode_plain, loads
from .remote_stub import lease_expired_message

__all__ = ["CallerLink", "LinkOwner", "TargetLink", "deliver"]

#: The deepest ancestry a request carries (a chain that long is not going to come back).
MAX_ANCESTRY: Final = 64

# Reply statuses as plain ints: an IntEnum would pickle as a call of its class.
_VALUE: Final = int(ReplyStatus.VALUE)
_ERROR: Final = int(ReplyStatus.ERROR)
_REJECTED: Final = int(ReplyStatus.REJECTED)
_CANCELLED: Final = int(ReplyStatus.CANCELLED)

_REQUEST: Final = int(Kind.REQUEST)
_REPLY: Final = int(Kind.REPLY)

_monotonic: Final = time.monotonic
_next_id: Final = itertools.count(1).__next__


class LinkOwner(Protocol):
    """What a link needs from its node."""

    node_id: str
    exports: Exports
    live_calls: LiveCalls
    #: (caller's node, call id) -> a call from another process running here: a Cancel (on the
    #: control connection, read while the call's own thread may be busy) finds it there.
    serving: dict[tuple[str, int], CallRecord[Any]]
    cancelled_early: dict[tuple[str, int], None]

    def resolver(self) -> codec.Resolver: ...


def ancestry(call: CallRecord[Any], node: LinkOwner) -> tuple[tuple[str, int], ...]:
    """The calls ``call`` is nested in, innermost first, as other processes name them."""
    chain: list[tuple[str, int]] = []
    parent = call._parent
    while parent is not None and len(chain) < MAX_ANCESTRY:
        if isinstance(parent, ForeignCall):
            chain.append((parent.node, parent.key))
        else:
            key = parent._wire_key  # once a call has a key, it is read here (see LiveCalls)
            chain.append((node.node_id, key if key != 0 else node.live_calls.key(parent)))
        parent = parent._parent
    return tuple(chain)


class CallerLink:
    """The caller's end: requests out, replies in (on the driving loop's thread)."""

    __slots__ = ("connection", "describe_peer", "holder", "ids", "kept", "node", "peer_gone",
                 "pending", "resolver")

    def __init__(self, node: LinkOwner, holder: str, describe_peer: str) -> None:
        self.node = node
        self.resolver = node.resolver()
        #: The peer's node id: references sent here are held by it.
        self.holder = holder
        self.describe_peer = describe_peer
        #: call id -> the call waiting for its reply (written before the request is sent).
        self.pending: dict[int, CallRecord[Any]] = {}
        #: and back: where a cancel of the call goes.
        self.ids: dict[CallRecord[Any], int] = {}
        #: call id -> the target's stub, held until the reply: a proxy dropped while its call
        #: travels releases the object only after the call (the release travels on another
        #: connection and could overtake the call).
        self.kept: dict[int, object] = {}
        self.connection: Connection | None = None
        #: Set (from any thread) as the peer is found gone, before the connection closes on
        #: its loop's thread: kept links are checked for it.
        self.peer_gone = False

    def request(self, call: CallRecord[Any], object_id: int, keep: object = None) -> int:
        """Send ``call`` (any thread). Returns its id on this link; NotPicklableError if an
        argument does not pickle (nothing is sent then)."""
        args = call._args or ()
        kwargs = call._kwargs or {}
        call_id = _next_id()
        fields = (object_id, call._method, args, kwargs, call._causality,
                  ancestry(call, self.node) if call._parent is not None else ())
        try:
            if not kwargs and all_scalar(args):  # the usual call: the C pickler alone
                payload = encode_plain(_REQUEST, call_id, fields)
            else:
                payload = codec.encode_fields(_REQUEST, call_id, fields, self.resolver,
                                              self.holder)
        except ProtocolError:
            raise
        except Exception as error:
            raise codec.not_picklable(
                f"{codec.describe_unpicklable(args, kwargs, _dumps)} of {call.describe()}",
                self.describe_peer, error) from error
        connection = self.connection
        assert connection is not None
        self.pending[call_id] = call
        self.ids[call] = call_id
        if keep is not None:
            self.kept[call_id] = keep
        if connection.closed:
            # Checked once the call is pending: a close on the loop's thread marks the
            # connection closed before ``on_close`` takes the pending calls, so either that
            # finds this one (and fails it: nothing is left to send) or this finds the mark
            # (and the call fails here, once).
            if self.pending.pop(call_id, None) is None:
                return call_id
            self.ids.pop(call, None)
            self.kept.pop(call_id, None)
            raise DisconnectedError(f"{call.describe()}: the connection to "
                                    f"{self.describe_peer} is closed")
        tracer = process_state.tracer
        if tracer is not None:
            tracer.left(call, self.node.node_id, call_id)
        connection.send(payload)
        return call_id


    def on_frame(self, payload: bytes) -> None:
        _, call_id, fields, error = decode(payload, self.resolver)
        call = self.pending.pop(call_id, None)
        if call is None:
            return  # a reply to a call this process gave up on (its references are released)
        self.ids.pop(call, None)
        # The reply is here: the target's stub may go now (a release it sends can no longer
        # overtake the call).
        self.kept.pop(call_id, None)
        if fields is None:
            call._finish(None, UnreadableValueError(
                f"the result of {call.describe()} cannot be read here: {error!r}; its class "
                "must be importable in this process too"), True)
            return
        status, value, text = fields
        # A lone reply wakes its waiter right here (the next call goes out at once); replies
        # arriving in a batch wake theirs in the loop's next iteration, together, so a Task
        # awaiting many of them finds them all done instead of stepping once per reply.
        now = self.connection is not None and self.connection.batch == 1
        if status == _VALUE:
            call._finish(value, None, now)
        elif status == _ERROR:
            call._finish(None, _remote_exception(value, text, self.describe_peer, self.node),
                         now)
        elif status == _REJECTED:
            reject(call, ServerCall[value])
        else:
            call._finish(None, asyncio.CancelledError(), now)

    def on_close(self, error: BaseException | None) -> None:
        """The connection is gone: every call waiting here fails."""
        pending, self.pending = self.pending, {}
        self.ids = {}
        self.kept = {}
        for call in pending.values():
            call._finish(None, _lost(call, self.describe_peer, error))


def _dumps(value: Any) -> object:
    return pickle.dumps(value)


def _lost(call: CallRecord[Any], peer: str, error: BaseException | None) -> BaseException:
    if isinstance(error, ProtocolError):
        return ProtocolError(f"{call.describe()}: {error}")
    reason = f" ({error})" if error is not None else ""
    return DisconnectedError(
        f"{call.describe()}: the connection to {peer} was lost{reason}; the server is gone "
        "or shut down: start it again and create the object anew"
    )


def _remote_exception(value: tuple[bytes | None, str, str], text: str, peer: str,
                      node: LinkOwner) -> BaseException:
    data, type_name, message = value
    error: BaseException | None = None
    if data is not None:
        try:
            loaded = loads(data, node.resolver())
        except Exception:
            loaded = None
        if isinstance(loaded, BaseException):
            error = loaded
    if error is None:
        error = RemoteError(type_name, message, text)
    error.add_note(f"Raised in {peer}; its traceback there:\n{text.rstrip()}")
    return error


class TargetLink:
    """The target's end: requests in (on the target apartment's loop thread), replies out."""

    __slots__ = ("caller", "connection", "lookup", "node", "peer_node", "resolver", "serving")

    def __init__(self, node: LinkOwner, peer_node: str, caller: ApartmentContract,
                 connection: Connection) -> None:
        self.node = node
        self.resolver = node.resolver()
        #: The stub of an object this process exports, by id (the node's export table).
        self.lookup: Callable[[int], Stub | None] = node.exports.lookup
        self.peer_node = peer_node
        self.caller = caller  # the calling apartment, as this process sees it
        self.connection = connection
        self.serving: dict[int, CallRecord[Any]] = {}

    def on_frame(self, payload: bytes) -> None:
        cls, call_id, fields, error = decode(payload, self.resolver)
        if cls is not Request:
            return
        if fields is None:
            self._reply_error(call_id, UnreadableValueError(
                f"this process cannot read a call's arguments: {error!r}; a class sent to "
                "another process must be importable there (in a module on its sys.path)"))
            return
        if self.node.cancelled_early.pop((self.peer_node, call_id), 0) is None:
            self._send(encode_plain(_REPLY, call_id, (_CANCELLED, None, "")))
            return  # cancelled before it arrived: it never starts
        try:
            call = self._make_call(fields)
        except Exception as failure:
            self._reply_error(call_id, failure)
            return
        self.serving[call_id] = call
        self.node.serving[(self.peer_node, call_id)] = call  # where a Cancel finds it
        call._waiters = [_ReplyWaiter(self, call_id, call)]  # a new call: nobody else waits
        tracer = process_state.tracer
        if tracer is not None:
            tracer.arrived(call, self.peer_node, call_id)
        deliver(call._apartment, call)  # type: ignore[arg-type]

    def _make_call(self, fields: tuple[Any, ...]) -> Call[Any]:
        """The call a request's fields (after its call id: see ``Request``) describe."""
        object_id, method, args, kwargs, causality, ancestry = fields
        stub = self.lookup(object_id)
        if stub is None and self.node.exports.lease_ended(object_id):
            raise LeaseExpiredError(lease_expired_message(f"{method}()"))
        if stub is None or stub.obj is None or stub.disconnected:
            raise DisconnectedError(
                f"{method}(): the object no longer exists here (released or "
                "disconnected); create it again")
        bind, is_async, policy, _ = stub.table.lookup(method)
        fn = stub.bound.get(method)
        if fn is None:
            fn = stub.bind(method, bind)
        guard = stub.neutral_guard
        if guard is not None:
            fn, is_async = serialized(guard, fn, is_async)
        return Call(stub.apartment, stub.obj, method, fn, is_async, args, kwargs, self.caller,
                    self._parent(ancestry, causality) if ancestry else None, causality,
                    _monotonic(), False, stub.gate, policy)

    def _parent(self, ancestry: tuple[tuple[str, int], ...],
                causality: int) -> CallRecord[Any] | None:
        """The chain a call is nested in (its request's ``ancestry``): stand-ins for calls
        elsewhere, down to the first one of this process (its own parents follow from
        there)."""
        first: CallRecord[Any] | None = None
        last: CallRecord[Any] | None = None
        for node, key in ancestry:
            if node == self.node.node_id:
                local = self.node.live_calls.find(key)
                if local is not None and last is not None:
                    last._parent = local
                elif local is not None:
                    first = local
                break
            stand_in = ForeignCall(self.caller, node, key, causality, None)
            if last is None:
                first = stand_in
            else:
                last._parent = stand_in
            last = stand_in
        return first

    def reply(self, call_id: int, call: CallRecord[Any]) -> None:
        """Send ``call``'s outcome (from whichever thread finished it)."""
        self.serving.pop(call_id, None)
        self.node.serving.pop((self.peer_node, call_id), None)
        if call._rejected is not None:
            fields: tuple[Any, ...] = (_REJECTED, call._rejected.name, "")
        elif call._cancelled:
            fields = (_CANCELLED, None, "")
        elif call._error is not None:
            call._disarm_error_guard()  # the caller receives it
            self._reply_error(call_id, call._error, call._error_tb)
            return
        else:
            value = call._value
            try:
                kind = type(value)
                if kind is int or kind is str or kind in SCALAR_TYPES:
                    payload = encode_plain(_REPLY, call_id, (_VALUE, value, ""))
                else:
                    payload = codec.encode_fields(_REPLY, call_id, (_VALUE, value, ""),
                                                  self.resolver, self.peer_node)
            except ProtocolError as error:
                self._reply_error(call_id, error)
                return
            except Exception as error:
                self._reply_error(call_id, codec.not_picklable(
                    f"the result of {call.describe()} ({type(value).__qualname__})",
                    "its caller", error))
                return
            try:
                self._send(payload)
            except ProtocolError as error:  # over the size limit: the caller hears why
                self._reply_error(call_id, error)
            return
        self._send(encode_plain(_REPLY, call_id, fields))

    def _reply_error(self, call_id: int, error: BaseException,
                     tb: TracebackType | None = None) -> None:
        data, type_name, message, text = codec.encode_error(error, tb)
        fields = (_ERROR, (data, type_name, message), text)
        self._send(encode_plain(_REPLY, call_id, fields))

    def _send(self, payload: bytes) -> None:
        if not self.connection.closed:
            self.connection.send(payload)

    def on_close(self, error: BaseException | None) -> None:
        """The caller is gone: nobody waits for these calls any more."""
        serving, self.serving = self.serving, {}
        for call_id, call in serving.items():
            self.node.serving.pop((self.peer_node, call_id), None)
            if isinstance(call, Call):
                call.cancel()


def deliver(apartment: Apartment, call: CallRecord[Any]) -> None:
    """Start a call that arrived from another process in its apartment (from the thread of the
    loop that read it). On the apartment's own thread it runs right here (a reader callback is
    a plain loop callback, as the inbox's drain), unless items wait in the inbox: those go
    first, so it queues behind them (and, on 3.11, behind a Task not started yet)."""
    if isinstance(apartment, STA) and apartment._is_current():
        inbox = apartment._inbox
        assert inbox is not None
        if inbox.idle():
            if call._deliver():  # 3.11: a Task waits for its first step; later ones queue
                inbox.hold_until_next_iteration()
        else:
            inbox.post_local(call)
    elif apartment._inline_only:
        apartment._run_here(call)
    else:
        apartment._post(call)


class _ReplyWaiter:
    """Sends a call's reply once it has its outcome (notified on any thread, maybe twice)."""

    __slots__ = ("call", "call_id", "link", "sent")

    def __init__(self, link: TargetLink, call_id: int, call: CallRecord[Any]) -> None:
        self.link = link
        self.call_id = call_id
        self.call: CallRecord[Any] | None = call
        self.sent = False

    def notify_now(self) -> None:
        self.notify()

    def notify(self) -> None:
        call = self.call
        if call is None or self.sent or not (call._state == DONE or call._cancelled):
            return
        self.sent = True
        try:
            self.link.reply(self.call_id, call)
        except AptioError:
            pass  # the connection went away meanwhile: nobody to tell
        finally:
            # The call holds this waiter: holding the call back would make a cycle, and the
            # call's result (an object created here, say) would wait for a garbage collection,
            # which an idle process (a Ray worker) may never run.
            self.call = None
