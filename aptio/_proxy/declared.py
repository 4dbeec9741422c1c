"""Declared proxies (COM: the interface definitions of a type library): a class that lists, one
line per method, what callers of a class may call, typed from the methods themselves, for type
checkers that have no aptio plugin (pyright and the rest).

::

    @aptio.coclass
    class Counter(aptio.ProxiedAs["CounterProxy"]):
        def increment(self, by: int = 1) -> int: ...

    class CounterProxy(aptio.DeclaredProxy[Counter]):
        increment = aptio.proxy_method(Counter.increment)

``await aptio.create(Counter)`` is then a ``CounterProxy`` to every checker, and at run time
too: the proxy classes aptio makes for ``Counter`` derive from it. Each line is checked twice:
by the type checker (``Counter.increment`` must exist, its parameters become the proxy
method's), and when the class statement runs (the method is there, an instance method of the
same kind, sync or async, generator or not): a mismatch raises :class:`DeclarationError` at
import time, never at the first call.

The descriptors only describe: the proxy classes made for ``Counter`` put the usual sending
function under every method name, so a call through a declared proxy runs exactly the code a
call through any proxy runs, and undeclared proxies pay nothing for this module.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from .._call.call import Call
from .._values.declarations import spec_of
from .._values.errors import DeclarationError
from .call_iterator import CallIterator
from .proxy import Proxy, proxy_base_of, sender_for, set_proxy_base

__all__ = ["DeclaredProxy", "ProxiedAs", "ProxyMethod", "proxy_method"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
C_co = TypeVar("C_co", covariant=True)
PX_co = TypeVar("PX_co", bound=Proxy[Any], covariant=True)
PX = TypeVar("PX", bound=Proxy[Any])


class ProxiedAs(Generic[PX_co]):
    """A base class naming a class's declared proxy: ``class Counter(aptio.ProxiedAs[
    "CounterProxy"])`` makes ``aptio.create(Counter)`` (and everything else that hands out a
    proxy to a Counter) a ``CounterProxy``, to type checkers and at run time. It adds nothing
    to the class but this name; the string is a forward reference, since the proxy class is
    defined after the class it lists methods of."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in vars(cls).get("__orig_bases__", ()):
            if typing.get_origin(base) is ProxiedAs:
                (named,) = typing.get_args(base)
                if isinstance(named, type) and issubclass(named, DeclaredProxy):
                    set_proxy_base(cls, named)  # an existing declared proxy (of a base class)
                else:
                    set_proxy_base(cls, _forward_name(named))


class ProxyMethod(Generic[P, C_co]):
    """What :func:`proxy_method` puts in a declared proxy class: read on a proxy, it is the
    method's sending function bound to that proxy (``Callable[P, Call[R]]`` to checkers)."""

    __slots__ = ("function", "name")

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.name: str = getattr(function, "__name__", "")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, proxy: None, owner: type | None = None) -> ProxyMethod[P, C_co]: ...
    @overload
    def __get__(self, proxy: Proxy[Any], owner: type | None = None) -> Callable[P, C_co]: ...

    def __get__(self, proxy: Proxy[Any] | None,
                owner: type | None = None) -> ProxyMethod[P, C_co] | Callable[P, C_co]:
        if proxy is None:
            return self
        # Only reached for a DeclaredProxy subclass instantiated by hand: the classes aptio
        # makes shadow every descriptor with the sending function itself.
        return types.MethodType(sender_for(proxy._aptio_stub.table, self.name), proxy)

    def __repr__(self) -> str:
        return f"<aptio.proxy_method {getattr(self.function, '__qualname__', self.name)}>"


