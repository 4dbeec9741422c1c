"""Dropping an object at home: the item that carries an object's last references to a thread
of its apartment, and the count of those still on their way (so a test can wait, with no
polling, until every object whose last proxy went is gone)."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["ReleaseItem", "when_releases_done"]


class _ReleasesInFlight:
    """How many ReleaseItems are queued or being dropped, so a test can wait until every object
    whose last proxy went is gone (``aptio.testing``'s leak checks), with no polling.

    Invariant: an item counts from its creation until its references were dropped; dropping
    them can release more objects, whose items are created (and counted) before the first one
    stops counting, so the count reaches zero only when the whole cascade is done."""

    __slots__ = ("_count", "_lock", "_when_done")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._when_done: list[Callable[[], None]] = []

    def begin(self) -> None:
        with self._lock:
            self._count += 1

    def end(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count or not self._when_done:
                return
            callbacks, self._when_done = self._when_done, []
        for callback in callbacks:
            callback()

    def when_done(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._count:
                self._when_done.append(callback)
                return
        callback()


_releases = _ReleasesInFlight()


def when_releases_done(callback: Callable[[], None]) -> None:
    """Call ``callback`` (on whichever thread finishes the last one) once no object released on
    a foreign thread is still waiting to be dropped at home: at once if none is."""
    _releases.when_done(callback)


class ReleaseItem:
    """The references to an object whose last proxy went on a foreign thread, queued to be
    dropped on a thread of the object's apartment (taken over from its stub, so no other frame
    holds them meanwhile)."""

    __slots__ = ("references",)

    def __init__(self, references: object) -> None:
        self.references: object = references
        _releases.begin()

    def _deliver(self) -> bool:
        self._drop()
        return False

    def _starts_as_task(self) -> bool:
        return False  # dropping the object runs its finalizer now

    def _fail_undelivered(self) -> None:
        self._drop()

    def _drop(self) -> None:
        try:
            self.references = None
        finally:
            _releases.end()
