"""``aptio.CallIterator``: iterating a generator that lives in another apartment.

A generator method called through a proxy (``proxy.rows(...)``), or any generator that crosses
an apartment boundary as an argument or a result, reaches the caller as a CallIterator: the
generator stays in its home apartment, held by an enumerator (:mod:`aptio._proxy.enumerator`),
and each step of ``async for`` (or of a blocking ``for`` on a plain thread) is a call there,
with a call's ordering, cancellation, exceptions and shutdown errors.

Batching: a step fetches up to ``batch`` items at once. By default a sync generator's batch
grows 1, 2, 4, ... up to 64 while the caller keeps iterating (its body may run up to that far
ahead of the caller; a sync generator yields at once, so this costs no latency); an async
generator's batch is 1 (each item is delivered as soon as it is made). ``prefetch(n)`` fixes it.

Invariants: items reach the caller in the generator's order, each once; an error raised by the
generator arrives after the items made before it; once an error (cancellation included) has
escaped a step, the iterator is finished and the generator is closed in its home apartment.
"""

from __future__ import annotations

import collections
import threading
import types
from collections.abc import AsyncGenerator, Generator
from typing import Any, Final, Generic, TypeVar

from .._call.call import Call
from .._call.contract import ApartmentContract
from .._threads.role import thread_role
from .._values.errors import AptioError, WrongApartmentError
from .enumerator import AsyncEnumerator, SyncEnumerator
from .send import send
from .stub import Stub, stub_for

__all__ = ["MAX_BATCH", "CallIterator", "is_generator"]

T = TypeVar("T")

#: The largest batch a sync generator's steps grow to by default.
MAX_BATCH: Final = 64


def is_generator(value: object) -> bool:
    """True for generators and async generators: they cross apartments as CallIterators."""
    return isinstance(value, (types.GeneratorType, types.AsyncGeneratorType))


