"""Proxies and stubs (COM: proxy manager and stub manager).

A :class:`Stub` stands for one live object in its home apartment; every proxy to the object
holds the stub, and the stub holds the object. So the home apartment keeps an object alive
exactly as long as a proxy (or an in-flight call) exists, and when the last one goes, the final
reference is dropped on the home apartment's own thread (COM marshals Release home too).

Invariant: at most one stub per live object (``_stubs`` is keyed by ``id(obj)``, which is stable
while the stub holds the object), so ``disconnect`` reaches every proxy at once.
"""

from __future__ import annotations

import inspect
import threading
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from ._call import Call
from ._exceptions import DisconnectedError, WrongApartmentError
from ._models import PLAIN_TYPES, SPEC_ATTRIBUTE, ClassSpec, Reentrancy, spec_of
from ._reentrancy import Gate, method_policy

if TYPE_CHECKING:
    from ._apartment import Apartment

__all__ = ["Proxy", "Stub", "proxy_for", "record_home", "is_proxy", "apartment_of", "unwrap",
           "HOME_ATTRIBUTE"]

T = TypeVar("T")

#: Set on each instance created by aptio: the apartment it lives in.
HOME_ATTRIBUTE: Final = "_aptio_home"

#: (binds the method to an instance: ``bind(obj, cls)``, is a coroutine function, the
#: reentrancy policy that applies to it)
_MethodEntry = tuple[Callable[[Any, type], Any], bool, Reentrancy]

#: A module constant: reading an enum member off its class costs ~100 ns on 3.11.
_INTERLEAVE: Final = Reentrancy.INTERLEAVE


class _MethodTable:
    """The callable attributes of one class, looked up once, with their sync/async kind and
    reentrancy policy (the class's, or a ``with_reentrancy`` override)."""

    __slots__ = ("cls", "entries", "gated", "methods", "policy", "proxy_class")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.entries: dict[str, _MethodEntry] = {}
        self.methods: dict[str, Callable[..., Call[Any]]] = {}
        self.proxy_class: type[Proxy[Any]] | None = None
        spec = spec_of(cls)
        self.policy = spec.reentrancy
        overrides = [name for klass in cls.__mro__ for name, value in vars(klass).items()
                     if method_policy(value) is not None]
        if overrides and not spec.declared:
            raise TypeError(
                f"{cls.__qualname__} sets a reentrancy policy on {overrides[0]}() but is not a "
                "coclass: decorate the class with @aptio.coclass"
            )
        #: Objects of this class need a gate (some method is CALL_CHAIN or NONE).
        self.gated = self.policy is not Reentrancy.INTERLEAVE or bool(overrides)

    def lookup(self, name: str) -> _MethodEntry:
        entry = self.entries.get(name)
        if entry is None:
            entry = self._resolve(name)
            self.entries[name] = entry
        return entry

    def method(self, name: str) -> Callable[..., Call[Any]]:
        """The function that sends ``name`` calls: ``method(proxy, *args, **kwargs)``. The
        proxy class's methods are these functions, so every call path shares one."""
        sender = self.methods.get(name)
        if sender is None:
            # Two threads may both make one: they are equivalent, and the last one stays.
            sender = _make_method(name, self.lookup(name),
                                  getattr(getattr(self.cls, name, None), "__doc__", None))
            self.methods[name] = sender
        return sender

    def _resolve(self, name: str) -> _MethodEntry:
        cls = self.cls
        try:
            attribute = inspect.getattr_static(cls, name)
        except AttributeError:
            raise AttributeError(
                f"{cls.__qualname__!r} has no method {name!r} (called through an aptio proxy)"
            ) from None
        bound = getattr(cls, name)
        if not callable(bound) or isinstance(attribute, property):
            raise AttributeError(
                f"{cls.__qualname__}.{name} is not a method: aptio proxies carry method calls "
                f"only; add a method that returns it"
            )
        policy = method_policy(attribute) or self.policy
        # The descriptor's own __get__, fetched once (a plain callable class attribute has none:
        # an instance reads it as it is).
        bind = getattr(attribute, "__get__", None)
        if bind is None:
            def bind(obj: object, cls: type, attribute: Any = attribute) -> Any:
                return attribute
        return bind, inspect.iscoroutinefunction(bound), policy


_tables: weakref.WeakKeyDictionary[type, _MethodTable] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def method_table(cls: type) -> _MethodTable:
    table = _tables.get(cls)
    if table is None:
        with _tables_lock:
            table = _tables.get(cls)
            if table is None:
                table = _MethodTable(cls)
                _tables[cls] = table
    return table


