"""Debug mode: catch leaked raw objects where they are misused (COM: RPC_E_WRONG_THREAD).

With debug on (``aptio.run(..., debug=True)``, ``main_sta(debug=True)`` or the environment
variable ``APTIO_DEBUG=1``), every coclass gets a checking ``__getattribute__``: fetching a
method of an instance from outside the instance's home apartment raises WrongApartmentError,
so a raw object that escaped its apartment fails where it is used, not later in a race.
With debug off nothing is installed: the check costs nothing.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from .._apartments.base import current_apartment
from .._call.contract import ApartmentContract
from .._values.declarations import HOME_ATTRIBUTE, SPEC_ATTRIBUTE, ClassSpec, declaration_hooks
from .._values.errors import WrongApartmentError

__all__ = ["debug_enabled_by_environment", "disable", "enable", "note_coclass"]

_lock = threading.Lock()
_coclasses: weakref.WeakSet[type] = weakref.WeakSet()
_patched: dict[type, Any] = {}
_state = {"enabled": False}

_getattribute = object.__getattribute__


def debug_enabled_by_environment() -> bool:
    return os.environ.get("APTIO_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def note_coclass(cls: type) -> None:
    """Called for every ``@coclass``: remember the class, and check it at once if debug is on."""
    with _lock:
        _coclasses.add(cls)
        if _state["enabled"]:
            _patch(cls)


declaration_hooks.append(note_coclass)


def enable() -> None:
    with _lock:
        _state["enabled"] = True
        for cls in list(_coclasses):
            _patch(cls)


def disable() -> None:
    with _lock:
        _state["enabled"] = False
        for cls, original in list(_patched.items()):
            if original is None:
                delattr(cls, "__getattribute__")
            else:
                cls.__getattribute__ = original  # type: ignore[method-assign]
        _patched.clear()


def _patch(cls: type) -> None:
    if cls in _patched:
        return
    spec = cls.__dict__.get(SPEC_ATTRIBUTE)
    if not isinstance(spec, ClassSpec) or spec.agile:
        return  # agile objects may be used from everywhere
    _patched[cls] = cls.__dict__.get("__getattribute__")
    cls.__getattribute__ = _checked_getattribute  # type: ignore[method-assign, assignment]


def _checked_getattribute(self: Any, name: str) -> Any:
    value = _getattribute(self, name)
    if name[:2] == "__" or not callable(value):
        return value
    try:
        home = _getattribute(self, "__dict__").get(HOME_ATTRIBUTE)
    except AttributeError:  # __slots__ without a __dict__: its home is unknown
        return value
    if not isinstance(home, ApartmentContract) or home._is_current():
        return value
    here = current_apartment()
    raise WrongApartmentError(
        f"{type(self).__qualname__}.{name} used from "
        f"{here.name if here is not None else 'a thread in no apartment'!r} on a raw "
        f"object that lives in {home.name!r} (aptio debug mode): a raw object leaked out of "
        "its apartment; pass a proxy instead (aptio.create, or let the call marshal it)"
    )
