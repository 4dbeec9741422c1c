"""``Apartment``: what every apartment kind shares (identity, routing, creation, shutdown API).

The kinds live in their own modules: :mod:`aptio._sta` (an event loop on one thread),
:mod:`aptio._mta` (a worker pool), :mod:`aptio._neutral` (the caller's own thread).
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._call import Call
from ._exceptions import DisconnectedError
from ._kinds import ApartmentKind
from ._proxy import HOME_ATTRIBUTE, Proxy, marshal_args, marshal_kwargs, marshal_value, proxy_for
from ._state import current_apartment

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._runtime import Runtime

__all__ = ["Apartment"]

T = TypeVar("T")


class Apartment(abc.ABC):
    """An apartment: the main STA, another STA, the MTA, or the neutral apartment.

    Objects live in exactly one apartment; code elsewhere reaches them through proxies. Use it
    as an async context manager to shut it down on exit.
    """

    __slots__ = ("__weakref__", "_closing", "_kind", "_name", "_running", "_runtime")

    #: True for the neutral apartment: calls always run on the caller's own thread.
    _always_inline = False

    def __init__(self, runtime: Runtime, kind: ApartmentKind, name: str) -> None:
        self._runtime = runtime
        self._kind = kind
        self._name = name
        self._closing = False
        #: Calls that started a Task here and have not finished (kept alive, failed at shutdown).
        self._running: set[Call[Any]] = set()

    # ------------------------------------------------------------------ public API

    @property
    def kind(self) -> ApartmentKind:
        """MAIN_STA, STA, MTA or NEUTRAL."""
        return self._kind

    @property
    def name(self) -> str:
        """A readable name; STA threads are named after it."""
        return self._name

    @property
    def is_closed(self) -> bool:
        """True once shutdown began: new calls into the apartment raise DisconnectedError."""
        return self._closing

    def __repr__(self) -> str:
        state = " closed" if self._closing else ""
        return f"<aptio.Apartment {self._kind.name} {self._name!r}{state}>"

    async def create(self, cls: type[T], *args: Any, **kwargs: Any) -> Proxy[T]:
        """Create ``cls(*args, **kwargs)`` as if from a thread of this apartment: the class's
        threading model and this apartment's kind decide where the object lives."""
        return await self._runtime.create_from(self, cls, args, kwargs)

    @abc.abstractmethod
    async def shutdown(self, timeout: float | None = None) -> None:
        """Shut the apartment down (idempotent).

        New calls fail at once with DisconnectedError; calls queued but not started fail with
        DisconnectedError; calls still running get ``timeout`` seconds (None: no limit) to
        finish, then are cancelled and their callers get DisconnectedError. Threads are joined.
        Called from inside the apartment, it starts the shutdown and returns without waiting.
        """

    async def __aenter__(self) -> Apartment:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # ------------------------------------------------------------------ routing (internal)

    @abc.abstractmethod
    def _is_current(self) -> bool:
        """True if the calling code runs in this apartment (so it may touch its objects)."""

    @abc.abstractmethod
    def _run_here(self, call: Call[Any]) -> None:
        """Start ``call`` inline on the calling thread, which belongs to this apartment."""

    @abc.abstractmethod
    def _post(self, call: Call[Any]) -> None:
        """Queue ``call`` for one of this apartment's threads (called from another thread)."""

    def _invoke(
        self,
        obj: object,
        method: str,
        fn: Callable[..., Any],
        is_async: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        agile: bool,
    ) -> Call[Any]:
        """Send one call: inline when the caller is in this apartment (or the object is
        agile), otherwise through this apartment's queue."""
        if self._closing:
            raise self._disconnected_error(method)
        caller = current_apartment()
        if not agile:
            sender = caller if caller is not None else self
            if args:
                args = marshal_args(args, sender)
            if kwargs:
                kwargs = marshal_kwargs(kwargs, sender)
        call: Call[Any] = Call(self, obj, method, fn, is_async, args, kwargs, caller)
        if agile or self._always_inline or self._is_current():
            self._run_here(call)
        else:
            self._post(call)
        return call

    def _construct(self, cls: type[T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call[Any]:
        """Send the construction of ``cls`` here; the call's result is a proxy to the object."""

        def construct(*args: Any, **kwargs: Any) -> Proxy[T]:
            obj = cls(*args, **kwargs)
            try:
                object.__setattr__(obj, HOME_ATTRIBUTE, self)
            except (AttributeError, TypeError):  # __slots__ without the attribute: home unknown
                pass
            return proxy_for(obj, self)

        return self._invoke(None, "__init__", construct, False, args, kwargs, False)

    def _marshal_result(self, value: Any) -> Any:
        return marshal_value(value, self)

    def _disconnected_error(self, method: str) -> DisconnectedError:
        return DisconnectedError(
            f"{method}(): apartment {self._name!r} is shut down; create the object again in a "
            "running apartment"
        )

    def _release(self, obj: object) -> None:  # noqa: B027 - the default: drop it right here
        """Drop the last proxy-held reference to ``obj`` (an STA does it on its own thread)."""

    def _run_blocking_coroutine(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine method to completion on this thread's private loop (MTA rules)."""
        from ._loops import thread_private_loop

        thread_private_loop(self._runtime.use_uvloop).run_until_complete(coro)