class Stub:
    """One live object and the apartment it lives in; shared by all proxies to the object."""

    __slots__ = ("__weakref__", "agile", "apartment", "bound", "cls", "disconnected", "gate",
                 "neutral_guard", "obj", "table")

    def __init__(self, obj: object, apartment: Apartment) -> None:
        self.obj: object | None = obj
        #: name -> the method bound to ``obj``, made on first call (no bound method per call).
        #: Its entries hold ``obj`` too, so whatever takes ``obj`` away takes this with it
        #: (``drop_object``, ``_Release``): the object's last reference still goes home.
        self.bound: dict[str, Callable[..., Any]] = {}
        self.cls = type(obj)
        self.apartment = apartment
        self.agile = spec_of(self.cls).agile
        self.disconnected = False
        self.table = method_table(self.cls)
        self.gate = (Gate(f"{self.cls.__qualname__} in {apartment.name!r}")
                     if self.table.gated else None)
        #: For NEUTRAL objects: serializes calls from every caller (made on first call).
        self.neutral_guard: Any = None

    def bind(self, name: str, bind: Callable[[Any, type], Any]) -> Callable[..., Any]:
        """``name`` bound to the object, cached (two threads may both bind: either is fine)."""
        fn: Callable[..., Any] = bind(self.obj, self.cls)
        self.bound[name] = fn
        return fn

    def drop_object(self) -> None:
        """Let go of the object (on its home thread, or where any thread is home)."""
        self.obj = None
        self.bound = {}

    def disconnected_error(self, method: str) -> DisconnectedError:
        return DisconnectedError(
            f"{self.cls.__qualname__}.{method}(): the object was disconnected from "
            f"{self.apartment.name!r}; create a new one"
        )

    def __del__(self) -> None:
        # No local reference to the object here: if this frame held one, the home thread
        # could drop its reference first and the object would die on this thread after all.
        if self.obj is not None:
            try:
                self.apartment._release(self)
            except Exception:  # interpreter shutdown: nothing left to release to
                self.drop_object()


_stubs: weakref.WeakValueDictionary[int, Stub] = weakref.WeakValueDictionary()
_stubs_lock = threading.Lock()


def stub_for(obj: object, apartment: Apartment) -> Stub:
    """The object's stub, made if no proxy to it exists right now."""
    key = id(obj)
    stub = _stubs.get(key)
    if stub is not None and stub.obj is obj:
        return stub
    with _stubs_lock:
        stub = _stubs.get(key)
        if stub is None or stub.obj is not obj:
            stub = Stub(obj, apartment)
            _stubs[key] = stub
    return stub


def existing_stub(obj: object) -> Stub | None:
    stub = _stubs.get(id(obj))
    return stub if stub is not None and stub.obj is obj else None


class Proxy(Generic[T]):
    """A handle to an object in some apartment; calling a method returns an awaitable
    :class:`aptio.Call` that runs the method in the object's apartment.

    ``Proxy[Counter]`` stands for a ``Counter``. Proxies work from every apartment and thread;
    pass them around freely. Only methods cross: attribute reads do not.
    """

    __slots__ = ("__weakref__", "_aptio_stub")

    _aptio_stub: Stub

    def __init__(self, stub: Stub) -> None:
        self._aptio_stub = stub

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        # Raises AttributeError naming the class if it has no such method.
        return types.MethodType(self._aptio_stub.table.method(name), self)

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
        raise TypeError("aptio proxies cannot be pickled; use aptio.marshal() within a process")


def _make_method(name: str, entry: _MethodEntry, doc: str | None) -> Callable[..., Call[Any]]:
    """The hot path of every proxy method call: one Python frame before the apartment's
    ``_invoke``, with the method's binding, kind and policy looked up once per class."""
    bind, is_async, policy = entry
    gated = policy is not _INTERLEAVE  # an INTERLEAVE method never waits at the gate

    def method(self: Proxy[Any], *args: Any, **kwargs: Any) -> Call[Any]:
        stub = self._aptio_stub
        if stub.disconnected:
            raise stub.disconnected_error(name)
        fn = stub.bound.get(name)
        if fn is None:
            fn = stub.bind(name, bind)
        return stub.apartment._invoke(stub.obj, name, fn, is_async, args, kwargs, stub.agile,
                                      stub.gate if gated else None, policy)

    method.__name__ = name
    method.__qualname__ = f"Proxy.{name}"
    method.__doc__ = doc
    return method


