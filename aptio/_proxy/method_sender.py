"""A proxy method's body: from the proxy's stub to :func:`send`, in one frame.

:func:`make_method` makes the function a proxy class has for one method of one proxied
class, with what all its calls share (the method's name, how it binds to the object, whether
it is a coroutine function, its reentrancy policy, whether calls pass the object's gate)
captured once. The generated proxy classes (:mod:`aptio._proxy.proxy`, plain Python, since it
makes classes at run time) hold these functions as their methods.

One source, both builds: where the call path is compiled, this module is too, and the
function made here is machine code that Python binds to the proxy as it binds a Python
function (mypyc gives a nested function ``__get__``); a call then runs no Python frame until
the method itself runs at home. In the pure build it is a Python function, the one frame
before the apartment. Either way an error raised while sending (a disconnected object, a
closed apartment, arguments that cannot cross) shows this function as ``method`` in
``method_sender.py``: both builds show the same frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._call.call import Call
from .._values.enums import Reentrancy
from .marshaling import marshal_args, marshal_kwargs
from .proxy_core import ProxyCore
from .send import send
from .stub import Stub

__all__ = ["make_method"]


def make_method(name: str, bind: Callable[[Any, type], Any], is_async: bool,
                policy: Reentrancy, gated: bool) -> Callable[..., Call[Any]]:
    """The sending function of method ``name``: ``method(proxy, *args, **kwargs)`` sends the
    call to the proxy's object and returns its :class:`~aptio.Call` (an INTERLEAVE method,
    ``gated`` false, never waits at the object's gate)."""

    # The proxy (a ProxyCore: compiled, its stub is read as a field, see proxy_core) comes
    # first, positional-only, so that a method may have an argument named ``proxy``. mypyc
    # keeps positional-only parameters in its keyword table, hence a name no method takes.
    def method(_aptio_proxy: ProxyCore, /, *args: Any, **kwargs: Any) -> Call[Any]:
        stub: Stub = _aptio_proxy._aptio_stub
        if stub.disconnected:
            raise stub.disconnected_error(name)
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

    return method
