"""Proxies (COM: the proxy manager) and the proxy classes made for each class.

Every proxy holds its object's stub (:mod:`aptio._proxy.stub`). A proxy class is made once per
proxied class (cached on its method table): one sending method per public method
(:mod:`aptio._proxy.method_sender`: compiled, a call runs no Python frame before the apartment;
pure, one), and ``dir(proxy)`` lists the methods. Classes are made here, at run time, which
is why this module stays plain Python.

Marshaling (COM_SPEC M1) is :mod:`aptio._proxy.marshaling`, compiled with the call path; it
makes proxies through :func:`proxy_for`, installed there when this module is imported.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Callable
from typing import Any, Final, Generic, TypeGuard, TypeVar

from .._call.context import current_site
from .._call.contract import ApartmentContract
from .._values.declarations import HOME_ATTRIBUTE
from .._values.enums import Reentrancy
from .._values.errors import (
    DeclarationError,
    DisconnectedError,
    WrongApartmentError,
)
from .call_iterator import CallIterator
from .marshaling import set_proxy_maker
from .method_sender import make_method
from .method_table import (
    DynamicMethodTable,
    GeneratorKind,
    MethodEntry,
    MethodTable,
    all_tables,
    method_table,
)
from .proxy_core import ProxyCore
from .stub import Stub, stub_for

__all__ = ["Proxy", "is_proxy", "proxy_base_of", "proxy_class", "proxy_for", "record_home",
           "sender_for", "set_pickle_hook", "set_proxy_base", "stub_of", "unwrap"]

T = TypeVar("T")

#: How many names a stand-in's proxy class learns (:meth:`Proxy.__getattr__`); past that, names
#: are looked up on every call (code that makes method names up as it goes gains nothing).
_MAX_LEARNED_METHODS: Final = 256

#: A module constant: reading an enum member off its class costs ~100 ns on 3.11.
_INTERLEAVE: Final = Reentrancy.INTERLEAVE

#: How a proxy pickles outside aptio's own codec (which never asks ``__reduce__``):
#: ``hook(stub)`` returns what ``__reduce__`` returns. ``aptio.ray`` sets one, so a proxy
#: travels through Ray; without one, a proxy does not pickle.
_pickle_hook: Callable[[Stub], Any] | None = None


def set_pickle_hook(hook: Callable[[Stub], Any] | None) -> None:
    """Install (or, with None, remove) how proxies pickle outside aptio's codec."""
    global _pickle_hook
    _pickle_hook = hook


class Proxy(ProxyCore, Generic[T]):
    """A handle to an object in some apartment; calling a method returns an awaitable
    :class:`aptio.Call` that runs the method in the object's apartment.

    ``Proxy[Counter]`` stands for a ``Counter``. Proxies work from every apartment and thread;
    pass them around freely. Only methods cross: attribute reads do not.
    """

    __slots__ = ("__weakref__",)  # the stub is ProxyCore's

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        stub = self._aptio_stub
        try:
            sender = sender_for(stub.table, name)
        except AttributeError:
            if name in getattr(stub.obj, "__dict__", ()):  # a plain read: runs no user code
                raise AttributeError(
                    f"{stub.cls.__qualname__}.{name} is an instance attribute, and aptio "
                    "proxies carry method calls only: add a method that returns it (for "
                    f"example `def get_{name}(self): return self.{name}`) and await that"
                ) from None
            raise
        table = stub.table
        made = table.proxy_class
        if (made is type(self) and isinstance(table, DynamicMethodTable)
                and len(table.senders) <= _MAX_LEARNED_METHODS):
            # A stand-in's proxy class (its class is not importable here) has no methods until
            # called: each name called is added to it, so that the next call finds it as an
            # imported class's proxy does, instead of coming here (about 9,000 instructions).
            setattr(made, name, sender)
        return types.MethodType(sender, self)

    def __repr__(self) -> str:
        stub = self._aptio_stub
        state = " disconnected" if stub.disconnected else ""
        return (f"<aptio.Proxy[{stub.cls.__qualname__}] in {stub.apartment.name!r}{state} "
                f"at {id(self):#x}>")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Proxy):
            return self._aptio_stub is other._aptio_stub
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._aptio_stub)

    def __reduce__(self) -> Any:
        hook = _pickle_hook
        if hook is None:
            raise TypeError(
                "an aptio proxy pickles only to travel through Ray (import aptio.ray first); "
                "between apartments of a process, pass the proxy itself or use aptio.marshal()")
        return hook(self._aptio_stub)

    def __copy__(self) -> Proxy[T]:
        return self  # a proxy is a reference: a copy is the same reference

    def __deepcopy__(self, memo: dict[int, Any]) -> Proxy[T]:
        return self


def sender_for(table: MethodTable, name: str) -> Callable[..., Any]:
    """The function that sends ``name`` calls: ``sender(proxy, *args, **kwargs)`` (cached on
    the table; the proxy class's methods are these functions, so every call path shares one)."""
    sender = table.senders.get(name)
    if sender is None:
        sender = _make_sender(name, table.lookup(name),
                              getattr(getattr(table.cls, name, None), "__doc__", None))
        table.senders[name] = sender
    return sender


def _make_sender(name: str, entry: MethodEntry, doc: str | None) -> Callable[..., Any]:
    """The hot path of every proxy method call, with the method's binding, kind and policy
    looked up once per class: :func:`aptio._proxy.method_sender.make_method`, compiled with
    the call path where it is (then a call runs no Python frame before the apartment)."""
    bind, is_async, policy, generator = entry
    if generator is not GeneratorKind.NONE:
        return _make_iterating_sender(name, entry, doc)
    # An INTERLEAVE method never waits at the gate.
    method = make_method(name, bind, is_async, policy, policy is not _INTERLEAVE)
    method.__name__ = name
    method.__qualname__ = f"Proxy.{name}"
    method.__doc__ = doc
    return method


