"""What the call path reads of a proxy: the stub of its object.

:class:`aptio.Proxy` (in :mod:`aptio._proxy.proxy`, plain Python: it and the proxy classes made
from it are built at run time) derives from :class:`ProxyCore`. Where the call path is compiled,
this class is too, so a proxy method (:mod:`aptio._proxy.method_sender`) reads the stub as a
field of the proxy's memory. Through ``Proxy`` it would be an attribute lookup by name, and
since ``Proxy`` has ``__getattr__``, CPython 3.11 takes its slowest path for that lookup
(about 290 instructions per call).
"""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from .stub import Stub

__all__ = ["ProxyCore"]


# Python classes (Proxy and the proxy classes) derive from it: mypyc allows that only where
# the class says so.
@mypyc_attr(allow_interpreted_subclasses=True)
class ProxyCore:
    """A handle to one object's stub (see the module docstring)."""

    __slots__ = ("_aptio_stub",)

    def __init__(self, stub: Stub) -> None:
        self._aptio_stub = stub
