"""Proxies to objects that live in other processes: their stubs, and the classes they use.

A :class:`RemoteStub` plays a stub's part for an object held by reference: every proxy to the
object in this process shares it, and its last proxy going sends one ``Release`` home with
every reference this process received (so the owner's counts stay exact, however many times the
reference arrived). The proxy class is the ordinary one made from the object's class when this
process can import it, else one made from what the reference says of it.

Invariant: at most one RemoteStub per remote object at a time (``RemoteStubs`` is keyed by
owner and object id, weakly); ``received`` changes only under the registry's lock.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import weakref
from typing import Any

from .._call.contract import ApartmentContract
from .._proxy.method_table import (
    DynamicMethodTable,
    GeneratorKind,
    method_table,
    register_table,
)
from .._proxy.proxy import Proxy, proxy_class
from .._proxy.stub import Stub
from .._values.errors import DisconnectedError, LeaseExpiredError
from .._wire.messages import ClassRef, ObjectRef

__all__ = ["ReleasedStub", "RemoteStub", "RemoteStubs", "lease_expired_message",
           "resolve_class", "script_of"]


class RemoteStub(Stub):
    """The stub of an object in another process (``obj`` is its reference)."""

    __slots__ = ("received", "ref")

    def __init__(self, ref: ObjectRef, apartment: ApartmentContract, cls: type) -> None:
        # A stub's fields, for an object that is not here: no Stub.__init__, which looks at it.
        self.obj = ref
        self.bound = {}
        self.cls = cls
        self.apartment = apartment
        self.agile = False
        self.disconnected = False
        self.table = method_table(cls)
        self.gate = None  # reentrancy is the owner's to enforce
        self.neutral_guard = None
        self.ref = ref
        #: References to the object this process received (released together at the end).
        self.received = 0

    def take_object(self) -> object:
        references = (self.obj, self.bound)
        self.obj = None
        self.bound = {}
        return references


class ReleasedStub(RemoteStub):
    """Stands for an object released before a pickled reference to it was unpickled here:
    every call raises :class:`aptio.LeaseExpiredError`."""

    __slots__ = ()

    def __init__(self, ref: ObjectRef, apartment: ApartmentContract, cls: type) -> None:
        super().__init__(ref, apartment, cls)
        self.obj = None
        self.disconnected = True

    def disconnected_error(self, method: str) -> DisconnectedError:
        return LeaseExpiredError(lease_expired_message(f"{self.cls.__qualname__}.{method}()"))


def lease_expired_message(what: str) -> str:
    """Why a call through a pickled proxy whose object is gone fails, and what to do."""
    return (
        f"{what}: the object was released before this proxy came into use. It travelled "
        "pickled outside aptio (through Ray, say), held by a lease that has ended (the first "
        "receiver took it over, or it ran out), and every holder has let the object go. Keep "
        "a proxy to the object in the sending process until the receivers have used theirs, "
        "or lengthen the lease (aptio.ray.set_transit_lease)"
    )


class RemoteStubs:
    """The remote stubs alive in this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stubs: weakref.WeakValueDictionary[tuple[str, int], RemoteStub] = (
            weakref.WeakValueDictionary())

    def arrived(self, ref: ObjectRef, apartment: ApartmentContract) -> Proxy[Any]:
        """A proxy for a reference that just arrived (one more received)."""
        key = (ref.node, ref.object_id)
        with self._lock:
            stub = self._stubs.get(key)
            if stub is None or stub.obj is None:
                stub = RemoteStub(ref, apartment, resolve_class(ref.cls))
                self._stubs[key] = stub
            stub.received += 1
        return proxy_class(stub.cls)(stub)

    def find(self, ref: ObjectRef) -> RemoteStub | None:
        """The live stub of the object ``ref`` names, if any."""
        return self._stubs.get((ref.node, ref.object_id))

    def taken(self, stub: RemoteStub) -> int:
        """The references ``stub`` received, now released (its last proxy is gone)."""
        with self._lock:
            received, stub.received = stub.received, 0
        return received

    def all(self) -> list[RemoteStub]:
        found = [ref() for ref in self._stubs.valuerefs()]
        return [stub for stub in found if stub is not None]


_stand_ins: dict[ClassRef, type] = {}
_stand_ins_lock = threading.Lock()


def _import_class(module: str, qualname: str) -> type | None:
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:
        return None
    return found if isinstance(found, type) else None


def script_of(module: str) -> str:
    """The real path of ``module``'s file if it is a main script (``__main__``, or
    ``__mp_main__`` in a process that loaded another's script), else ""."""
    if module not in ("__main__", "__mp_main__"):
        return ""
    path = getattr(sys.modules.get(module), "__file__", None)
    return os.path.realpath(path) if isinstance(path, str) else ""


def resolve_class(ref: ClassRef) -> type:
    """The class a reference names: imported if this process can, else a stand-in whose
    method table accepts any public method (the owner checks them)."""
    if ref.script:
        # A class of a process's main script, which each process knows by another name: a
        # server loads the script of the process that started it as ``__mp_main__`` (as
        # multiprocessing's spawn does), that process runs it as ``__main__``. The class is
        # this process's only if one of those is the same file here.
        found = None
        for module in ("__main__", "__mp_main__"):
            if script_of(module) == ref.script:
                found = _import_class(module, ref.qualname)
                break
    else:
        found = _import_class(ref.module, ref.qualname)
    if found is not None:
        return found
    with _stand_ins_lock:
        stand_in = _stand_ins.get(ref)
        if stand_in is None:
            stand_in = type(ref.qualname.rpartition(".")[2], (), {
                "__module__": ref.module, "__qualname__": ref.qualname,
                "__doc__": f"Stands for {ref.module}.{ref.qualname}, which this process "
                           "cannot import; its objects live in another process."})
            kinds = {name: GeneratorKind.SYNC for name in ref.iterators}
            kinds.update({name: GeneratorKind.ASYNC for name in ref.async_iterators})
            register_table(stand_in, DynamicMethodTable(stand_in, kinds))
            _stand_ins[ref] = stand_in
    return stand_in
