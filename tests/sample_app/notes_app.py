"""A small notes application, to test with aptio's pytest plugin: a window-like object in the
main STA (as a GUI's would be), an indexer in a worker STA, and a storage service in the MTA.

Adding a note saves it (MTA), indexes it (worker STA), and updates the window's status; a
search asks the indexer, then loads the notes it found.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import aptio


@aptio.coclass(model=aptio.ThreadingModel.FREE)
class Storage:
    """The notes, kept by id; FREE, so it lives in the MTA and locks for itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notes: dict[int, str] = {}

    def save(self, text: str) -> int:
        with self._lock:
            note_id = len(self._notes) + 1
            self._notes[note_id] = text
            return note_id

    def load(self, note_id: int) -> str:
        with self._lock:
            return self._notes[note_id]

    def count(self) -> int:
        with self._lock:
            return len(self._notes)


@aptio.coclass
class Indexer:
    """Word -> note ids; lives in the worker STA, so it needs no lock."""

    def __init__(self) -> None:
        self._words: dict[str, list[int]] = {}
        self.order: list[int] = []  # the order notes were indexed in

    def add(self, note_id: int, text: str) -> None:
        self.order.append(note_id)
        for word in set(text.lower().split()):
            self._words.setdefault(word, []).append(note_id)

    def search(self, word: str) -> list[int]:
        return sorted(self._words.get(word.lower(), []))

    def indexed(self) -> list[int]:
        return list(self.order)


@aptio.coclass
class NotesWindow:
    """What a GUI window would hold: a status line and the shown results (main STA)."""

    def __init__(self, storage: aptio.Proxy[Storage], indexer: aptio.Proxy[Indexer]) -> None:
        self._storage = storage
        self._indexer = indexer
        self.status = "ready"
        self.results: list[str] = []

    async def add_note(self, text: str) -> int:
        self.status = "saving"
        note_id = await self._storage.save(text)
        self.status = f"indexing note {note_id}"
        await self._indexer.add(note_id, text)
        self.status = f"added note {note_id}"
        return note_id

    async def search(self, word: str) -> list[str]:
        ids = await self._indexer.search(word)
        self.results = [await self._storage.load(note_id) for note_id in ids]
        self.status = f"{len(ids)} found"
        return list(self.results)

    def get_status(self) -> str:
        return self.status


@dataclass
class App:
    window: aptio.Proxy[NotesWindow]
    indexer: aptio.Proxy[Indexer]
    storage: aptio.Proxy[Storage]
    worker: aptio.Apartment

    async def close(self) -> None:
        await self.worker.shutdown()


async def start_app() -> App:
    """Start the application from the main STA."""
    worker = await aptio.start_sta("indexer")
    indexer = await worker.create(Indexer)
    storage = await aptio.create(Storage)
    window = await aptio.create(NotesWindow, storage, indexer)
    return App(window, indexer, storage, worker)
