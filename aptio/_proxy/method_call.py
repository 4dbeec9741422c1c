"""A proxy method call, from the proxy's arguments to the :class:`aptio.Call` it returns.

The generated proxy classes (:mod:`aptio._proxy.proxy`, plain Python: classes made at run time)
give each method one small Python function that checks the stub is connected and hands its
arguments here; the rest runs compiled with the call path: the method bound to the object once
per stub, the arguments marshaled (coclass instances become proxies) unless the object is
agile, and the call sent (:func:`aptio._proxy.send.send`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._call.call import Call
from .._values.enums import Reentrancy
from .marshaling import marshal_args, marshal_kwargs
from .send import send
from .stub import Stub

__all__ = ["call_method"]


def call_method(stub: Stub, name: str, bind: Callable[[Any, type], Any], is_async: bool,
                gated: bool, policy: Reentrancy, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Call[Any]:
    """Send ``name(*args, **kwargs)`` to the object behind ``stub`` (connected: the caller
    checked). ``gated`` is False for a method that never waits at the reentrancy gate."""
    fn = stub.bound.get(name)
    if fn is None:
        fn = stub.bind(name, bind)
    apartment = stub.apartment
    if (args or kwargs) and not stub.agile:
        if args:
            args = marshal_args(args, apartment)
        if kwargs:
            kwargs = marshal_kwargs(kwargs, apartment)
    return send(apartment, stub, name, fn, is_async, args, kwargs,
                stub.gate if gated else None, policy)
