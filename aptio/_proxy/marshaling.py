"""By-reference marshaling of the values that cross an apartment boundary (COM_SPEC M1).

A coclass instance crossing a boundary, as an argument or a result, becomes a proxy, also
inside the ordinary containers (lists, tuples, named tuples, dicts, sets); a generator becomes
a :class:`~aptio._proxy.call_iterator.CallIterator`; a proxy stays a proxy; every other value
(agile objects too) passes by reference as it is. Containers are copied only when something in
them changes.

Every call's arguments and result pass through here, on both sides of the call, so this module
is compiled with the call path. Proxies themselves are made by :mod:`aptio._proxy.proxy`, which
builds classes at run time and so stays plain Python: it installs its ``proxy_for`` here when
imported (:func:`set_proxy_maker`), and :mod:`aptio._proxy.proxy` is imported by every module
that makes an apartment, before any value can cross.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .._call.context import current_site
from .._call.contract import ApartmentContract
from .._values.declarations import CONTAINER_TYPES, SCALAR_TYPES, SPEC_ATTRIBUTE, ClassSpec
from .._values.errors import NotInitializedError
from .call_iterator import CallIterator, is_generator

__all__ = ["all_scalar", "marshal_args", "marshal_kwargs", "marshal_value", "needs_marshaling",
           "set_proxy_maker"]

# Final aliases: compiled, a Final module name is a C static; the imported names themselves
# would each be a module-dict lookup at every use (their module is not compiled).
_SCALARS: Final = SCALAR_TYPES
_CONTAINERS: Final = CONTAINER_TYPES

#: Makes the proxy that a coclass instance crosses as: ``maker(obj, home)``. Installed by
#: :mod:`aptio._proxy.proxy` when it is imported (it owns the proxy classes).
_proxy_maker: Callable[[object, ApartmentContract], object] | None = None


def set_proxy_maker(maker: Callable[[object, ApartmentContract], object]) -> None:
    """Install how a coclass instance becomes its proxy (once, by :mod:`aptio._proxy.proxy`)."""
    global _proxy_maker
    _proxy_maker = maker


def _as_proxy(value: object, sender: ApartmentContract) -> object:
    maker = _proxy_maker
    if maker is None:  # pragma: no cover - aptio._proxy.proxy installs it on import
        raise RuntimeError("aptio._proxy.proxy was not imported: no proxy can be made")
    return maker(value, sender)


def _crosses_as_proxy(value: object) -> bool:
    spec = getattr(type(value), SPEC_ATTRIBUTE, None)
    return isinstance(spec, ClassSpec) and not spec.agile


def _sender(fallback: ApartmentContract) -> ApartmentContract:
    """The apartment a value is sent from: the caller's, else (a thread in no apartment, no
    MTA yet) ``fallback``, the target's (unless it lives in another process)."""
    here = current_site()
    if here is not None:
        return here
    if fallback._remote:
        raise NotInitializedError(
            "an object sent to another process from a thread in no apartment needs a home "
            "here: send it from an apartment (or create the MTA first, aptio.mta())"
        )
    return fallback


def _is_container(kind: type) -> bool:
    return kind in _CONTAINERS or (issubclass(kind, tuple) and hasattr(kind, "_make"))


def all_scalar(items: Any) -> bool:
    """True if every item of the iterable ``items`` is a plain value."""
    # Plain loops: compiled, each step is a type check and a set probe in C (the C-walked
    # ``issuperset(map(type, items))`` cost a map object and two method lookups per call),
    # and a loop over a declared tuple or list indexes it, with no iterator object (other
    # iterables, dict views and sets, are copied into a list as in ``_all_rows``). ``int`` and
    # ``str``, the usual items, are recognized by identity before the set probe.
    kind = type(items)
    if kind is tuple:
        row: tuple[Any, ...] = items
        for item in row:
            kind = type(item)
            if kind is not int and kind is not str and kind not in _SCALARS:
                return False
        return True
    sequence: list[Any] = items if kind is list else list(items)
    for item in sequence:
        kind = type(item)
        if kind is not int and kind is not str and kind not in _SCALARS:
            return False
    return True


