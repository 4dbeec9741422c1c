"""Per-thread values kept in plain dicts keyed by thread id, for the hot paths.

One lookup, ``table[thread_id()]``, costs about what a plain ``threading.local`` attribute
does compiled (some 500 instructions: the id is a new int every time) and less than an
attribute of a ``threading.local`` subclass; one table can hold a record of several fields,
so the hot paths look it up once per call. The price is removing a thread's entry when the
thread ends, which :func:`bind_to_thread` arranges.

Invariant of every table bound through :func:`bind_to_thread`: an entry exists only for a
thread that has not ended, and only that thread adds, replaces or removes it. Thread ids are
reused only after a thread ended, and a thread's entry goes as the thread ends (a marker held
by a ``threading.local`` slot, which Python drops on that thread when it ends), so a reused id
never finds the value of the thread that had it before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

__all__ = ["bind_to_thread", "thread_id", "unbind_from_thread"]

#: ``threading.get_ident``, typed ``object``: compiled code then passes the id on as the
#: object it is (an ``int`` would be unboxed and boxed again for the lookup).
thread_id: Final[Callable[[], object]] = threading.get_ident


class _ThreadEnd:
    """Held by a thread's slot of a table's ``threading.local``: dropped on that thread when it
    ends (or when the entry is replaced), it removes the entry it was made for, if that entry
    is still the table's."""

    __slots__ = ("ident", "table", "value")

    def __init__(self, table: dict[object, Any], ident: object, value: object) -> None:
        # The table is held here, not read as a global when the thread ends: that may happen
        # while the interpreter shuts down and clears modules.
        self.table = table
        self.ident = ident
        self.value = value

    def __del__(self) -> None:
        if self.table.get(self.ident) is self.value:
            del self.table[self.ident]


def bind_to_thread(table: dict[object, Any], value: object, slot: threading.local) -> None:
    """Set the calling thread's entry of ``table`` to ``value``, removed when the thread ends.
    ``slot`` is a ``threading.local`` used for this table only."""
    ident = thread_id()
    # The marker first: the one it replaces may remove the entry (its value is still there,
    # even when it is this same value), and the entry is set again just after.
    slot.marker = _ThreadEnd(table, ident, value)
    table[ident] = value


def unbind_from_thread(table: dict[object, Any], slot: threading.local) -> None:
    """Remove the calling thread's entry of ``table`` (if any) and its marker."""
    table.pop(thread_id(), None)
    slot.marker = None
