"""The mypy plugin rejects wrong proxy calls."""
# checkers: mypy

from __future__ import annotations

import aptio

from shapes import Shelf, Store


async def main() -> None:
    store = await aptio.create(Store, "/tmp/store")
    store.pot("a", b"1")  # expect: mypy[attr-defined]
    store.put("a", "1")  # expect: mypy[arg-type]
    store.put("a")  # expect: mypy[call-arg]
    count: int = await store.describe()  # expect: mypy[assignment]
    store.size  # expect: mypy[attr-defined]
    store.kind  # expect: mypy[attr-defined]
    store.path  # expect: mypy[attr-defined]
    store.measure(3)  # expect: mypy[arg-type]
    await store.keys()  # expect: mypy[misc]
    await aptio.create(Store, 3)  # expect: mypy[call-overload|arg-type]
    shelf = await aptio.create(Shelf, "a")
    shelf.cached  # expect: mypy[attr-defined]
    shelf.pick(1.5)  # expect: mypy[call-overload]
    shelf.__len__  # expect: mypy[attr-defined]
    del count
