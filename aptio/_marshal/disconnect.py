"""``aptio.disconnect(x)`` (COM: CoDisconnectObject): cut an object off from all its proxies."""

from __future__ import annotations

from .._proxy.proxy import Proxy
from .._proxy.stub import Stub, existing_stub
from .._values.declarations import is_coclass_instance

__all__ = ["disconnect"]


def disconnect(value: object) -> None:
    """Disconnect an object from all its proxies (COM: CoDisconnectObject): calls already sent
    finish; every later call through any proxy raises DisconnectedError; the apartment drops
    its reference. Disconnecting twice is harmless."""
    stub: Stub | None
    if isinstance(value, Proxy):
        stub = value._aptio_stub
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
