"""What a class declares about itself: ``@coclass`` (threading model, agility, reentrancy) and
``@with_reentrancy`` on single methods, and how to read those declarations back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, overload

import attrs

from .enums import Reentrancy, ThreadingModel

__all__ = [
    "HOME_ATTRIBUTE",
    "CONTAINER_TYPES",
    "REENTRANCY_ATTRIBUTE",
    "SCALAR_TYPES",
    "SPEC_ATTRIBUTE",
    "ClassSpec",
    "coclass",
    "declaration_hooks",
    "is_coclass_instance",
    "method_policy",
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
