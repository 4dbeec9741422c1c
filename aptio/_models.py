"""Threading models, the ``@coclass`` declaration, and the creation matrix (COM_SPEC section 2)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Final, TypeVar, overload

import attrs

from ._kinds import ApartmentKind

__all__ = ["ThreadingModel", "Reentrancy", "ClassSpec", "coclass", "spec_of", "Placement",
           "placement"]

C = TypeVar("C", bound=type)


class ThreadingModel(enum.Enum):
    """Where instances of a class may live (COM: the ``ThreadingModel`` registry value)."""

    #: Every instance lives in the main STA (COM: no ThreadingModel / "Single").
    SINGLE = "single"
    #: An instance lives in the STA that created it; from the MTA, in the host STA.
    APARTMENT = "apartment"
    #: Instances live in the MTA.
    FREE = "free"
    #: An instance lives in its creator's apartment, STA or MTA (it synchronizes itself).
    BOTH = "both"
    #: Instances live in the neutral apartment: calls run on the caller's thread.
    NEUTRAL = "neutral"


class Reentrancy(enum.Enum):
    """Which incoming calls may run while an object's call is suspended at an ``await``."""

    #: asyncio-natural: any call may run at any await (COM's STA modal loop).
    INTERLEAVE = "interleave"
    #: One logical call per object at a time; a nested call of the same causality chain is let
    #: in (WinRT's ASTA).
    CALL_CHAIN = "call_chain"
    #: Strict turns: one call at a time; a re-entry from the same chain raises DeadlockError.
    NONE = "none"


@attrs.frozen
class ClassSpec:
    """What ``@coclass`` recorded on a class."""

    model: ThreadingModel = ThreadingModel.APARTMENT
    agile: bool = False
    reentrancy: Reentrancy = Reentrancy.INTERLEAVE
    declared: bool = True


SPEC_ATTRIBUTE: Final = "__aptio_coclass__"

#: Types that are never coclass instances nor coroutines: arguments and results of these types
#: skip the marshaling checks (a failed getattr on a type costs more than this set lookup).
PLAIN_TYPES: Final = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray,
                                tuple, list, dict, set, frozenset})
_UNDECLARED: Final = ClassSpec(declared=False)


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
    from ._debug import note_coclass

    note_coclass(cls)
    return cls


def spec_of(cls: type) -> ClassSpec:
    """The class's declaration; an undecorated class counts as APARTMENT (not declared)."""
    spec = getattr(cls, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, ClassSpec) else _UNDECLARED


def is_coclass_instance(value: object) -> bool:
    """True for instances of ``@coclass`` classes: they cross apartments as proxies."""
    return isinstance(getattr(type(value), SPEC_ATTRIBUTE, None), ClassSpec)


class Placement(enum.Enum):
    """Where the creation matrix puts a new object, relative to its creator."""

    SAME = "same"  # the creator's own apartment: direct
    MAIN_STA = "main_sta"
    MTA = "mta"
    HOST_STA = "host_sta"
    NEUTRAL = "neutral"
    THREAD_STA = "thread_sta"  # an NA caller running on an STA thread: that STA


def placement(model: ThreadingModel, creator: ApartmentKind, on_sta_thread: bool) -> Placement:
    """The creation matrix of COM_SPEC section 2.

    ``creator`` is the creating apartment's kind; ``on_sta_thread`` matters only for a NEUTRAL
    creator (the NA borrows its caller's thread, which may belong to an STA or the MTA).
    """
    if model is ThreadingModel.SINGLE:
        return Placement.SAME if creator is ApartmentKind.MAIN_STA else Placement.MAIN_STA
    if model is ThreadingModel.NEUTRAL:
        return Placement.SAME if creator is ApartmentKind.NEUTRAL else Placement.NEUTRAL
    if model is ThreadingModel.FREE:
        return Placement.SAME if creator is ApartmentKind.MTA else Placement.MTA
    if model is ThreadingModel.BOTH:
        return Placement.SAME
    # APARTMENT
    if creator.is_sta:
        return Placement.SAME
    if creator is ApartmentKind.NEUTRAL and on_sta_thread:
        return Placement.THREAD_STA
    return Placement.HOST_STA
