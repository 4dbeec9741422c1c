"""A proxy method call's body, compiled: from the proxy's stub to :func:`send`.

Where the call path runs compiled, each proxy method is a thin Python function that hands its
stub and arguments to the :class:`MethodSender` of its class and name; everything after that
(the connected check, binding the method, marshaling the arguments, sending) is machine code.
The pure-Python build keeps the whole body in the proxy method itself
(:mod:`aptio._proxy.proxy`): there a second Python frame would cost more than this saves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._call.call import Call
from .._values.enums import Reentrancy
from .marshaling import marshal_args, marshal_kwargs
from .send import send
from .stub import Stub

__all__ = ["MethodSender"]


class MethodSender:
    """What the calls of one method of one proxied class share: its name, how it binds to
    the object, whether it is a coroutine function, its reentrancy policy and whether calls
    pass the object's gate (an INTERLEAVE method never waits there)."""

    __slots__ = ("bind", "gated", "is_async", "name", "policy")

    def __init__(self, name: str, bind: Callable[[Any, type], Any], is_async: bool,
                 policy: Reentrancy, gated: bool) -> None:
        self.name = name
        self.bind = bind
        self.is_async = is_async
        self.policy = policy
        self.gated = gated

    def send(self, stub: Stub, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call[Any]:
        """Send the call of this method with ``args`` and ``kwargs`` to ``stub``'s object."""
        name = self.name
        if stub.disconnected:
            raise stub.disconnected_error(name)
        fn = stub.bound.get(name)
        if fn is None:
            fn = stub.bind(name, self.bind)
        apartment = stub.apartment
        if (args or kwargs) and not stub.agile:
            if args:
                args = marshal_args(args, apartment)
            if kwargs:
                kwargs = marshal_kwargs(kwargs, apartment)
        return send(apartment, stub, name, fn, self.is_async, args, kwargs,
                    stub.gate if self.gated else None, self.policy)
