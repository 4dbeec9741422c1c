"""Proxies through plain Ray: a proxy pickled by Ray (an argument of a Ray task or actor
method, an object in Ray's object store) and unpickled in another process of the cluster
keeps working there.

Pickling (:func:`_reduce`, the proxy's pickle hook once :mod:`aptio.ray` is imported) takes a
lease on the object (:mod:`aptio._remote.leases`), so it stays alive while the pickle travels
or waits in the object store, and writes down where the object's owner is reached on the
cluster (its server's actor, or the relay of a process Ray cannot call). Unpickling
(:func:`_arrived`) brings up an aptio runtime in the receiving process if it has none
(:mod:`aptio._ray.background`), claims the lease and returns an ordinary proxy: the same
results, errors, ordering per caller and cancellation as anywhere.

Nothing here blocks on another process: Ray may unpickle on one of its own threads (an
``await`` of an ObjectRef does), which must stay free to complete the exchanges a proxy's
calls travel on. The claim and the first calls simply queue behind the connection setup.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import ray

from .._proxy.proxy import Proxy, set_pickle_hook
from .._proxy.stub import Stub
from .._remote.remote_stub import RemoteStub
from .._runtime.entry import current_runtime
from .._values.errors import DisconnectedError
from .._wire.messages import ObjectRef
from .background import runtime_here
from .network import install
from .security import check_cluster, insecure_allowed, note_insecure_allowed

__all__ = ["DEFAULT_TRANSIT_LEASE", "set_transit_lease"]

#: How long a pickled proxy keeps its object alive if nobody unpickles it (seconds).
DEFAULT_TRANSIT_LEASE: Final = 3600.0

_lease_seconds = DEFAULT_TRANSIT_LEASE


def set_transit_lease(seconds: float) -> float:
    """Set how long a proxy pickled in this process from now on (an argument of a Ray task,
    an object put in Ray's object store) keeps its object alive until a receiver unpickles
    it; returns the previous length. One hour by default (:data:`DEFAULT_TRANSIT_LEASE`).

    The first receiver to unpickle the proxy takes the object over (it holds a reference of
    its own from then on) and the lease ends there. If nobody has by the lease's end, the
    object is released (unless something else holds it), and a receiver that unpickles the
    proxy later gets :class:`aptio.LeaseExpiredError` from its first call."""
    global _lease_seconds
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0:
        raise ValueError(f"set_transit_lease() takes a number of seconds > 0, not {seconds!r}")
    previous, _lease_seconds = _lease_seconds, float(seconds)
    return previous


def _reduce(stub: Stub) -> tuple[Any, tuple[Any, ...]]:
    """What a proxy pickles to outside aptio's codec (see the module docstring)."""
    runtime = current_runtime()
    if runtime is None:
        raise DisconnectedError(
            f"a proxy to {stub.cls.__qualname__} was pickled after its aptio runtime shut down")
    if not ray.is_initialized():
        raise TypeError(
            "an aptio proxy pickles only to travel through Ray, and Ray is not initialized in "
            "this process: call ray.init() first")
    allowed = insecure_allowed()
    check_cluster(allowed)
    node = runtime.node()
    network = install(node)
    lease = secrets.token_hex(16)
    seconds = _lease_seconds
    if isinstance(stub, RemoteStub):
        address = network.address_of(stub.ref)
        if address is None:
            raise TypeError(
                f"a proxy to {stub.cls.__qualname__} cannot travel through Ray: it lives in "
                f"{stub.apartment.name}, a process that is not on this Ray cluster (a local "
                "server); create the object in a server on Ray (aptio.ray.start_server)")
        ref = node.leases.lease(stub, lease, seconds, "")._replace(address=address)
    else:
        ref = node.leases.lease(stub, lease, seconds, network.own_address())
    return _arrived, (ref, lease, allowed)


def _arrived(ref: ObjectRef, lease: str, insecure_ok: bool) -> Proxy[Any]:
    """A proxy that travelled through Ray, unpickled here (see the module docstring)."""
    if insecure_ok:
        note_insecure_allowed()  # its sender accepted this cluster: this process does too
    check_cluster(insecure_ok)
    node = runtime_here().node()
    install(node)
    return node.leases.claim(ref, lease)


set_pickle_hook(_reduce)