def proxy_class(cls: type) -> type[Proxy[Any]]:
    """A Proxy subclass with one sending method per public method of ``cls`` (cached), so a
    call costs one Python frame before the apartment, and ``dir(proxy)`` lists the methods."""
    table = method_table(cls)
    generated = table.proxy_class
    if generated is not None:
        return generated
    namespace: dict[str, Any] = {"__slots__": ()}
    for name in dir(cls):
        if name.startswith("_") or name in _RESERVED:
            continue
        try:
            table.lookup(name)
        except AttributeError:
            continue
        namespace[name] = table.method(name)
    generated = type(f"Proxy[{cls.__qualname__}]", (Proxy,), namespace)
    table.proxy_class = generated
    return generated


_RESERVED: Final = frozenset(dir(Proxy))


def record_home(obj: object, home: Apartment) -> None:
    """Note on an object made by aptio which apartment it lives in (read by marshaling and by
    debug mode). A class with ``__slots__`` and no room for it keeps its home unrecorded."""
    try:
        object.__setattr__(obj, HOME_ATTRIBUTE, home)
    except (AttributeError, TypeError):
        pass


def proxy_for(obj: object, home: Apartment) -> Proxy[Any]:
    """A proxy to ``obj``, which lives in ``home`` (or in the apartment its creation recorded)."""
    recorded = getattr(obj, HOME_ATTRIBUTE, None)
    stub = stub_for(obj, recorded if recorded is not None else home)
    return proxy_class(stub.cls)(stub)


def is_proxy(value: object) -> bool:
    """True if ``value`` is an aptio proxy."""
    return isinstance(value, Proxy)


def _stub_of(proxy: object, what: str) -> Stub:
    if not isinstance(proxy, Proxy):
        raise TypeError(f"aptio.{what}() takes an aptio proxy, not {type(proxy).__qualname__}")
    return proxy._aptio_stub


def apartment_of(proxy: Proxy[Any]) -> Apartment:
    """The apartment the proxied object lives in."""
    return _stub_of(proxy, "apartment_of").apartment


def unwrap(proxy: Proxy[T]) -> T:
    """The raw object behind ``proxy``; only inside its home apartment (any apartment for
    agile objects). Elsewhere raises WrongApartmentError: call through the proxy instead."""
    stub = _stub_of(proxy, "unwrap")
    obj = stub.obj
    if obj is None or stub.disconnected:
        raise DisconnectedError(f"the {stub.cls.__qualname__} behind this proxy is disconnected")
    if not stub.agile and not stub.apartment._is_current():
        from ._runtime import current_apartment

        here = current_apartment()
        raise WrongApartmentError(
            f"unwrap(): this {stub.cls.__qualname__} lives in {stub.apartment.name!r}, not in "
            f"{here.name if here is not None else 'this thread'!r}; call its methods through "
            "the proxy, or unwrap it inside its own apartment"
        )
    value: T = obj  # type: ignore[assignment]
    return value


def marshal_args(args: tuple[Any, ...], sender: Apartment) -> tuple[Any, ...]:
    """``args`` with each non-agile coclass instance replaced by a proxy (copied only if any)."""
    for index, value in enumerate(args):
        if type(value) in PLAIN_TYPES:
            continue
        spec = getattr(type(value), SPEC_ATTRIBUTE, None)
        if isinstance(spec, ClassSpec) and not spec.agile:
            converted = list(args)
            for i in range(index, len(args)):
                converted[i] = marshal_value(args[i], sender)
            return tuple(converted)
    return args


def marshal_kwargs(kwargs: dict[str, Any], sender: Apartment) -> dict[str, Any]:
    for value in kwargs.values():
        if type(value) in PLAIN_TYPES:
            continue
        spec = getattr(type(value), SPEC_ATTRIBUTE, None)
        if isinstance(spec, ClassSpec) and not spec.agile:
            return {key: marshal_value(v, sender) for key, v in kwargs.items()}
    return kwargs


def marshal_value(value: Any, sender: Apartment) -> Any:
    """A coclass instance crossing an apartment boundary becomes a proxy; a proxy stays a
    proxy; every other value (and agile objects) passes by reference as it is."""
    if type(value) in PLAIN_TYPES:
        return value
    spec = getattr(type(value), SPEC_ATTRIBUTE, None)
    if isinstance(spec, ClassSpec) and not spec.agile:
        return proxy_for(value, sender)
    return value