class CallIterator(Generic[T]):
    """Iterates a generator that runs in another apartment: ``async for item in it`` (any
    loop), or ``for item in it`` on a plain thread. Not awaitable. Close it early with
    ``await it.aclose()`` (or ``async with it:``); dropping it closes the generator at home too.
    """

    __slots__ = (
        "__weakref__",
        "_batch",
        "_buffer",
        "_finished",
        "_fixed",
        "_opening",
        "_stub",
    )

    def __init__(self, stub: Stub | None, opening: Call[Any] | None, asynchronous: bool) -> None:
        #: The enumerator's stub, once known.
        self._stub = stub
        #: The call that makes the generator (a generator method), until it is done.
        self._opening = opening
        self._buffer: collections.deque[T] = collections.deque()
        self._finished = False
        self._batch = 1
        self._fixed = asynchronous  # an async generator's batch stays at 1 unless prefetch()

    @classmethod
    def over(cls, generator: Generator[Any, Any, Any] | AsyncGenerator[Any, Any],
             home: ApartmentContract) -> CallIterator[Any]:
        """A CallIterator over ``generator``, which stays in ``home``."""
        if isinstance(generator, types.AsyncGeneratorType):
            return cls(stub_for(AsyncEnumerator(generator), home), None, True)
        return cls(stub_for(SyncEnumerator(generator), home), None, False)  # type: ignore[arg-type]

    @classmethod
    def opening(cls, call: Call[Any], asynchronous: bool) -> CallIterator[Any]:
        """The CallIterator of a generator method: ``call`` makes the generator."""
        return cls(None, call, asynchronous)

    def __del__(self) -> None:
        opening = self._opening
        if opening is not None:  # never iterated: the generator need not be made
            opening._abandon()

    def prefetch(self, batch: int) -> CallIterator[T]:
        """Fetch ``batch`` items per step from here on (1: in lockstep with the caller)."""
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"prefetch() takes a positive int, not {batch!r}")
        self._batch = batch
        self._fixed = True
        return self

    def __repr__(self) -> str:
        stub = self._stub
        where = f" in {stub.apartment.name!r}" if stub is not None else ""
        state = " finished" if self._finished else ""
        return f"<aptio.CallIterator{where}{state}>"

    # -- async iteration -------------------------------------------------------------------

    def __aiter__(self) -> CallIterator[T]:
        return self

    async def __anext__(self) -> T:
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        if self._finished:
            raise StopAsyncIteration
        try:
            stub = self._stub
            if stub is None:
                stub = self._adopt(await self._opening_call())
            items, done = await self._fetch(stub)
        except BaseException:
            self._finish()
            raise
        return self._take(items, done, StopAsyncIteration)

    async def aclose(self) -> None:
        """Close the generator in its home apartment (its ``finally`` runs there)."""
        if self._finished and self._stub is None:
            return
        self._finished = True
        self._buffer.clear()
        opening = self._opening
        if opening is not None and self._stub is None:
            opening.cancel()  # never started iterating: the generator need not exist
            if not opening.cancelled() and opening._error is None:
                self._adopt(await opening)  # made already: close it (an error stays unread)
        stub, self._stub = self._stub, None
        if stub is not None:
            await self._call(stub, "close")

    async def __aenter__(self) -> CallIterator[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- blocking iteration (plain threads and MTA threads) ---------------------------------

    def __iter__(self) -> CallIterator[T]:
        return self

    def __next__(self) -> T:
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        if self._finished:
            raise StopIteration
        if thread_role.blocking_thread is None and not self._lives_here():  # an STA thread
            raise WrongApartmentError(
                "a blocking `for` over a generator of another apartment would block this STA "
                f"thread ({threading.current_thread().name!r}) and every object in it; use "
                "`async for` in an STA"
            )
        try:
            stub = self._stub
            if stub is None:
                opening = self._opening
                assert opening is not None
                stub = self._adopt(opening.result())
            items, done = self._call(stub, "next_batch", self._batch).result()
        except BaseException:
            self._finish()
            raise
        return self._take(items, done, StopIteration)

    def close(self) -> None:
        """Blocking :meth:`aclose` for plain threads."""
        if self._finished and self._stub is None:
            return
        self._finished = True
        self._buffer.clear()
        opening = self._opening
        if opening is not None and self._stub is None:
            opening.cancel()
            if not opening.cancelled() and opening._error is None:
                self._adopt(opening.result())
        stub, self._stub = self._stub, None
        if stub is not None:
            self._call(stub, "close").result()

    def __enter__(self) -> CallIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _lives_here(self) -> bool:
        """True if the generator lives in the calling code's apartment (its steps run inline)."""
        stub = self._stub
        if stub is not None:
            return stub.apartment._is_current()
        opening = self._opening
        return opening is not None and opening._apartment._is_current()

    async def _opening_call(self) -> Any:
        opening = self._opening
        assert opening is not None
        return await opening

    def _adopt(self, source: Any) -> Stub:
        """Take over the generator the opening call made (marshaled at home, it arrives as a
        CallIterator of its own, which hands its enumerator over)."""
        self._opening = None
        if not isinstance(source, CallIterator) or source._stub is None:
            raise AptioError(
                f"a generator method's call produced {type(source).__qualname__}, not a "
                "generator; iterate only generator methods through a proxy"
            )
        stub, source._stub = source._stub, None  # it no longer closes the generator
        source._finished = True
        self._stub = stub
        return stub

    def _fetch(self, stub: Stub) -> Call[tuple[list[T], bool]]:
        return self._call(stub, "next_batch", self._batch)

    def _take(self, items: list[T], done: bool,
              stop: type[StopIteration] | type[StopAsyncIteration]) -> T:
        if not self._fixed and self._batch < MAX_BATCH:
            self._batch *= 2  # the caller keeps iterating: fetch more per step
        if done:
            self._finished = True
            self._stub = None  # exhausted: nothing is left to close
        buffer = self._buffer
        buffer.extend(items)
        if buffer:
            return buffer.popleft()
        raise stop

    def _finish(self) -> None:
        """An error escaped a step: the iterator is done; dropping the stub closes the
        generator in its home apartment."""
        self._finished = True
        self._stub = None
        self._opening = None

    @staticmethod
    def _call(stub: Stub, method: str, *args: Any) -> Call[Any]:
        bind, is_async, policy, _ = stub.table.lookup(method)
        fn = stub.bound.get(method)
        if fn is None:
            fn = stub.bind(method, bind)
        return send(stub.apartment, stub, method, fn, is_async, args, {}, None, policy)
