"""The global interface table (COM: IGlobalInterfaceTable): register an object once, ``get`` a
proxy to it from any apartment any number of times, ``revoke`` it."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, final, overload

from .._proxy.declared import ProxiedAs
from .._proxy.proxy import Proxy, proxy_class
from .._values.errors import MarshalError
from .shared import git_entries, new_id, stub_to_share, table_lock

__all__ = ["Cookie", "GlobalInterfaceTable"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
PX = TypeVar("PX", bound=Proxy[Any])


@final
class Cookie(int, Generic[T_co]):
    """A global interface table cookie: an ``int`` that also tells type checkers what it
    stands for, so ``get`` of a ``Cookie[Counter]`` is a ``Proxy[Counter]`` (the Counter's
    declared proxy if it has one). Any int with the same value is the same cookie."""

    __slots__ = ()


@final
class GlobalInterfaceTable:
    """The process's global interface table (COM: IGlobalInterfaceTable): register an object
    once, ``get`` a proxy to it from any apartment any number of times, ``revoke`` it.

    Every instance is a view of the one table of the process. A registered object stays alive
    until its cookie is revoked (or the runtime shuts down).
    """

    __slots__ = ()

    @overload
    def register(self, value: Proxy[T]) -> Cookie[T]: ...
    @overload
    def register(self, value: T) -> Cookie[T]: ...

    def register(self, value: object) -> Cookie[Any]:
        """Register a proxy or a coclass instance; returns its cookie."""
        stub = stub_to_share(value, "GlobalInterfaceTable.register")
        cookie: Cookie[Any] = Cookie(new_id())
        with table_lock:
            git_entries[cookie] = stub
        return cookie

    @overload
    def get(self, cookie: Cookie[ProxiedAs[PX]]) -> PX: ...
    @overload
    def get(self, cookie: Cookie[T]) -> Proxy[T]: ...

    def get(self, cookie: int) -> Proxy[Any]:
        """A proxy to the registered object, usable in the calling apartment."""
        with table_lock:
            stub = git_entries.get(cookie)
        if stub is None:
            raise MarshalError(_cookie_message(cookie, "get"))
        return proxy_class(stub.cls)(stub)

    def revoke(self, cookie: int) -> None:
        """Remove the entry, releasing its hold on the object. Any apartment may revoke."""
        with table_lock:
            stub = git_entries.pop(cookie, None)
        if stub is None:
            raise MarshalError(_cookie_message(cookie, "revoke"))

    def __len__(self) -> int:
        return len(git_entries)

    def __repr__(self) -> str:
        return f"<aptio.GlobalInterfaceTable with {len(git_entries)} entries>"


def _cookie_message(cookie: object, what: str) -> str:
    return (f"GlobalInterfaceTable.{what}({cookie!r}): no such cookie; it was revoked, or never "
            "returned by register() in this runtime")
