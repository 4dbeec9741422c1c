"""``aptio.callback(fn)``: a callable bound to the apartment that made it (how a GUI hands
progress callbacks to workers): calling it from anywhere runs ``fn`` there, as a call."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar, final, overload

from .._call.call import Call
from .._call.context import current_site
from .._call.contract import ApartmentContract
from .._proxy.proxy import Proxy, proxy_class, record_home
from .._proxy.stub import stub_for
from .._values.declarations import coclass
from .._values.enums import ThreadingModel
from .._values.errors import NotInitializedError

__all__ = ["Callback", "callback"]

P = ParamSpec("P")
R = TypeVar("R")


@coclass(ThreadingModel.BOTH)
class _SyncTarget:
    """Holds a sync callable in the apartment that made the callback."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@coclass(ThreadingModel.BOTH)
class _AsyncTarget:
    """Holds a coroutine function in the apartment that made the callback."""

    def __init__(self, fn: Callable[..., Awaitable[Any]]) -> None:
        self.fn = fn

    async def invoke(self, *args: Any, **kwargs: Any) -> Any:
        return await self.fn(*args, **kwargs)


@final
class Callback(Generic[P, R]):
    """A callable bound to the apartment that made it: calling it from any apartment or thread
    runs the function there and returns an awaitable :class:`aptio.Call`.

    ``Callback[P, R]`` takes the function's parameters P and its call gives the function's
    result R (a coroutine function's result unwrapped)."""

    __slots__ = ("__weakref__", "_proxy")

    def __init__(self, proxy: Proxy[Any]) -> None:
        self._proxy = proxy

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Call[R]:
        call: Call[R] = self._proxy.invoke(*args, **kwargs)
        return call

    @property
    def apartment(self) -> ApartmentContract:
        """The apartment the function runs in (an :class:`aptio.Apartment`)."""
        return self._proxy._aptio_stub.apartment

    def __repr__(self) -> str:
        stub = self._proxy._aptio_stub
        target = stub.obj
        fn = getattr(target, "fn", None)
        name = getattr(fn, "__qualname__", repr(fn))
        return f"<aptio.Callback {name} in {stub.apartment.name!r}>"


@overload
def callback(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callback[P, R]: ...
@overload
def callback(fn: Callable[P, R]) -> Callback[P, R]: ...


def callback(fn: Callable[..., Any]) -> Callback[..., Any]:
    """Bind ``fn`` to the current apartment: the returned callable runs it there, from
    anywhere, and returns a Call (a GUI passes these to workers for progress reports)."""
    if not callable(fn):
        raise TypeError(f"aptio.callback() takes a callable, not {type(fn).__qualname__}")
    home = current_site()
    if home is None:
        raise NotInitializedError(
            "aptio.callback() outside any apartment: call it from the apartment the function "
            "should run in (start one with aptio.run(main) or `async with aptio.main_sta():`)"
        )
    target: object = (_AsyncTarget(fn) if inspect.iscoroutinefunction(fn)
                      else _SyncTarget(fn))
    record_home(target, home)
    return Callback(proxy_class(type(target))(stub_for(target, home)))