# A coroutine method's result is what its coroutine returns; a generator method's is a
# CallIterator of its items; a method returning an instance of a class with a declared proxy
# gives that proxy. The overloads overlap by design (an iterator is also an R): the first
# match wins, as intended.
@overload
def proxy_method(
    function: Callable[Concatenate[Any, P], Coroutine[Any, Any, ProxiedAs[PX]]], /,
) -> ProxyMethod[P, Call[PX]]: ...
@overload
def proxy_method(
    function: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /,
) -> ProxyMethod[P, Call[R]]: ...
@overload
def proxy_method(  # type: ignore[overload-overlap]
    function: Callable[Concatenate[Any, P], AsyncIterator[R]], /,
) -> ProxyMethod[P, CallIterator[R]]: ...
@overload
def proxy_method(  # type: ignore[overload-overlap]
    function: Callable[Concatenate[Any, P], Iterator[R]], /,
) -> ProxyMethod[P, CallIterator[R]]: ...
@overload
def proxy_method(
    function: Callable[Concatenate[Any, P], ProxiedAs[PX]], /,
) -> ProxyMethod[P, Call[PX]]: ...
@overload
def proxy_method(function: Callable[Concatenate[Any, P], R], /) -> ProxyMethod[P, Call[R]]: ...


def proxy_method(function: Callable[..., Any], /) -> ProxyMethod[..., Any]:
    """Declare one method of a declared proxy class: ``increment =
    aptio.proxy_method(Counter.increment)``. The proxy method takes the method's parameters
    (``self`` dropped) and returns ``Call[R]`` for its result R (a coroutine method's result
    unwrapped), or ``CallIterator[Y]`` for a generator method yielding Y."""
    if not callable(function):
        raise DeclarationError(
            f"aptio.proxy_method() takes a method of the class, as Counter.increment, not "
            f"{function!r}"
        )
    return ProxyMethod(function)


class DeclaredProxy(Proxy[T]):
    """The base of a declared proxy class: ``class CounterProxy(aptio.DeclaredProxy[Counter])``
    with one ``name = aptio.proxy_method(Counter.name)`` line per method callers use.

    To type checkers the class has exactly the methods it declares (a misspelt or undeclared
    method is an error); at run time its instances are ordinary proxies. The class it stands
    for names it with :class:`ProxiedAs`, so aptio hands out instances of it.
    """

    __slots__ = ()

    # For type checkers only: no catch-all __getattr__, so an undeclared name is an error.
    # (There is no class attribute: at run time Proxy.__getattr__ still answers.)
    __getattr__: None  # type: ignore[assignment, misc]

    _aptio_target: type | None = None
    _aptio_declared: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if vars(cls).get("_aptio_generated"):
            return  # a proxy class aptio made for the target: checked already
        target = _target_of(cls)
        declared = {name: value for name, value in vars(cls).items()
                    if isinstance(value, ProxyMethod)}
        for name, method in declared.items():
            _check_method(cls, target, name, method)
        cls._aptio_target = target
        cls._aptio_declared = cls._aptio_declared | frozenset(declared)
        if proxy_base_of(target) in (cls.__name__, cls.__qualname__):
            set_proxy_base(target, cls)  # the class names this one: aptio hands these out


def _target_of(cls: type) -> type:
    for base in getattr(cls, "__orig_bases__", ()):
        if typing.get_origin(base) is DeclaredProxy:
            (target,) = typing.get_args(base)
            if not isinstance(target, type):
                raise DeclarationError(
                    f"{cls.__qualname__}: DeclaredProxy[...] takes the class the proxies stand "
                    f"for, not {target!r}"
                )
            return target
    inherited: type | None = getattr(cls, "_aptio_target", None)
    if inherited is None:
        raise DeclarationError(
            f"{cls.__qualname__} does not say which class it stands for: derive it from "
            f"aptio.DeclaredProxy[TheClass]"
        )
    return inherited


def _forward_name(named: object) -> str:
    if isinstance(named, typing.ForwardRef):
        return named.__forward_arg__
    if isinstance(named, str):
        return named
    return getattr(named, "__qualname__", repr(named))


