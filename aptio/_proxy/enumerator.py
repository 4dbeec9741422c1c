"""Enumerators (COM: IEnumXXX): a generator that crosses an apartment boundary stays home,
held by an enumerator object that lives in the apartment the generator was made in; callers
elsewhere advance it with calls, a batch of items at a time (:mod:`aptio._proxy.call_iterator`).

The generator's body, and its ``finally``, run only in its home apartment: advanced by calls
there, closed by a call there (``aclose()``), or dropped there when the last proxy to its
enumerator goes (a sync generator closes when dropped; an async generator is finalized by its
home loop's asyncgen hooks).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any

__all__ = ["AsyncEnumerator", "SyncEnumerator"]

#: ``next_batch``'s answer: the items, and True once the generator is exhausted.
Batch = tuple[list[Any], bool]


class SyncEnumerator:
    """Holds a sync generator in its home apartment."""

    __slots__ = ("_error", "_generator")

    def __init__(self, generator: Generator[Any, Any, Any]) -> None:
        self._generator = generator
        #: An error raised after some items of a batch: reported by the next request, so the
        #: caller sees the items first, in order.
        self._error: BaseException | None = None

    def next_batch(self, size: int) -> Batch:
        """Up to ``size`` items, and whether the generator is exhausted."""
        error = self._error
        if error is not None:
            self._error = None
            raise error
        items: list[Any] = []
        generator = self._generator
        try:
            for _ in range(size):
                items.append(next(generator))
        except StopIteration:
            return items, True
        except BaseException as raised:
            if not items:
                raise
            self._error = raised
        return items, False

    def close(self) -> None:
        """Close the generator here: its ``finally`` runs in this apartment."""
        self._error = None
        self._generator.close()


class AsyncEnumerator:
    """Holds an async generator in its home apartment."""

    __slots__ = ("_error", "_generator")

    def __init__(self, generator: AsyncGenerator[Any, Any]) -> None:
        self._generator = generator
        self._error: BaseException | None = None

    async def next_batch(self, size: int) -> Batch:
        """Up to ``size`` items, and whether the generator is exhausted."""
        error = self._error
        if error is not None:
            self._error = None
            raise error
        items: list[Any] = []
        generator = self._generator
        try:
            for _ in range(size):
                items.append(await generator.__anext__())
        except StopAsyncIteration:
            return items, True
        except BaseException as raised:
            if not items:
                raise
            self._error = raised
        return items, False

    async def close(self) -> None:
        """Close the generator here: its ``finally`` runs in this apartment."""
        self._error = None
        await self._generator.aclose()
