"""aptio's mypy plugin: types every method call through an ``aptio.Proxy[T]`` from ``T`` itself.

Enable it in the project's mypy configuration::

    [tool.mypy]
    plugins = ["aptio.mypy"]

Then, for ``counter: aptio.Proxy[Counter]``:

- ``counter.increment`` is a callable with ``Counter.increment``'s own parameters (``self``
  dropped) that returns ``aptio.Call[R]``, R being the method's result (a coroutine method's
  result unwrapped): a misspelt method, a wrong or missing argument, and a wrong use of the
  result are errors;
- a generator or async-generator method returns ``aptio.CallIterator[Y]`` for its items Y;
- a result that is an instance of an ``@aptio.coclass`` class (not agile) is the proxy that
  crosses apartments: ``Call[Proxy[Widget]]``, or ``Call[WidgetProxy]`` when ``Widget`` names a
  declared proxy, also inside lists, dicts, sets and tuples; such parameters accept the object
  or a proxy to it;
- properties and plain attributes are errors: proxies carry method calls only.

The plugin finds aptio's classes by their public names (``aptio.Proxy``, ``aptio.Call``,
``aptio.CallIterator``, ``aptio.coclass``, ``aptio.ProxiedAs``) in mypy's symbol tables, so it
does not depend on where they are defined. Nothing imports this module at run time: only mypy
does, when the configuration names it. Supported: mypy 1.10 up to the newest tested (see the
typing guide).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

from mypy.errorcodes import ATTR_DEFINED
from mypy.maptype import map_instance_to_supertype
from mypy.nodes import (
    CallExpr,
    Decorator,
    FuncDef,
    FuncItem,
    NameExpr,
    OverloadedFuncDef,
    SymbolNode,
    TypeInfo,
    Var,
)
from mypy.plugin import AttributeContext, ClassDefContext, Plugin
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    Overloaded,
    TupleType,
    Type,
    TypeOfAny,
    TypeVarType,
    UnionType,
    get_proper_type,
)

__all__ = ["AptioPlugin", "plugin"]

#: Where the ``@aptio.coclass`` decorator hook leaves its note on a class (kept in mypy's cache).
_METADATA_KEY: Final = "aptio"

# The result types that make a method an iterator of its items, sync and async.
_SYNC_ITERABLE: Final = "typing.Iterable"
_ASYNC_ITERABLE: Final = "typing.AsyncIterable"
_GENERATORS: Final = frozenset({"typing.Generator", "typing.AsyncGenerator"})
#: The containers whose items cross one by one (aptio copies them when an item must change).
_CONTAINERS: Final = frozenset({"builtins.list", "builtins.dict", "builtins.set",
                                "builtins.frozenset", "builtins.tuple"})


class AptioPlugin(Plugin):
    """Types attribute access on ``aptio.Proxy[T]`` (through its ``__getattr__``) as the
    proxy method of ``T``'s method, and notes which classes are ``@aptio.coclass``."""

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        proxy = self._public_class("Proxy")
        if proxy is None:
            return None
        owner, _, name = fullname.rpartition(".")
        if owner != proxy.fullname:
            return None
        return partial(self._proxy_attribute, name)

    def get_class_decorator_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        # ``aptio`` may not be analyzed yet when a decorated class is (aptio's own classes
        # are), so every decorator named ``coclass`` leaves a note with its full name, and the
        # type checking pass compares that with ``aptio.coclass``'s.
        if fullname.rpartition(".")[2] == "coclass":
            return partial(_note_coclass, fullname)
        return None

    # ------------------------------------------------------------------ public names

    def _public(self, name: str) -> SymbolNode | None:
        if self._modules is None or "aptio" not in self._modules:
            return None
        symbol = self._modules["aptio"].names.get(name)
        return symbol.node if symbol is not None else None

    def _public_class(self, name: str) -> TypeInfo | None:
        node = self._public(name)
        return node if isinstance(node, TypeInfo) else None

    def _coclass_fullname(self) -> str | None:
        node = self._public("coclass")
        return node.fullname if node is not None else None

    # ------------------------------------------------------------------ the proxy method

    def _proxy_attribute(self, name: str, ctx: AttributeContext) -> Type:
        proxy = self._public_class("Proxy")
        if proxy is None or not isinstance(ctx.type, Instance):
            return ctx.default_attr_type
        target = get_proper_type(map_instance_to_supertype(ctx.type, proxy).args[0])
        if isinstance(target, TypeVarType):
            target = get_proper_type(target.upper_bound)
        if not isinstance(target, Instance) or target.type.fullname == "builtins.object":
            return ctx.default_attr_type  # Proxy[Any], an unbounded T: nothing to check
        described = target.type.name
        symbol = target.type.get(name)
        if symbol is None or (name.startswith("__") and name.endswith("__")):
            ctx.api.fail(f'"{described}" has no method "{name}" (called through '
                         f"aptio.Proxy[{described}]){_suggestion(name, target.type)}",
                         ctx.context, code=ATTR_DEFINED)
            return AnyType(TypeOfAny.from_error)
        what = _not_a_method(symbol.node)
        if what is not None:
            ctx.api.fail(f'"{described}.{name}" is {what}, not a method: aptio proxies carry '
                         "method calls only; add a method that returns it",
                         ctx.context, code=ATTR_DEFINED)
            return AnyType(TypeOfAny.from_error)
        checker = ctx.api.expr_checker  # type: ignore[attr-defined]
        found: Type = checker.analyze_external_member_access(name, target, ctx.context)
        member = get_proper_type(found)
        iterates = _is_generator(symbol.node)
        if isinstance(member, CallableType):
            return self._proxy_callable(member, iterates)
        if isinstance(member, Overloaded):
            return Overloaded([self._proxy_callable(item, iterates) for item in member.items])
        return member  # Any, or an error mypy reported already

    def _proxy_callable(self, method: CallableType, iterates: bool) -> CallableType:
        """``method`` (bound) as the proxy sends it: each coclass parameter also takes a proxy,
        and the result is a Call of what crosses back (or a CallIterator of the items)."""
        arg_types = [self._accepted(arg) for arg in method.arg_types]
        result = get_proper_type(method.ret_type)
        wrapped: Type | None = None
        if isinstance(result, Instance):
            item = self._iterated_item(result, iterates)
            if item is not None:
                wrapped = self._instance("CallIterator", [self._crossing(item)])
        if wrapped is None:
            if isinstance(result, Instance) and result.type.fullname == "typing.Coroutine":
                result = get_proper_type(result.args[2])
            wrapped = self._instance("Call", [self._crossing(result)])
        return method.copy_modified(arg_types=arg_types, ret_type=wrapped)

    def _iterated_item(self, result: Instance, generator: bool) -> Type | None:
        """The item type if the method is a generator (or returns a generator object)."""
        if not generator and result.type.fullname not in _GENERATORS:
            return None
        for iterable in (_SYNC_ITERABLE, _ASYNC_ITERABLE):
            if result.type.has_base(iterable):
                info = self.lookup_fully_qualified(iterable)
                if info is not None and isinstance(info.node, TypeInfo):
                    return map_instance_to_supertype(result, info.node).args[0]
        return None

    # ------------------------------------------------------------------ what crosses

    def _crossing(self, value: Type) -> Type:
        """What a value of type ``value`` becomes when it crosses an apartment boundary: a
        non-agile coclass instance becomes its proxy and a generator a CallIterator, also as a
        member of a union and inside the containers aptio walks (list, dict, set, frozenset,
        tuple)."""
        proper = get_proper_type(value)
        if isinstance(proper, UnionType):
            return UnionType.make_union([self._crossing(item) for item in proper.items])
        if isinstance(proper, TupleType) and proper.partial_fallback.type.fullname == (
                "builtins.tuple"):  # not a named tuple: its fields keep their declared types
            return proper.copy_modified(items=[self._crossing(item) for item in proper.items])
        if not isinstance(proper, Instance):
            return value
        if self._crosses_as_proxy(proper.type):
            return self._proxy_of(proper)
        if proper.type.fullname in _GENERATORS:
            return self._instance("CallIterator", [self._crossing(proper.args[0])])
        if proper.type.fullname in _CONTAINERS:
            return proper.copy_modified(args=[self._crossing(arg) for arg in proper.args])
        return value

    def _accepted(self, parameter: Type) -> Type:
        """A parameter the method declares as a coclass instance (or a proxy to one) takes
        both: the object crosses as a proxy, a proxy stays one."""
        proper = get_proper_type(parameter)
        if isinstance(proper, UnionType):
            return UnionType.make_union([self._accepted(item) for item in proper.items])
        if not isinstance(proper, Instance):
            return parameter
        if self._crosses_as_proxy(proper.type):
            return UnionType.make_union([proper, self._proxy_of(proper)])
        proxy = self._public_class("Proxy")
        if proxy is not None and proper.type is proxy:
            target = get_proper_type(proper.args[0])
            if isinstance(target, Instance) and self._crosses_as_proxy(target.type):
                return UnionType.make_union([proper, target])
        return parameter

    def _crosses_as_proxy(self, info: TypeInfo) -> bool:
        """True for (subclasses of) ``@aptio.coclass`` classes that are not agile."""
        coclass = self._coclass_fullname()
        if coclass is None:
            return False
        for klass in info.mro:
            note = klass.metadata.get(_METADATA_KEY)
            if note is not None and note.get("decorator") == coclass:
                return not note.get("agile", False)
        return False

    def _proxy_of(self, instance: Instance) -> Type:
        """``Proxy[C]`` for a coclass instance type, or the declared proxy C names."""
        proxied_as = self._public_class("ProxiedAs")
        if proxied_as is not None and instance.type.has_base(proxied_as.fullname):
            return map_instance_to_supertype(instance, proxied_as).args[0]
        return self._instance("Proxy", [instance])

    def _instance(self, name: str, args: Sequence[Type]) -> Type:
        info = self._public_class(name)
        if info is None:
            return AnyType(TypeOfAny.special_form)
        return Instance(info, list(args))


