"""The methods of one class as proxies see them: looked up once per class, with their sync or
async kind and reentrancy policy, and the sending functions the proxy class is made of."""

from __future__ import annotations

import enum
import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .._values.declarations import method_policy, spec_of
from .._values.enums import Reentrancy

__all__ = ["DynamicMethodTable", "GeneratorKind", "MethodEntry", "MethodTable", "all_tables",
           "method_table", "register_table"]

#: What a method is, as its sender needs it: (binds the method to an instance:
#: ``bind(obj, cls)``, is a coroutine function, the reentrancy policy that applies to it,
#: its generator kind)
MethodEntry = tuple[Callable[[Any, type], Any], bool, Reentrancy, "GeneratorKind"]


class GeneratorKind(enum.Enum):
    """Whether a method is a generator function: its calls are then iterated, not awaited."""

    NONE = "none"
    SYNC = "sync"  # ``def`` with ``yield``
    ASYNC = "async"  # ``async def`` with ``yield``


class MethodTable:
    """The callable attributes of one class, looked up once, with their sync/async kind and
    reentrancy policy (the class's, or a ``with_reentrancy`` override).

    ``senders`` and ``proxy_class`` are caches filled by :mod:`aptio._proxy.proxy` (two threads
    may both fill an entry: the results are equivalent, and the last one stays)."""

    __slots__ = ("cls", "entries", "gated", "policy", "proxy_class", "senders")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.entries: dict[str, MethodEntry] = {}
        #: name -> the function that sends ``name`` calls: ``sender(proxy, *args, **kwargs)``.
        self.senders: dict[str, Callable[..., Any]] = {}
        #: The generated Proxy subclass for ``cls``, once made.
        self.proxy_class: type | None = None
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

    def lookup(self, name: str) -> MethodEntry:
        entry = self.entries.get(name)
        if entry is None:
            entry = self._resolve(name)
            self.entries[name] = entry
        return entry

    def _resolve(self, name: str) -> MethodEntry:
        cls = self.cls
        try:
            attribute = inspect.getattr_static(cls, name)
        except AttributeError:
            raise AttributeError(
                f"{cls.__qualname__!r} has no method {name!r} (called through an aptio proxy, "
                "which carries method calls only)"
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
        if inspect.isgeneratorfunction(bound):
            kind = GeneratorKind.SYNC
        elif inspect.isasyncgenfunction(bound):
            kind = GeneratorKind.ASYNC
        else:
            kind = GeneratorKind.NONE
        return bind, inspect.iscoroutinefunction(bound), policy, kind


_tables: weakref.WeakKeyDictionary[type, MethodTable] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def method_table(cls: type) -> MethodTable:
    table = _tables.get(cls)
    if table is None:
        with _tables_lock:
            table = _tables.get(cls)
            if table is None:
                table = MethodTable(cls)
                _tables[cls] = table
    return table


def _unbound(obj: object, cls: type) -> Any:
    return None  # the method runs in another process: nothing to bind here


class DynamicMethodTable(MethodTable):
    """The methods of a class this process cannot import, whose objects live in another
    process: any public name is a method (the owner's process checks it), and the generator
    methods are the ones named."""

    __slots__ = ("_iterators",)

    def __init__(self, cls: type, iterators: dict[str, GeneratorKind]) -> None:
        super().__init__(cls)
        self._iterators = iterators

    def _resolve(self, name: str) -> MethodEntry:
        if name.startswith("_"):
            raise AttributeError(
                f"{self.cls.__qualname__!r} has no method {name!r} (called through an aptio "
                "proxy, which carries public method calls only)"
            )
        return _unbound, False, self.policy, self._iterators.get(name, GeneratorKind.NONE)


def register_table(cls: type, table: MethodTable) -> None:
    """Use ``table`` for ``cls`` (a stand-in class for one this process cannot import)."""
    with _tables_lock:
        _tables[cls] = table
def all_tables() -> list[MethodTable]:
    """Every method table made so far (a snapshot)."""
    with _tables_lock:
        return list(_tables.values())
