"""Explicit marshaling: one-shot tokens, the global interface table, callbacks, disconnect.

COM marshals interface pointers automatically for proxy-call parameters and results (aptio does
the same, see ``_proxy.marshal_value``). Everything handed over some other way -- a global, a
thread argument, a queue -- must be marshaled by hand (COM_SPEC M1-M3, L3):

* ``marshal(x) -> MarshalToken`` / ``unmarshal(token) -> Proxy``: a one-shot transfer; the token
  keeps the object alive until it is unmarshaled or released (CoReleaseMarshalData).
* ``GlobalInterfaceTable``: register once, ``get`` any number of times from anywhere, revoke.
* ``callback(fn)``: a callable bound to the current apartment (how a GUI hands progress
  callbacks to workers).
* ``disconnect(x)``: every later call through any proxy to the object fails.

Invariant: both tables hold stubs strongly, so an entry keeps its object alive exactly until it
is consumed or removed. Both are cleared (objects released) when the runtime shuts down, since
their apartments are gone.
"""

from __future__ import annotations

import inspect
import itertools
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, final

import attrs

from ._call import Call
from ._exceptions import AptioError, NotInitializedError
from ._models import ThreadingModel, coclass, is_coclass_instance
from ._proxy import (
    HOME_ATTRIBUTE,
    Proxy,
    Stub,
    existing_stub,
    proxy_class,
    record_home,
    stub_for,
)
from ._state import current_apartment

__all__ = ["MarshalError", "MarshalToken", "GlobalInterfaceTable", "Callback", "marshal",
           "unmarshal", "release_marshal_data", "callback", "disconnect", "clear_tables"]

T = TypeVar("T")


class MarshalError(AptioError):
    """Raised when a marshal token or a global-interface-table cookie cannot be used: it was
    unmarshaled or released already, revoked, or never issued by this process."""


@final
@attrs.frozen
class MarshalToken:
    """A one-shot handle to an object, for handing it to another apartment by hand
    (COM: the stream of CoMarshalInterThreadInterfaceInStream). Pass it to ``unmarshal``
    exactly once, or to ``release_marshal_data`` if it will never be unmarshaled."""

    token_id: int
    #: The class of the marshaled object, for messages.
    class_name: str


_ids = itertools.count(1)
_lock = threading.Lock()
_tokens: dict[int, Stub] = {}
_git: dict[int, Stub] = {}


def _stub_to_share(value: object, what: str) -> Stub:
    """The stub behind a proxy, or made for a raw coclass instance in its home apartment."""
    if isinstance(value, Proxy):
        return value._aptio_stub
    if is_coclass_instance(value):
        home = getattr(value, HOME_ATTRIBUTE, None) or current_apartment()
        if home is None:
            raise NotInitializedError(
                f"aptio.{what}() of a {type(value).__qualname__} outside any apartment; start "
                "a runtime with aptio.run(main) or `async with aptio.main_sta():`"
            )
        return stub_for(value, home)
    raise TypeError(
        f"aptio.{what}() takes a proxy or an instance of an @aptio.coclass class, not "
        f"{type(value).__qualname__}: other values need no marshaling, pass them as they are"
    )


def marshal(value: object) -> MarshalToken:
    """Marshal a proxy or a coclass instance into a one-shot token (COM:
    CoMarshalInterThreadInterfaceInStream). The token keeps the object alive until
    ``unmarshal`` or ``release_marshal_data`` consumes it."""
    stub = _stub_to_share(value, "marshal")
    token_id = next(_ids)
    with _lock:
        _tokens[token_id] = stub
    return MarshalToken(token_id, stub.cls.__qualname__)


def unmarshal(token: MarshalToken) -> Proxy[Any]:
    """The proxy a token stands for (COM: CoGetInterfaceAndReleaseStream). One-shot: a second
    unmarshal of the same token raises MarshalError."""
    stub = _take_token(token, "unmarshal")
    return proxy_class(stub.cls)(stub)


def release_marshal_data(token: MarshalToken) -> None:
    """Give up a token that will never be unmarshaled, releasing its object
    (COM: CoReleaseMarshalData)."""
    _take_token(token, "release_marshal_data")


def _take_token(token: MarshalToken, what: str) -> Stub:
    if not isinstance(token, MarshalToken):
        raise TypeError(f"aptio.{what}() takes an aptio.MarshalToken, not "
                        f"{type(token).__qualname__}")
    with _lock:
        stub = _tokens.pop(token.token_id, None)
    if stub is None:
        raise MarshalError(
            f"marshal token {token.token_id} ({token.class_name}) was already unmarshaled or "
            "released, or does not come from this runtime; marshal the object again for each "
            "transfer, or use a GlobalInterfaceTable for many"
        )
    return stub