def _note_coclass(decorator: str, ctx: ClassDefContext) -> None:
    agile = False
    reason = ctx.reason
    if isinstance(reason, CallExpr):
        for argument_name, value in zip(reason.arg_names, reason.args, strict=True):
            if argument_name == "agile":
                agile = isinstance(value, NameExpr) and value.fullname == "builtins.True"
    ctx.cls.info.metadata[_METADATA_KEY] = {"decorator": decorator, "agile": agile}


def _not_a_method(node: SymbolNode | None) -> str | None:
    """What the class attribute is if it is not a method proxies can call, else None."""
    if isinstance(node, (FuncDef, OverloadedFuncDef)):
        return "a property" if node.is_property else None
    if isinstance(node, Decorator):
        return "a property" if node.func.is_property or node.var.is_property else None
    if isinstance(node, Var):
        if node.is_property:
            return "a property"
        proper = get_proper_type(node.type)
        if node.is_initialized_in_class and isinstance(proper, (CallableType, Overloaded)):
            return None  # a function stored on the class: a method at run time
        return "an attribute"
    if isinstance(node, TypeInfo):
        return "a class"
    return "not a function"


def _is_generator(node: SymbolNode | None) -> bool:
    function: FuncItem | None = None
    if isinstance(node, FuncDef):
        function = node
    elif isinstance(node, Decorator):
        function = node.func
    elif isinstance(node, OverloadedFuncDef) and node.items:
        first = node.items[0]
        function = first.func if isinstance(first, Decorator) else first
    return function is not None and (function.is_generator or function.is_async_generator)


def _suggestion(name: str, info: TypeInfo) -> str:
    methods = {member for klass in info.mro[:-1] for member, symbol in klass.names.items()
               if not member.startswith("__") and _not_a_method(symbol.node) is None}
    close = difflib.get_close_matches(name, sorted(methods), n=1)
    return f'; maybe "{close[0]}"?' if close else ""


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point: the plugin class for this mypy ``version``."""
    return AptioPlugin