def _all_rows(items: Any) -> bool:
    """True if every item of ``items`` is a plain value or a list or tuple of plain values
    (one level down, with no cycle bookkeeping: a list holding itself is not all plain)."""
    sequence: list[Any] = items if type(items) is list else list(items)  # indexed, compiled
    for item in sequence:
        kind = type(item)
        if (kind is tuple or kind is list) and all_scalar(item):
            continue
        if kind in _SCALARS:
            continue
        return False
    return True


def needs_marshaling(value: object, seen: set[int] | None = None) -> bool:
    """True if ``value`` is, or (walking the ordinary containers) holds, something that
    crosses an apartment boundary by reference: a coclass instance or a generator."""
    kind = type(value)
    if kind is not list and kind is not tuple:  # else the usual containers: to their items
        if kind in _SCALARS:
            return False
        if not _is_container(kind):
            return _crosses_as_proxy(value) or is_generator(value)
    items: Any = value
    if kind is dict:
        mapping: dict[Any, Any] = value  # type: ignore[assignment]
        if all_scalar(mapping.keys()):
            items = mapping.values()
        else:
            items = [*mapping.keys(), *mapping.values()]
    if all_scalar(items):
        return False  # the common case: a container of plain values
    if seen is None and _all_rows(items):
        return False  # the next most common: rows (lists or tuples of plain values)
    if seen is None:
        seen = set()
    elif id(value) in seen:
        return False  # a cycle: this container is being looked at already
    seen.add(id(value))
    for item in items:  # noqa: SIM110 - a loop, not any() over a generator: compiled, no frame
        if needs_marshaling(item, seen):
            return True
    return False


def _marshaled(value: Any, sender: ApartmentContract, memo: dict[int, Any]) -> Any:
    """``value`` with what crosses by reference replaced (containers copied, cycles kept)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if not _is_container(kind):
        if _crosses_as_proxy(value):
            return _as_proxy(value, sender)
        if is_generator(value):
            return CallIterator.over(value, sender)
        return value
    key = id(value)
    done = memo.get(key)
    if done is not None:
        return done
    if not needs_marshaling(value):
        memo[key] = value
        return value
    if kind is list:
        copy: list[Any] = []
        memo[key] = copy  # a cycle back to this list reaches the copy
        for item in value:
            copy.append(_marshaled(item, sender, memo))
        return copy
    if kind is dict:
        mapping: dict[Any, Any] = {}
        memo[key] = mapping
        for k, v in value.items():
            mapping[_marshaled(k, sender, memo)] = _marshaled(v, sender, memo)
        return mapping
    items = [_marshaled(item, sender, memo) for item in value]
    plain = kind is tuple or kind is set or kind is frozenset
    made = kind(items) if plain else kind._make(items)  # else a named tuple
    memo[key] = made
    return made


def marshal_args(args: tuple[Any, ...], fallback: ApartmentContract) -> tuple[Any, ...]:
    """``args`` with what crosses by reference replaced: coclass instances become proxies,
    generators CallIterators, also inside lists, tuples, dicts and sets (copied only if
    needed). ``fallback`` is their home when the caller is in no apartment."""
    for value in args:
        kind = type(value)
        if kind is int or kind is str or kind in _SCALARS:
            continue
        if needs_marshaling(value):
            sender = _sender(fallback)
            memo: dict[int, Any] = {}
            return tuple([_marshaled(item, sender, memo) for item in args])
    return args


def marshal_kwargs(kwargs: dict[str, Any], fallback: ApartmentContract) -> dict[str, Any]:
    """``kwargs`` marshaled as :func:`marshal_args` does (copied only if needed)."""
    for value in kwargs.values():
        if type(value) in _SCALARS:
            continue
        if needs_marshaling(value):
            sender = _sender(fallback)
            memo: dict[int, Any] = {}
            return {key: _marshaled(item, sender, memo) for key, item in kwargs.items()}
    return kwargs


def marshal_value(value: Any, sender: ApartmentContract) -> Any:
    """A value crossing an apartment boundary from ``sender``: coclass instances (also inside
    the ordinary containers) become proxies and generators CallIterators; proxies stay proxies;
    every other value (agile objects too) passes by reference as it is."""
    if type(value) in _SCALARS or not needs_marshaling(value):
        return value  # as most results are: no copy, no memo
    return _marshaled(value, sender, {})
