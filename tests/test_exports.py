"""The public surface: every name in __all__ exists, and nothing public is missing from it."""

from __future__ import annotations

import types

import aptio


def test_all_names_exist() -> None:
    for name in aptio.__all__:
        assert hasattr(aptio, name), name


def test_all_is_complete_and_unique() -> None:
    public = {
        name
        for name, value in vars(aptio).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)  # submodules
    }
    assert public == set(aptio.__all__)
    assert len(aptio.__all__) == len(set(aptio.__all__))


def test_every_error_says_when_it_is_raised() -> None:
    for name in aptio.__all__:
        obj = getattr(aptio, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, aptio.AptioError)
            assert obj.__doc__ and "Raised when" in obj.__doc__, name
