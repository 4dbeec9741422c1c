"""References that leave aptio for a while: a proxy pickled by something other than aptio's
codec (Ray's serializer, for a Ray task's argument or an object put in Ray's object store),
to be unpickled by a process not known yet, maybe more than once, maybe never.

Distributed reference counting needs a holder for every reference, and nobody holds such a
pickle. So the pickle carries a *lease*: a random token under which the owner holds one
reference (see :mod:`aptio._remote.exports`) until the first process that unpickles it
claims it, or until the lease's time runs out.

* Pickling (``lease``): an object of this process is exported with the lease as its holder,
  and its expiry scheduled; for a remote object held here, the owner is sent ``Lease`` first,
  on the control connection, before this process's own release can follow (as ``AddRef``).
* Unpickling (``claim``): the receiver makes its proxy as for any reference that arrives, and
  sends ``Claim``: from then on it holds a reference of its own, released as any other. A
  pickle unpickled again later (another reader of an object in Ray's store, a retried task)
  claims again: it gets a reference if the object still lives.
* A call that reaches an object released after its lease ended fails with
  :class:`aptio.LeaseExpiredError` (the owner remembers which objects travelled leased), as
  does a pickle of this process's own object unpickled here after it went.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from .._apartments.base import Apartment
from .._proxy.proxy import Proxy, proxy_class
from .._proxy.stub import Stub
from .._values.errors import DisconnectedError
from .._wire.messages import ApartmentRef, Claim, Lease, ObjectRef
from . import codec
from .exports import Exports
from .peer import Driver, Peer
from .remote_stub import ReleasedStub, RemoteStub, resolve_class

__all__ = ["LeaseHost", "Leases", "MAX_LEASE"]

#: The longest lease an owner grants (a longer one asked for is cut to this).
MAX_LEASE: Final = 7 * 24 * 3600.0


class LeaseHost(Protocol):
    """What leases need from their node."""

    node_id: str
    exports: Exports

    def peer(self, node_id: str, address: str, name: str) -> Peer: ...

    def arrived(self, ref: ObjectRef) -> Proxy[Any]: ...

    def io_driver(self) -> Driver: ...

    def apartment_ref(self, apartment: Apartment) -> ApartmentRef: ...

    def local_apartment(self, apartment_id: str) -> Apartment | None: ...


class Leases:
    """A node's leases (see the module docstring). Thread-safe."""

    def __init__(self, host: LeaseHost) -> None:
        self._host = host
        #: Called whenever another process passes a reference to an object of this one on, to
        #: ``holder`` (a node id; "" for a pickle, receiver unknown): a hook for a transport
        #: that must make this process reachable from there (``aptio.ray``'s relay).
        self.on_passed_on: Callable[[str], None] | None = None

    def lease(self, stub: Stub, lease: str, seconds: float, address: str) -> ObjectRef:
        """A reference to ``stub``'s object for a pickle that leaves aptio, held under
        ``lease`` until claimed or ``seconds`` pass. ``address``: where receivers reach this
        process (for an object of its own)."""
        host = self._host
        if isinstance(stub, RemoteStub):
            ref = stub.ref
            if stub.obj is None:
                raise DisconnectedError(
                    f"a proxy to {ref.cls.qualname} was pickled after its object was released")
            peer = host.peer(ref.node, ref.address, ref.apartment.process)
            peer.send_lease(ref.object_id, lease, seconds)  # before this process's release
            return ref
        object_id = host.exports.export_leased(stub, lease)
        self._expire_later(lease, seconds)
        if not isinstance(stub.apartment, Apartment):
            raise DisconnectedError("a proxy pickled outside its runtime's apartments")
        return ObjectRef(host.node_id, address, object_id, host.apartment_ref(stub.apartment),
                         codec.class_ref(stub.cls))

    def claim(self, ref: ObjectRef, lease: str) -> Proxy[Any]:
        """The proxy a reference that travelled under ``lease`` stands for, now held by this
        process (the owner hears of it: its lease ends)."""
        host = self._host
        if ref.node != host.node_id:
            proxy = host.arrived(ref)
            host.peer(ref.node, ref.address, ref.apartment.process).send_claim(ref.object_id,
                                                                               lease)
            return proxy
        stub = host.exports.lookup(ref.object_id)
        if stub is None:  # this process's own object, gone before its pickle came back
            apartment = (host.local_apartment(ref.apartment.apartment_id)
                         or host.local_apartment("na"))
            assert apartment is not None
            released = ReleasedStub(ref, apartment, resolve_class(ref.cls))
            return proxy_class(released.cls)(released)
        proxy = proxy_class(stub.cls)(stub)  # holds the stub before the lease lets go
        host.exports.claim(ref.object_id, lease, None)
        return proxy

    def held(self, message: Lease) -> None:
        """Another process pickled a reference to an object of this one (on the I/O loop)."""
        if self._host.exports.lease(message.object_id, message.lease):
            self._expire_later(message.lease, message.seconds)
            self.passed_on("")

    def passed_on(self, holder: str) -> None:
        """Another process passed a reference to an object of this one on to ``holder``."""
        hook = self.on_passed_on
        if hook is not None:
            try:
                hook(holder)
            except Exception as error:  # the holder's calls will fail; say why here too
                self._host.io_driver().loop.call_exception_handler({
                    "message": "aptio: could not make this process reachable for a holder",
                    "exception": error})

    def claimed(self, holder: str, message: Claim) -> None:
        """Process ``holder`` unpickled a reference to an object of this one."""
        self._host.exports.claim(message.object_id, message.lease, holder)

    def _expire_later(self, lease: str, seconds: float) -> None:
        loop = self._host.io_driver().loop
        delay = min(max(float(seconds), 0.0), MAX_LEASE)
        end = self._host.exports.end_lease
        try:
            loop.call_soon_threadsafe(lambda: loop.call_later(delay, end, lease))
        except RuntimeError:  # the node's loop is closed: its exports are gone
            pass
