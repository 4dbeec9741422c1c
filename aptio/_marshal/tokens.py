"""One-shot marshaling (COM: CoMarshalInterThreadInterfaceInStream and
CoGetInterfaceAndReleaseStream): ``marshal(x) -> MarshalToken``, ``unmarshal(token) -> Proxy``.
The token keeps the object alive until it is unmarshaled or released (CoReleaseMarshalData)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, final, overload

import attrs

from .._proxy.declared import ProxiedAs
from .._proxy.proxy import Proxy, proxy_class
from .._proxy.stub import Stub
from .._values.errors import MarshalError
from .shared import new_id, stub_to_share, table_lock, tokens

__all__ = ["MarshalToken", "marshal", "release_marshal_data", "unmarshal"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
PX = TypeVar("PX", bound=Proxy[Any])


@final
@attrs.frozen
class MarshalToken(Generic[T_co]):
    """A one-shot handle to an object, for handing it to another apartment by hand
    (COM: the stream of CoMarshalInterThreadInterfaceInStream). Pass it to ``unmarshal``
    exactly once, or to ``release_marshal_data`` if it will never be unmarshaled.

    ``MarshalToken[Counter]`` unmarshals to a ``Proxy[Counter]`` (to the Counter's declared
    proxy if it has one), so the type survives the hand-over."""

    token_id: int
    #: The class of the marshaled object, for messages.
    class_name: str


@overload
def marshal(value: Proxy[T]) -> MarshalToken[T]: ...
@overload
def marshal(value: T) -> MarshalToken[T]: ...


def marshal(value: object) -> MarshalToken[Any]:
    """Marshal a proxy or a coclass instance into a one-shot token (COM:
    CoMarshalInterThreadInterfaceInStream). The token keeps the object alive until
    ``unmarshal`` or ``release_marshal_data`` consumes it."""
    stub = stub_to_share(value, "marshal")
    token_id = new_id()
    with table_lock:
        tokens[token_id] = stub
    return MarshalToken(token_id, stub.cls.__qualname__)


@overload
def unmarshal(token: MarshalToken[ProxiedAs[PX]]) -> PX: ...
@overload
def unmarshal(token: MarshalToken[T]) -> Proxy[T]: ...


def unmarshal(token: MarshalToken[Any]) -> Proxy[Any]:
    """The proxy a token stands for (COM: CoGetInterfaceAndReleaseStream). One-shot: a second
    unmarshal of the same token raises MarshalError."""
    stub = _take_token(token, "unmarshal")
    return proxy_class(stub.cls)(stub)


def release_marshal_data(token: MarshalToken[Any]) -> None:
    """Give up a token that will never be unmarshaled, releasing its object
    (COM: CoReleaseMarshalData)."""
    _take_token(token, "release_marshal_data")


def _take_token(token: MarshalToken[Any], what: str) -> Stub:
    if not isinstance(token, MarshalToken):
        raise TypeError(f"aptio.{what}() takes an aptio.MarshalToken, not "
                        f"{type(token).__qualname__}")
    with table_lock:
        stub = tokens.pop(token.token_id, None)
    if stub is None:
        raise MarshalError(
            f"marshal token {token.token_id} ({token.class_name}) was already unmarshaled or "
            "released, or does not come from this runtime; marshal the object again for each "
            "transfer, or use a GlobalInterfaceTable for many"
        )
    return stub
