"""Debug mode (COM: RPC_E_WRONG_THREAD): a raw coclass instance used outside its home
apartment raises WrongApartmentError where it is misused."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import pytest

import aptio


@aptio.coclass
class Leaky:
    def __init__(self) -> None:
        self.value = 1

    def get(self) -> int:
        return self.value

    def leak(self) -> Leaky:
        return self  # crosses as a proxy (correct)

    def leak_in_a_list(self) -> list[Leaky]:
        return [self]  # the ordinary containers are walked: it crosses as a proxy

    def leak_in_a_box(self) -> Box:
        return Box(self)  # other objects pass by reference: the raw object escapes


@dataclasses.dataclass
class Box:
    item: Leaky


@aptio.coclass(agile=True)
class Shared:
    def get(self) -> int:
        return 2


def test_debug_mode_catches_a_leaked_raw_object() -> None:
    async def body() -> None:
        sta = await aptio.start_sta("home")
        leaky = await sta.create(Leaky)
        assert await leaky.get() == 1
        assert aptio.is_proxy(await leaky.leak())
        (inside,) = await leaky.leak_in_a_list()
        assert aptio.is_proxy(inside)
        raw = (await leaky.leak_in_a_box()).item
        assert not aptio.is_proxy(raw)
        assert raw.value == 1  # plain data attributes are not checked
        with pytest.raises(aptio.WrongApartmentError, match=r"lives in 'home'.*pass a proxy"):
            raw.get()
        shared = await sta.create(Shared)
        assert aptio.unwrap(shared).get() == 2  # agile objects are usable anywhere

    aptio.run(body, debug=True)


def test_debug_mode_is_off_by_default_and_uninstalled_after_the_run() -> None:
    async def leak() -> Any:
        sta = await aptio.start_sta()
        leaky = await sta.create(Leaky)
        return (await leaky.leak_in_a_box()).item

    raw = aptio.run(leak)
    assert raw.get() == 1  # no check without debug mode
    assert "__getattribute__" not in vars(Leaky)

    async def checked() -> None:
        assert "__getattribute__" in vars(Leaky)

    aptio.run(checked, debug=True)
    assert "__getattribute__" not in vars(Leaky)


def test_the_environment_variable_turns_debug_mode_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APTIO_DEBUG", "1")

    async def body() -> None:
        sta = await aptio.start_sta()
        leaky = await sta.create(Leaky)
        raw = (await leaky.leak_in_a_box()).item
        with pytest.raises(aptio.WrongApartmentError):
            raw.get()

    aptio.run(body)


def test_debug_mode_allows_use_inside_the_home_apartment() -> None:
    async def body() -> None:
        local = Leaky()
        assert aptio.unwrap(await aptio.create(Leaky)).get() == 1
        assert local.get() == 1  # never created through aptio: no home recorded

        @aptio.coclass(aptio.ThreadingModel.FREE)
        class Worker:
            def run(self) -> int:
                inner = Leaky()
                return inner.get()

        assert await (await aptio.create(Worker)).run() == 1
        results: list[int] = []
        thread = threading.Thread(target=lambda: results.append(local.get()))
        thread.start()
        await asyncio.to_thread(thread.join)
        assert results == [1]

    aptio.run(body, debug=True)
