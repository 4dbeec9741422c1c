"""Stubs (COM: the stub manager): one per live object that has proxies.

A :class:`Stub` stands for one live object in its home apartment; every proxy to the object
holds the stub, and the stub holds the object. So the home apartment keeps an object alive
exactly as long as a proxy (or an in-flight call) exists, and when the last one goes, the final
reference is dropped on the home apartment's own thread (COM marshals Release home too).

Invariant: at most one stub per live object (``_stubs`` is keyed by ``id(obj)``, which is stable
while the stub holds the object), so ``disconnect`` reaches every proxy at once.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from .._admission.gate import Gate
from .._call.contract import ApartmentContract
from .._compiled import WeaklyReferenced
from .._values.declarations import spec_of
from .._values.errors import DisconnectedError
from .method_table import MethodTable, method_table
from .neutral_guard import NeutralGuard

__all__ = ["Stub", "existing_stub", "live_stubs", "stub_for"]


# Weakly referenced (``_stubs`` holds every stub weakly): see WeaklyReferenced. A native class
# where this module is compiled, so that the send path reads its fields directly.
class Stub(WeaklyReferenced):
    """One live object and the apartment it lives in; shared by all proxies to the object."""

    __slots__ = ("__weakref__", "agile", "apartment", "bound", "cls", "disconnected", "gate",
                 "neutral_guard", "obj", "table")

    def __init__(self, obj: object, apartment: ApartmentContract) -> None:
        self.obj: object | None = obj
        #: name -> the method bound to ``obj``, made on first call (no bound method per call).
        #: Its entries hold ``obj`` too, so whatever takes ``obj`` away takes this with it
        #: (``take_object``): the object's last reference still goes home.
        self.bound: dict[str, Callable[..., Any]] = {}
        self.cls = type(obj)
        self.apartment = apartment
        self.agile = spec_of(self.cls).agile
        self.disconnected = False
        self.table: MethodTable = method_table(self.cls)
        self.gate = (Gate(f"{self.cls.__qualname__} in {apartment.name!r}")
                     if self.table.gated else None)
        #: For objects of the neutral apartment: serializes calls from every caller. Made here
        #: (stubs are made under ``_stubs_lock``), so all callers share one.
        self.neutral_guard = (NeutralGuard() if apartment._inline_only and not self.agile
                              else None)

    def bind(self, name: str, bind: Callable[[Any, type], Any]) -> Callable[..., Any]:
        """``name`` bound to the object, cached (two threads may both bind: either is fine)."""
        fn: Callable[..., Any] = bind(self.obj, self.cls)
        self.bound[name] = fn
        return fn

    def take_object(self) -> object:
        """Hand over every reference to the object (it and its bound methods), clearing them
        here; the receiver drops them on the object's home thread."""
        references = (self.obj, self.bound)
        self.obj = None
        self.bound = {}
        return references

    def drop_object(self) -> None:
        """Let go of the object (on its home thread, or where any thread is home)."""
        self.obj = None
        self.bound = {}

    def disconnected_error(self, method: str) -> DisconnectedError:
        return DisconnectedError(
            f"{self.cls.__qualname__}.{method}(): the object was disconnected from "
            f"{self.apartment.name!r}; create a new one"
        )

    def __del__(self) -> None:
        # No local reference to the object here: if this frame held one, the home thread
        # could drop its reference first and the object would die on this thread after all.
        if self.obj is not None:
            try:
                self.apartment._release(self)
            except Exception:  # interpreter shutdown: nothing left to release to
                self.drop_object()


_stubs: weakref.WeakValueDictionary[int, Stub] = weakref.WeakValueDictionary()
_stubs_lock = threading.Lock()


def stub_for(obj: object, apartment: ApartmentContract) -> Stub:
    """The object's stub, made if no proxy to it exists right now."""
    key = id(obj)
    stub = _stubs.get(key)
    if stub is not None and stub.obj is obj:
        return stub
    with _stubs_lock:
        stub = _stubs.get(key)
        if stub is None or stub.obj is not obj:
            stub = Stub(obj, apartment)
            _stubs[key] = stub
    return stub


def existing_stub(obj: object) -> Stub | None:
    stub = _stubs.get(id(obj))
    return stub if stub is not None and stub.obj is obj else None


def live_stubs() -> list[Stub]:
    """A snapshot of every stub alive now (for diagnostics; any thread)."""
    # An atomic copy of the weak references: iterating the WeakValueDictionary itself would
    # fail if another thread made a stub meanwhile.
    found = [ref() for ref in _stubs.valuerefs()]
    return [stub for stub in found if stub is not None]