def _check_method(cls: type, target: type, name: str, method: ProxyMethod[..., Any]) -> None:
    """The checks of one ``name = proxy_method(function)`` line against ``target``."""
    where = f"{cls.__qualname__}.{name}"
    function = method.function
    declared_name = getattr(function, "__name__", None)
    if declared_name != name:
        raise DeclarationError(
            f"{where} declares {declared_name!r}: a proxy method keeps its method's name; "
            f"write `{declared_name} = aptio.proxy_method(...)`"
        )
    try:
        attribute = inspect.getattr_static(target, name)
    except AttributeError:
        raise DeclarationError(
            f"{where}: {target.__qualname__} has no method {name!r}; declare only methods "
            f"the class has"
        ) from None
    if isinstance(attribute, (staticmethod, classmethod, property)) or not callable(
            getattr(target, name)):
        raise DeclarationError(
            f"{where}: {target.__qualname__}.{name} is not an instance method (a "
            f"{type(attribute).__name__}); declared proxies list instance methods, and "
            f"proxies carry method calls only"
        )
    actual = _kind(getattr(target, name))
    declared = _kind(function)
    if actual != declared:
        raise DeclarationError(
            f"{where} declares a {declared} method, but {target.__qualname__}.{name} is a "
            f"{actual} method; declare the method the class has: "
            f"aptio.proxy_method({target.__qualname__}.{name})"
        )
    _check_result(where, function, declared)


def _kind(function: object) -> str:
    if inspect.isasyncgenfunction(function):
        return "async generator"
    if inspect.isgeneratorfunction(function):
        return "generator"
    if inspect.iscoroutinefunction(function):
        return "coroutine"
    return "sync"


_ITERATORS = (collections.abc.Iterator, collections.abc.AsyncIterator)


def _check_result(where: str, function: Callable[..., Any], kind: str) -> None:
    """What the checker makes of the method's return annotation must be what runs: an iterator
    annotation for exactly the generator methods, and no proxy-crossing result it cannot type.
    Annotations that do not resolve here (names imported for type checking only) are skipped."""
    try:
        result = typing.get_type_hints(function).get("return")
    except Exception:  # an unresolvable annotation: nothing to check it against
        return
    if result is None:
        return
    origin = typing.get_origin(result) or result
    iterates = isinstance(origin, type) and issubclass(origin, _ITERATORS)
    if kind in ("generator", "async generator") and not iterates:
        raise DeclarationError(
            f"{where}: a {kind} method annotated as returning {_name(result)}; annotate it "
            f"as Iterator[...] or Generator[...] (AsyncIterator/AsyncGenerator when async), "
            f"so its proxy method is typed as the CallIterator it returns"
        )
    if kind == "sync" and iterates:
        raise DeclarationError(
            f"{where} returns an iterator but is not a generator method; unless that iterator "
            f"is a generator, its proxy call gives the iterator object itself, which checkers "
            f"would take for a CallIterator: make it a generator method (`yield from ...`)"
        )
    members = typing.get_args(result) if _is_union(result) else (result,)
    crossing = [member for member in members
                if isinstance(member, type) and _crosses_as_proxy(member)]
    if crossing and (len(members) > 1 or not issubclass(crossing[0], ProxiedAs)):
        kinds = " | ".join(_name(member) for member in crossing)
        raise DeclarationError(
            f"{where} returns {_name(result)}: a {kinds} crosses apartments as a proxy, which "
            f"a declared proxy can type only when that class names its declared proxy "
            f"(class {kinds}(aptio.ProxiedAs[...])) and is the whole result; otherwise "
            f"return an aptio.Proxy[...] from the method, or type-check with aptio's mypy "
            f"plugin"
        )
    if (len(members) == 1 and isinstance(result, type) and issubclass(result, ProxiedAs)
            and not crossing):
        raise DeclarationError(
            f"{where} returns a {_name(result)}, which checkers take for its declared proxy, "
            f"but it crosses apartments as itself (it is not an @aptio.coclass, or is agile); "
            f"decorate it with @aptio.coclass, or drop its ProxiedAs base"
        )


def _crosses_as_proxy(cls: type) -> bool:
    spec = spec_of(cls)
    return spec.declared and not spec.agile


def _is_union(annotation: object) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _name(annotation: object) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)
