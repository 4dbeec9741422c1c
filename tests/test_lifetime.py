"""Lifetime: the home apartment keeps an object alive exactly while proxies to it exist, and
the last reference is dropped on the object's own thread."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import weakref
from typing import Any, ClassVar

import pytest

import aptio
from aptio.testing import apartment_barrier


@aptio.coclass
class Tracked:
    deaths: ClassVar[list[str]] = []

    def ref(self) -> weakref.ref[Any]:
        return weakref.ref(self)

    def __del__(self) -> None:
        Tracked.deaths.append(threading.current_thread().name)


@pytest.mark.asyncio
async def test_an_object_lives_while_a_proxy_exists(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    proxy = await sta.create(Tracked)
    ref = await proxy.ref()
    gc.collect()
    assert ref() is not None
    second = proxy
    del proxy
    gc.collect()
    assert ref() is not None  # `second` still holds it
    del second
    gc.collect()
    await apartment_barrier(sta)  # the release was posted to the STA ahead of the barrier
    gc.collect()
    assert ref() is None


@pytest.mark.asyncio
async def test_the_last_reference_is_dropped_on_the_home_thread(main: aptio.Apartment) -> None:
    Tracked.deaths.clear()
    sta = await aptio.start_sta("home")
    proxy = await sta.create(Tracked)
    await proxy.ref()
    del proxy
    gc.collect()
    await apartment_barrier(sta)
    assert Tracked.deaths == ["aptio home"]


@pytest.mark.asyncio
async def test_proxies_passed_around_keep_the_object_alive(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    holder_sta = await aptio.start_sta()

    @aptio.coclass
    class Holder:
        def __init__(self) -> None:
            self.held: Any = None

        def hold(self, proxy: Any) -> None:
            self.held = proxy

        def drop(self) -> None:
            self.held = None

    holder = await holder_sta.create(Holder)
    proxy = await sta.create(Tracked)
    ref = await proxy.ref()
    await holder.hold(proxy)
    del proxy
    gc.collect()
    await apartment_barrier(sta)
    assert ref() is not None
    await holder.drop()
    gc.collect()
    await apartment_barrier(sta)
    gc.collect()
    assert ref() is None


@pytest.mark.asyncio
async def test_many_proxies_one_stub(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class Echo:
        def same(self, value: Any) -> Any:
            return value

        def me(self) -> Echo:
            return self

    echo = await sta.create(Echo)
    again = await echo.me()
    assert again == echo
    assert hash(again) == hash(echo)
    results = await asyncio.gather(*(echo.me() for _ in range(10)))
    assert all(result == echo for result in results)


@pytest.mark.asyncio
async def test_objects_called_before_release_still_die_at_home(main: aptio.Apartment) -> None:
    """A proxy call caches the method bound to the object on its stub, which holds the object
    too: releasing from another thread must carry that home with the object. The switch
    interval is shortened so the home thread often runs the release while the releasing
    thread is still inside the stub's finalizer."""
    deaths: list[str] = []

    @aptio.coclass
    class Called:
        def ping(self) -> None:
            pass

        def __del__(self) -> None:
            deaths.append(threading.current_thread().name)

    sta = await aptio.start_sta("home")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            proxy = await sta.create(Called)
            await proxy.ping()
            del proxy
    finally:
        sys.setswitchinterval(interval)
    gc.collect()
    await apartment_barrier(sta)
    assert len(deaths) == 300
    assert set(deaths) == {"aptio home"}
