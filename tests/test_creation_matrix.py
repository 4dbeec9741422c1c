"""The creation matrix of COM_SPEC section 2, for every creator kind and threading model."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import aptio
from aptio import ApartmentKind

from apt_classes import (
    ApartmentObj,
    BothObj,
    Creator,
    FreeObj,
    NeutralCreator,
    NeutralObj,
    SingleObj,
    StaCreator,
    Undecorated,
)

ALL = [SingleObj, ApartmentObj, FreeObj, BothObj, NeutralObj]


async def _locate(proxy: Any) -> tuple[aptio.Apartment, aptio.Apartment | None, str]:
    apartment, thread = await proxy.where()
    return aptio.apartment_of(proxy), apartment, thread


@pytest.mark.asyncio
async def test_from_the_main_sta(main: aptio.Apartment) -> None:
    here = threading.current_thread().name
    expected = {
        SingleObj: (main, here),
        ApartmentObj: (main, here),
        BothObj: (main, here),
    }
    for cls, (apartment, thread) in expected.items():
        home, seen, seen_thread = await _locate(await aptio.create(cls))
        assert home is apartment and seen is apartment and seen_thread == thread, cls
    home, seen, thread = await _locate(await aptio.create(FreeObj))
    assert home is aptio.mta() and seen is aptio.mta()
    assert thread.startswith("aptio MTA worker")
    home, seen, thread = await _locate(await aptio.create(NeutralObj))
    assert home.kind is ApartmentKind.NEUTRAL and seen is home
    assert thread == here  # P0: runs on the caller's thread


@pytest.mark.asyncio
async def test_undecorated_classes_count_as_apartment(main: aptio.Apartment) -> None:
    home, _, _ = await _locate(await aptio.create(Undecorated))
    assert home is main
    sta = await aptio.start_sta()
    home, _, thread = await _locate(await sta.create(Undecorated))
    assert home is sta and thread == f"aptio {sta.name}"


@pytest.mark.asyncio
async def test_from_another_sta(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("other")
    creator = await sta.create(StaCreator)
    cases = {
        SingleObj: main,
        ApartmentObj: sta,
        BothObj: sta,
        FreeObj: aptio.mta(),
    }
    for cls, expected in cases.items():
        home, (seen, _) = await creator.create_and_locate(cls)
        assert home is expected and seen is expected, cls
    home, (seen, thread) = await creator.create_and_locate(NeutralObj)
    assert home.kind is ApartmentKind.NEUTRAL
    assert thread == "aptio other"  # NA calls run on the calling STA's thread


@pytest.mark.asyncio
async def test_from_the_mta(main: aptio.Apartment) -> None:
    creator = await aptio.create(Creator)
    assert aptio.apartment_of(creator) is aptio.mta()
    home, (seen, _) = await creator.create_and_locate(SingleObj)
    assert home is main and seen is main
    home, (seen, thread) = await creator.create_and_locate(ApartmentObj)
    assert home.kind is ApartmentKind.STA and home.name == "host STA"
    assert thread == "aptio host STA"
    for cls in (FreeObj, BothObj):
        home, (seen, thread) = await creator.create_and_locate(cls)
        assert home is aptio.mta() and seen is aptio.mta(), cls
        assert thread == "aptio MTA loop"  # created and called directly on the MTA thread
    home, (seen, _) = await creator.create_and_locate(NeutralObj)
    assert home.kind is ApartmentKind.NEUTRAL


@pytest.mark.asyncio
async def test_one_host_sta_serves_every_mta_creator(main: aptio.Apartment) -> None:
    creator = await aptio.create(Creator)
    homes = await asyncio.gather(*(creator.create_and_locate(ApartmentObj) for _ in range(8)))
    assert len({id(home) for home, _ in homes}) == 1


@pytest.mark.asyncio
async def test_from_a_plain_thread_with_its_own_loop(main: aptio.Apartment) -> None:
    """A thread in no apartment joins the MTA implicitly (COM_SPEC A8)."""
    results: dict[type, Any] = {}

    def worker() -> None:
        async def body() -> None:
            assert aptio.current_apartment() is None or aptio.current_apartment() is aptio.mta()
            for cls in ALL:
                proxy = await aptio.create(cls)
                results[cls] = (aptio.apartment_of(proxy), await proxy.where())

        asyncio.run(body())

    thread = threading.Thread(target=worker, name="plain")
    thread.start()
    await asyncio.to_thread(thread.join)
    mta = aptio.mta()
    assert results[SingleObj][0] is main
    assert results[ApartmentObj][0].name == "host STA"
    assert results[FreeObj][0] is mta
    assert results[FreeObj][1][1] == "plain"  # MTA member calling a FREE object: direct
    assert results[BothObj][0] is mta
    assert results[BothObj][1][1] == "plain"
    assert results[NeutralObj][0].kind is ApartmentKind.NEUTRAL
    assert results[NeutralObj][1][1] == "plain"


@pytest.mark.asyncio
async def test_from_the_na_on_an_sta_thread(main: aptio.Apartment) -> None:
    creator = await aptio.create(NeutralCreator)  # called from the main STA's thread
    assert (await creator.locate_self()).kind is ApartmentKind.NEUTRAL
    home, _ = await creator.create_and_locate(SingleObj)
    assert home is main
    home, _ = await creator.create_and_locate(ApartmentObj)
    assert home is main  # the thread's STA
    home, _ = await creator.create_and_locate(FreeObj)
    assert home is aptio.mta()
    for cls in (BothObj, NeutralObj):
        home, _ = await creator.create_and_locate(cls)
        assert home.kind is ApartmentKind.NEUTRAL, cls


@pytest.mark.asyncio
async def test_from_the_na_on_an_mta_thread(main: aptio.Apartment) -> None:
    @aptio.coclass(aptio.ThreadingModel.FREE)
    class ViaMta:
        async def run(self, cls: type) -> Any:
            creator = await aptio.create(NeutralCreator)
            return await creator.create_and_locate(cls)

    via = await aptio.create(ViaMta)
    home, _ = await via.run(ApartmentObj)
    assert home.name == "host STA"
    home, _ = await via.run(SingleObj)
    assert home is main
    home, _ = await via.run(FreeObj)
    assert home is aptio.mta()
    home, _ = await via.run(BothObj)
    assert home.kind is ApartmentKind.NEUTRAL


@pytest.mark.asyncio
async def test_apartment_create_acts_as_if_from_that_apartment(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    assert aptio.apartment_of(await sta.create(BothObj)) is sta
    assert aptio.apartment_of(await sta.create(SingleObj)) is main
    assert aptio.apartment_of(await aptio.mta().create(ApartmentObj)).name == "host STA"
    assert aptio.apartment_of(await aptio.mta().create(BothObj)) is aptio.mta()


@pytest.mark.asyncio
async def test_create_of_something_that_is_not_a_class(main: aptio.Apartment) -> None:
    with pytest.raises(TypeError, match=r"needs a class"):
        await aptio.create(ApartmentObj())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs a class"):
        await aptio.create(len)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_an_exception_in_init_reaches_the_creator(main: aptio.Apartment) -> None:
    @aptio.coclass
    class Broken:
        def __init__(self, value: int) -> None:
            raise ValueError(f"bad value {value}")

    sta = await aptio.start_sta()
    with pytest.raises(ValueError, match="bad value 3"):
        await sta.create(Broken, 3)
    with pytest.raises(TypeError):
        await sta.create(Broken)  # missing argument: the TypeError comes from the target
