"""``async with`` and ``with`` for the lock-like primitives, written once.

``async with x:`` awaits ``x.acquire()`` and ``with x:`` calls ``x.acquire_blocking()`` (which
raises WrongApartmentError on an STA thread); both call ``x.release()`` on the way out, whatever
the block raised.  Entering gives None, as asyncio's primitives do.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

__all__ = ["AsyncContextMixin", "BlockingContextMixin"]


class _Releasable(Protocol):
    def release(self) -> None: ...


class _AsyncAcquirable(_Releasable, Protocol):
    async def acquire(self, timeout: float | None = None) -> bool: ...


class _BlockingAcquirable(_Releasable, Protocol):
    def acquire_blocking(self, timeout: float | None = None) -> bool: ...


class AsyncContextMixin:
    """``async with x:`` over ``await x.acquire()`` and ``x.release()``."""

    __slots__ = ()

    async def __aenter__(self: _AsyncAcquirable) -> None:
        await self.acquire()

    async def __aexit__(
        self: _Releasable,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class BlockingContextMixin:
    """``with x:`` over ``x.acquire_blocking()`` and ``x.release()``."""

    __slots__ = ()

    def __enter__(self: _BlockingAcquirable) -> None:
        self.acquire_blocking()

    def __exit__(
        self: _Releasable,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
