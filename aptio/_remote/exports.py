"""Distributed reference counting, the owner's side: the objects of this process that other
processes hold references to.

Each exported object has an id and a count per holder process. Counts change by:
  * this process sending a reference to holder H: ``export`` adds one for H before it leaves;
  * another process A passing the reference on to H: A sends an ``AddRef(H)`` here first;
  * a holder releasing: ``Release(n)`` subtracts what it received;
  * a holder dying (its last connection closes): its counts go, and later AddRefs for it are
    ignored;
  * a reference leaving aptio (pickled outside aptio's codec: Ray carries it, to a receiver
    not known yet): a *lease* holds one count, under a random token, until a receiver claims
    it (the claimer holds a count of its own from then on) or its time runs out. A process
    that pickles a remote object's reference sends ``Lease`` to the owner first, as it would
    an AddRef; a claim that overtakes its lease is remembered, so the lease, arriving later,
    holds nothing.
Invariant: an entry lives while any holder's count is not zero. A count may dip below zero for
a moment (H's release can arrive before A's AddRef for H, on another connection), but A's own
count keeps the entry alive meanwhile: A sends its AddRef before its own Release, on the same
connection. The entry holds the object's stub, so the object lives exactly as long.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final

from .._call.contract import CallRecord
from .._proxy.stub import Stub

__all__ = ["CONTROL_OBJECT_ID", "Exports", "LiveCalls"]

#: The node's control object (creation, apartments, shutdown), exported for good.
CONTROL_OBJECT_ID: Final = 0
#: How a lease is named among an object's holders (holders are otherwise node ids).
_LEASE: Final = "lease:"
#: How many early claims, and released objects that travelled under a lease, are remembered.
_REMEMBERED: Final = 10_000


class _Export:
    __slots__ = ("counts", "leased", "stub")

    def __init__(self, stub: Stub) -> None:
        self.stub = stub
        self.counts: dict[str, int] = {}
        self.leased = False  # a reference to it travelled outside aptio


class Exports:
    """The export table (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(CONTROL_OBJECT_ID + 1)
        self._entries: dict[int, _Export] = {}
        self._pinned: dict[int, Stub] = {}
        self._id_of: dict[int, int] = {}  # id(stub) -> object id, while exported
        self._dead: set[str] = set()
        self._leases: dict[str, int] = {}  # a live lease -> its object's id
        self._claimed_early: dict[str, None] = {}  # claims that overtook their lease
        self._lease_ended: dict[int, None] = {}  # released objects that travelled leased
        #: Called (outside the lock) whenever the last exported object goes.
        self.on_empty: Callable[[], None] | None = None

    def pin(self, object_id: int, stub: Stub) -> None:
        """Export ``stub`` for good under ``object_id`` (the control object)."""
        with self._lock:
            self._pinned[object_id] = stub

    def export(self, stub: Stub, holder: str) -> int:
        """The object's id; ``holder`` holds one more reference (sent next)."""
        with self._lock:
            object_id, entry = self._entry_for(stub)
            entry.counts[holder] = entry.counts.get(holder, 0) + 1
            return object_id

    def unexport(self, object_id: int, holder: str) -> None:
        """Undo one ``export`` whose message was never sent."""
        self.release(object_id, holder, 1)

    def lookup(self, object_id: int) -> Stub | None:
        # Lock-free: one dict read each (atomic under the GIL); an entry is never mutated into
        # another object's.
        pinned = self._pinned.get(object_id)
        if pinned is not None:
            return pinned
        entry = self._entries.get(object_id)
        return entry.stub if entry is not None else None

    def add_ref(self, object_id: int, holder: str) -> None:
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None or holder in self._dead:
                return
            entry.counts[holder] = entry.counts.get(holder, 0) + 1

    def release(self, object_id: int, holder: str, references: int) -> None:
        dropped: list[_Export] = []
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None:
                return
            left = entry.counts.get(holder, 0) - references
            if left:
                entry.counts[holder] = left
            else:
                entry.counts.pop(holder, None)
            self._drop_if_free(object_id, entry, dropped)
        self._dropped(dropped)

    def _entry_for(self, stub: Stub) -> tuple[int, _Export]:
        """The object's id and entry, made on its first export (under the lock)."""
        object_id = self._id_of.get(id(stub))
        if object_id is None:
            object_id = next(self._ids)
            self._id_of[id(stub)] = object_id
            self._entries[object_id] = _Export(stub)
        return object_id, self._entries[object_id]

    def export_leased(self, stub: Stub, lease: str) -> int:
        """The object's id; ``lease`` holds one reference (a pickle of it leaves next)."""
        with self._lock:
            object_id, entry = self._entry_for(stub)
            entry.counts[_LEASE + lease] = 1
            entry.leased = True
            self._leases[lease] = object_id
            return object_id

    def lease(self, object_id: int, lease: str) -> bool:
        """Hold the object for ``lease`` (another process pickled a reference to it). False
        if there is nothing to hold: the object is gone, or the lease was claimed already."""
        with self._lock:
            if lease in self._claimed_early:
                del self._claimed_early[lease]
                return False
            entry = self._entries.get(object_id)
            if entry is None:
                return False
            entry.counts[_LEASE + lease] = 1
            entry.leased = True
            self._leases[lease] = object_id
            return True

    def claim(self, object_id: int, lease: str, holder: str | None) -> None:
        """A process unpickled a reference that travelled under ``lease``: ``holder`` (None:
        this process, which needs no count) holds one more reference, and the lease ends. If
        the object is gone already, the holder holds nothing (its release is ignored)."""
        dropped: list[_Export] = []
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is not None and holder is not None and holder not in self._dead:
                entry.counts[holder] = entry.counts.get(holder, 0) + 1
            if self._leases.pop(lease, None) is None:
                self._claimed_early[lease] = None  # its Lease, arriving later, holds nothing
                if len(self._claimed_early) > _REMEMBERED:
                    del self._claimed_early[next(iter(self._claimed_early))]
            elif entry is not None:
                entry.counts.pop(_LEASE + lease, None)
                self._drop_if_free(object_id, entry, dropped)
        self._dropped(dropped)

    def end_lease(self, lease: str) -> None:
        """``lease`` ran out: what it held goes (nothing if it was claimed)."""
        dropped: list[_Export] = []
        with self._lock:
            object_id = self._leases.pop(lease, None)
            entry = self._entries.get(object_id) if object_id is not None else None
            if entry is not None and object_id is not None:
                entry.counts.pop(_LEASE + lease, None)
                self._drop_if_free(object_id, entry, dropped)
        self._dropped(dropped)

    def lease_ended(self, object_id: int) -> bool:
        """True if object ``object_id`` was released after a reference to it travelled
        outside aptio (a call reaching it now comes from a pickle that arrived too late)."""
        return object_id in self._lease_ended

    def holder_gone(self, holder: str) -> None:
        """``holder`` died or left: every reference it held is released."""
        dropped: list[_Export] = []
        with self._lock:
            self._dead.add(holder)
            for object_id, entry in list(self._entries.items()):
                if entry.counts.pop(holder, None) is not None:
                    self._drop_if_free(object_id, entry, dropped)
        self._dropped(dropped)

    def _drop_if_free(self, object_id: int, entry: _Export, dropped: list[_Export]) -> None:
        if any(entry.counts.values()):
            return
        del self._entries[object_id]
        del self._id_of[id(entry.stub)]
        if entry.leased:
            self._lease_ended[object_id] = None
            if len(self._lease_ended) > _REMEMBERED:
                del self._lease_ended[next(iter(self._lease_ended))]
        dropped.append(entry)

    def _dropped(self, dropped: list[_Export]) -> None:
        if not dropped:
            return
        dropped.clear()  # the stubs go here, outside the lock (their objects go home)
        hook = self.on_empty
        if hook is not None and not self._entries:
            hook()

    def holders(self) -> int:
        """How many objects are exported right now (the control object left out)."""
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Drop every entry (the node stops: its objects' holders are gone with it)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._id_of.clear()
            self._pinned.clear()
            self._leases.clear()
        entries.clear()


#: The keys of ``LiveCalls``, unique in the process (a call keeps its key, whatever node asks).
_call_keys: Final = itertools.count(1)


class LiveCalls:
    """Keys for local calls that sent calls to other processes, so a nested call coming back
    can be linked to them (its ancestry names them by these keys). A call keeps its key
    (``CallRecord._wire_key``, 0 until it has one); the table is weak: an entry goes with its
    call."""

    def __init__(self) -> None:
        self._by_key: weakref.WeakValueDictionary[int, CallRecord[Any]] = (
            weakref.WeakValueDictionary())
        self._lock = threading.Lock()

    def key(self, call: CallRecord[Any]) -> int:
        key = call._wire_key
        if key == 0:
            with self._lock:
                key = call._wire_key
                if key == 0:
                    key = next(_call_keys)
                    self._by_key[key] = call
                    call._wire_key = key
        return key

    def find(self, key: int) -> CallRecord[Any] | None:
        return self._by_key.get(key)