@final
class GlobalInterfaceTable:
    """The process's global interface table (COM: IGlobalInterfaceTable): register an object
    once, ``get`` a proxy to it from any apartment any number of times, ``revoke`` it.

    Every instance is a view of the one table of the process. A registered object stays alive
    until its cookie is revoked (or the runtime shuts down).
    """

    __slots__ = ()

    def register(self, value: object) -> int:
        """Register a proxy or a coclass instance; returns its cookie."""
        stub = _stub_to_share(value, "GlobalInterfaceTable.register")
        cookie = next(_ids)
        with _lock:
            _git[cookie] = stub
        return cookie

    def get(self, cookie: int) -> Proxy[Any]:
        """A proxy to the registered object, usable in the calling apartment."""
        with _lock:
            stub = _git.get(cookie)
        if stub is None:
            raise MarshalError(_cookie_message(cookie, "get"))
        return proxy_class(stub.cls)(stub)

    def revoke(self, cookie: int) -> None:
        """Remove the entry, releasing its hold on the object. Any apartment may revoke."""
        with _lock:
            stub = _git.pop(cookie, None)
        if stub is None:
            raise MarshalError(_cookie_message(cookie, "revoke"))

    def __len__(self) -> int:
        return len(_git)

    def __repr__(self) -> str:
        return f"<aptio.GlobalInterfaceTable with {len(_git)} entries>"


def _cookie_message(cookie: object, what: str) -> str:
    return (f"GlobalInterfaceTable.{what}({cookie!r}): no such cookie; it was revoked, or never "
            "returned by register() in this runtime")


def clear_tables() -> None:
    """Drop every token and table entry (the runtime shut down: their apartments are gone)."""
    with _lock:
        _tokens.clear()
        _git.clear()


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
class Callback(Generic[T]):
    """A callable bound to the apartment that made it: calling it from any apartment or thread
    runs the function there and returns an awaitable :class:`aptio.Call`."""

    __slots__ = ("__weakref__", "_proxy")

    def __init__(self, proxy: Proxy[Any]) -> None:
        self._proxy = proxy

    def __call__(self, *args: Any, **kwargs: Any) -> Call[T]:
        call: Call[T] = self._proxy.invoke(*args, **kwargs)
        return call

    @property
    def apartment(self) -> Any:
        """The apartment the function runs in."""
        return self._proxy._aptio_stub.apartment

    def __repr__(self) -> str:
        stub = self._proxy._aptio_stub
        target = stub.obj
        fn = getattr(target, "fn", None)
        name = getattr(fn, "__qualname__", repr(fn))
        return f"<aptio.Callback {name} in {stub.apartment.name!r}>"


def callback(fn: Callable[..., T] | Callable[..., Awaitable[T]]) -> Callback[T]:
    """Bind ``fn`` to the current apartment: the returned callable runs it there, from
    anywhere, and returns a Call (a GUI passes these to workers for progress reports)."""
    if not callable(fn):
        raise TypeError(f"aptio.callback() takes a callable, not {type(fn).__qualname__}")
    home = current_apartment()
    if home is None:
        raise NotInitializedError(
            "aptio.callback() outside any apartment: call it from the apartment the function "
            "should run in (start one with aptio.run(main) or `async with aptio.main_sta():`)"
        )
    target: object = (_AsyncTarget(fn) if inspect.iscoroutinefunction(fn)
                      else _SyncTarget(fn))
    record_home(target, home)
    return Callback(proxy_class(type(target))(stub_for(target, home)))


def disconnect(value: object) -> None:
    """Disconnect an object from all its proxies (COM: CoDisconnectObject): calls already sent
    finish; every later call through any proxy raises DisconnectedError; the apartment drops
    its reference. Disconnecting twice is harmless."""
    if isinstance(value, Proxy):
        stub: Stub | None = value._aptio_stub
    elif is_coclass_instance(value):
        stub = existing_stub(value)
    else:
        raise TypeError(
            f"aptio.disconnect() takes a proxy or a coclass instance, not "
            f"{type(value).__qualname__}"
        )
    if stub is None or stub.disconnected:
        return
    # Tokens and table entries stay: what they yield is a proxy whose calls fail, as COM's
    # RPC_E_DISCONNECTED. They no longer keep the object alive.
    stub.disconnected = True
    if stub.obj is not None:
        stub.apartment._release(stub)
