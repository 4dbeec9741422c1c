"""What a class declares about itself: ``@coclass`` (threading model, agility, reentrancy) and
``@with_reentrancy`` on single methods, and how to read those declarations back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias, TypeVar, overload

import attrs

from .enums import Reentrancy, ThreadingModel

__all__ = [
    "HOME_ATTRIBUTE",
    "SERVER_ATTRIBUTE",
    "CONTAINER_TYPES",
    "REENTRANCY_ATTRIBUTE",
    "SCALAR_TYPES",
    "SPEC_ATTRIBUTE",
    "ClassSpec",
    "ServerClass",
    "ServerStarter",
    "coclass",
    "declaration_hooks",
    "is_coclass_instance",
    "local_server",
    "method_policy",
    "register_server_class",
    "server_class_of",
    "spec_of",
    "with_reentrancy",
]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class ClassSpec:
    """What ``@coclass`` recorded on a class."""

    model: ThreadingModel = ThreadingModel.APARTMENT
    agile: bool = False
    reentrancy: Reentrancy = Reentrancy.INTERLEAVE
    declared: bool = True


#: The class attribute ``@coclass`` sets (a :class:`ClassSpec`).
SPEC_ATTRIBUTE: Final = "__aptio_coclass__"
#: The method attribute ``@with_reentrancy`` sets (a :class:`Reentrancy`).
REENTRANCY_ATTRIBUTE: Final = "__aptio_reentrancy__"
#: Set on each instance created by aptio: the apartment it lives in.
HOME_ATTRIBUTE: Final = "_aptio_home"

#: Scalars: never coclass instances, containers, coroutines nor generators, so arguments and
#: results of these types skip every marshaling check (a set lookup of the type).
SCALAR_TYPES: Final = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray})
#: The containers marshaling walks (exact types; named tuples too): coclass instances found
#: inside them cross as proxies. Other objects (dataclasses, attrs classes, subclasses of
#: these) pass as they are.
CONTAINER_TYPES: Final = frozenset({tuple, list, dict, set, frozenset})
_UNDECLARED: Final = ClassSpec(declared=False)

#: Called with every class ``@coclass`` declares (debug mode registers one here): a hook, so
#: this layer never imports the layers that care.
declaration_hooks: list[Callable[[type], None]] = []


@overload
def coclass(cls: C, /) -> C: ...
@overload
def coclass(
    *,
    model: ThreadingModel = ...,
    agile: bool = ...,
    reentrancy: Reentrancy = ...,
) -> Callable[[C], C]: ...
@overload
def coclass(
    model: ThreadingModel,
    /,
    *,
    agile: bool = ...,
    reentrancy: Reentrancy = ...,
) -> Callable[[C], C]: ...


def coclass(
    cls_or_model: Any = None,
    /,
    *,
    model: ThreadingModel | None = None,
    agile: bool = False,
    reentrancy: Reentrancy = Reentrancy.INTERLEAVE,
) -> Any:
    """Declare a class's COM threading model: ``@aptio.coclass(aptio.ThreadingModel.FREE)``.

    Bare ``@aptio.coclass`` means APARTMENT. ``agile=True`` marks the class as self-synchronized
    and usable from every apartment (COM's free-threaded marshaler): its instances cross
    apartments as themselves. ``reentrancy`` chooses which calls may interleave at ``await``s.
    """
    if isinstance(cls_or_model, type):
        return _declare(cls_or_model, ThreadingModel.APARTMENT, agile, reentrancy)
    if cls_or_model is not None:
        if model is not None:
            raise TypeError("coclass() got the threading model twice")
        model = cls_or_model
    chosen = ThreadingModel.APARTMENT if model is None else model
    if not isinstance(chosen, ThreadingModel):
        raise TypeError(f"coclass() model must be an aptio.ThreadingModel, not {chosen!r}")
    if not isinstance(reentrancy, Reentrancy):
        raise TypeError(f"coclass() reentrancy must be an aptio.Reentrancy, not {reentrancy!r}")

    def decorate(cls: C) -> C:
        if not isinstance(cls, type):
            raise TypeError(f"@aptio.coclass decorates classes, not {cls!r}")
        return _declare(cls, chosen, agile, reentrancy)

    return decorate


def _declare(cls: C, model: ThreadingModel, agile: bool, reentrancy: Reentrancy) -> C:
    setattr(cls, SPEC_ATTRIBUTE, ClassSpec(model=model, agile=bool(agile), reentrancy=reentrancy))
    for hook in list(declaration_hooks):
        hook(cls)
    return cls


def spec_of(cls: type) -> ClassSpec:
    """The class's declaration; an undecorated class counts as APARTMENT (not declared)."""
    spec = getattr(cls, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, ClassSpec) else _UNDECLARED


def is_coclass_instance(value: object) -> bool:
    """True for instances of ``@coclass`` classes: they cross apartments as proxies."""
    return isinstance(getattr(type(value), SPEC_ATTRIBUTE, None), ClassSpec)


def with_reentrancy(policy: Reentrancy) -> Callable[[F], F]:
    """Override the class's reentrancy policy for one method of a ``@coclass``:
    ``@aptio.with_reentrancy(aptio.Reentrancy.INTERLEAVE)`` lets a read-only query in while a
    CALL_CHAIN call of another chain is suspended in the object."""
    if not isinstance(policy, Reentrancy):
        raise TypeError(f"with_reentrancy() takes an aptio.Reentrancy, not {policy!r}")

    def decorate(method: F) -> F:
        if isinstance(method, type):
            raise TypeError(
                "with_reentrancy() decorates methods; for a whole class use "
                "@aptio.coclass(reentrancy=...)"
            )
        if not callable(method):
            raise TypeError(f"with_reentrancy() decorates methods, not {method!r}")
        setattr(method, REENTRANCY_ATTRIBUTE, policy)
        return method

    return decorate


def method_policy(attribute: object) -> Reentrancy | None:
    """The per-method override on a class attribute (a function, or a static/classmethod)."""
    policy = getattr(attribute, REENTRANCY_ATTRIBUTE, None)
    if policy is None:
        policy = getattr(getattr(attribute, "__func__", None), REENTRANCY_ATTRIBUTE, None)
    return policy if isinstance(policy, Reentrancy) else None


#: The class attribute ``@local_server`` (or ``@aptio.ray.server``) sets (a :class:`ServerClass`).
SERVER_ATTRIBUTE: Final = "__aptio_server__"

#: Starts the server a class's instances live in when it is not a local server process (an
#: extra's registration, ``@aptio.ray.server``): called with the server's name (None: a
#: single-use server without one), whether it is single-use, and the class
#: (``module:qualname``); returns the started server, an ``aptio.Server``.
ServerStarter: TypeAlias = Callable[[str | None, bool, str], Awaitable[object]]


@attrs.frozen
class ServerClass:
    """Where a class's instances live when ``aptio.create`` makes them (COM's class
    registration for a local server): in the server named ``name``, shared by every instance
    (multiple-use), or, ``single_use``, each in a server of its own that exits when the
    object goes. ``starter``: how that server starts, when not as a local process."""

    name: str | None
    single_use: bool
    starter: ServerStarter | None = attrs.field(default=None, eq=False)


def local_server(name: str | None = None, *, single_use: bool = False) -> Callable[[C], C]:
    """Declare that ``aptio.create(cls)`` makes instances in a server process (COM: a local
    server's class registration): ``@aptio.local_server("hashers")`` puts every instance in
    the one server named "hashers" (started on first use, shut down with the runtime);
    ``@aptio.local_server(single_use=True)`` starts a server per instance, which exits when
    the instance's last proxy goes. The class must be importable in the server (a module, or
    the script that started the runtime). Inside the server it names, ``create`` makes the
    object there, where it lives."""
    return register_server_class("local_server", name, single_use)


def register_server_class(decorator: str, name: str | None, single_use: bool,
                          starter: ServerStarter | None = None) -> Callable[[C], C]:
    """The class decorator of ``@aptio.<decorator>(name, single_use=...)``: instances live in
    the server ``starter`` starts (a local server process if None)."""
    if name is None and not single_use:
        raise TypeError(f"{decorator}() needs a server name, or single_use=True")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{decorator}() name must be a str, not {name!r}")

    def decorate(cls: C) -> C:
        if not isinstance(cls, type):
            raise TypeError(f"@aptio.{decorator} decorates classes, not {cls!r}")
        setattr(cls, SERVER_ATTRIBUTE, ServerClass(name, bool(single_use), starter))
        return cls

    return decorate


def server_class_of(cls: type) -> ServerClass | None:
    """The class's server registration, if it has one."""
    found = cls.__dict__.get(SERVER_ATTRIBUTE)
    return found if isinstance(found, ServerClass) else None