def _make_iterating_sender(name: str, entry: MethodEntry,
                           doc: str | None) -> Callable[..., CallIterator[Any]]:
    """The sender of a generator method: the call makes the generator at home, and the caller
    gets a :class:`CallIterator` over it (iterated, not awaited)."""
    send_call = _make_sender(name, (*entry[:3], GeneratorKind.NONE), doc)
    asynchronous = entry[3] is GeneratorKind.ASYNC

    # The proxy is positional-only: a method may take an argument named ``proxy`` or ``self``.
    def method(proxy: Proxy[Any], /, *args: Any, **kwargs: Any) -> CallIterator[Any]:
        return CallIterator.opening(send_call(proxy, *args, **kwargs), asynchronous)

    method.__name__ = name
    method.__qualname__ = f"Proxy.{name}"
    method.__doc__ = doc
    return method


def proxy_class(cls: type) -> type[Proxy[Any]]:
    """A Proxy subclass with one sending method per public method of ``cls`` (cached), derived
    from the declared proxy class of ``cls`` if it has one (:func:`set_proxy_base`)."""
    table = method_table(cls)
    generated = table.proxy_class
    if generated is not None:
        return generated
    base = _proxy_base(cls)
    # A declared proxy may list private methods too; its descriptors only describe them to
    # type checkers: the senders made here are what calls run.
    declared: frozenset[str] = getattr(base, "_aptio_declared", frozenset())
    namespace: dict[str, Any] = {"__slots__": (), "_aptio_generated": True}
    for name in dir(cls):
        if (name.startswith("_") and name not in declared) or name in _RESERVED:
            continue
        try:
            table.lookup(name)
        except AttributeError:
            continue
        namespace[name] = sender_for(table, name)
    made: type[Proxy[Any]] = type(f"Proxy[{cls.__qualname__}]", (base,), namespace)
    table.proxy_class = made
    return made


#: Classes whose proxies derive from a declared proxy class (set by aptio._proxy.declared), or
#: the name of the one they declare, until it is defined.
_proxy_bases: weakref.WeakKeyDictionary[type, type[Proxy[Any]] | str] = (
    weakref.WeakKeyDictionary())


def set_proxy_base(cls: type, base: type[Proxy[Any]] | str) -> None:
    """Make ``base`` (a declared proxy class) the base of the proxy classes of ``cls`` and its
    subclasses; a name says which class will be (until then, making a proxy of ``cls`` raises
    DeclarationError). Proxy classes made before are made again on next use (proxies that exist
    keep theirs)."""
    _proxy_bases[cls] = base
    for table in all_tables():
        if issubclass(table.cls, cls):
            table.proxy_class = None


def proxy_base_of(cls: type) -> type[Proxy[Any]] | str | None:
    """What :func:`set_proxy_base` recorded for ``cls`` itself (not its bases)."""
    return _proxy_bases.get(cls)


def _proxy_base(cls: type) -> type[Proxy[Any]]:
    for klass in cls.__mro__:
        base = _proxy_bases.get(klass)
        if base is None:
            continue
        if isinstance(base, str):
            raise DeclarationError(
                f"{klass.__qualname__} names {base} as its proxy type (aptio.ProxiedAs), but "
                f"no {base}(aptio.DeclaredProxy[{klass.__qualname__}]) class was defined; "
                f"define it right after {klass.__qualname__}, in the same module"
            )
        return base
    return Proxy


_RESERVED: Final = frozenset(dir(Proxy))


def record_home(obj: object, home: ApartmentContract) -> None:
    """Note on an object made by aptio which apartment it lives in (read by marshaling and by
    debug mode). A class with ``__slots__`` and no room for it keeps its home unrecorded."""
    try:
        object.__setattr__(obj, HOME_ATTRIBUTE, home)
    except (AttributeError, TypeError):
        pass


def proxy_for(obj: object, home: ApartmentContract) -> Proxy[Any]:
    """A proxy to ``obj``, which lives in ``home`` (or in the apartment its creation recorded)."""
    recorded = getattr(obj, HOME_ATTRIBUTE, None)
    stub = stub_for(obj, recorded if recorded is not None else home)
    return proxy_class(stub.cls)(stub)


def is_proxy(value: object) -> TypeGuard[Proxy[Any]]:
    """True if ``value`` is an aptio proxy."""
    return isinstance(value, Proxy)


def stub_of(proxy: object, what: str) -> Stub:
    """The stub behind ``proxy``; TypeError naming ``aptio.<what>()`` for anything else."""
    if not isinstance(proxy, Proxy):
        raise TypeError(f"aptio.{what}() takes an aptio proxy, not {type(proxy).__qualname__}")
    stub: Stub = proxy._aptio_stub
    return stub


def unwrap(proxy: Proxy[T]) -> T:
    """The raw object behind ``proxy``; only inside its home apartment (any apartment for
    agile objects). Elsewhere raises WrongApartmentError: call through the proxy instead."""
    stub = stub_of(proxy, "unwrap")
    obj = stub.obj
    if obj is None or stub.disconnected:
        raise DisconnectedError(f"the {stub.cls.__qualname__} behind this proxy is disconnected")
    if not stub.agile and not stub.apartment._is_current():
        here = current_site()
        raise WrongApartmentError(
            f"unwrap(): this {stub.cls.__qualname__} lives in {stub.apartment.name!r}, not in "
            f"{here.name if here is not None else 'this thread'!r}; call its methods through "
            "the proxy, or unwrap it inside its own apartment"
        )
    value: T = obj  # type: ignore[assignment]
    return value


set_proxy_maker(proxy_for)
