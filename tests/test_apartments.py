"""Runtime and apartments: starting, identity, kinds, loop types, errors for misuse."""

from __future__ import annotations

import asyncio
import threading

import pytest

import aptio
from aptio import ApartmentKind
from aptio.testing import live_apartment_threads

from apt_classes import ApartmentObj


@pytest.mark.asyncio
async def test_main_sta_adopts_the_running_loop_and_thread(main: aptio.Apartment) -> None:
    assert main.kind is ApartmentKind.MAIN_STA
    assert aptio.current_apartment() is main
    assert not main.is_closed


@pytest.mark.asyncio
async def test_start_sta_runs_a_loop_on_its_own_named_thread(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("worker")
    assert sta.kind is ApartmentKind.STA
    assert sta.name == "worker"
    obj = await sta.create(ApartmentObj)
    apartment, thread_name = await obj.where()
    assert apartment is sta
    assert thread_name == "aptio worker"
    assert thread_name != threading.current_thread().name


@pytest.mark.asyncio
async def test_sta_runs_the_same_loop_type_as_the_main_sta(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()

    @aptio.coclass
    class LoopType:
        def loop_module(self) -> str:
            return type(asyncio.get_running_loop()).__module__

    obj = await sta.create(LoopType)
    expected = type(asyncio.get_running_loop()).__module__
    assert (await obj.loop_module()).split(".")[0] == expected.split(".")[0]


@pytest.mark.asyncio
async def test_use_uvloop_false_opts_out(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta(use_uvloop=False)

    @aptio.coclass
    class LoopType:
        def loop_module(self) -> str:
            return type(asyncio.get_running_loop()).__module__

    obj = await sta.create(LoopType)
    assert (await obj.loop_module()).startswith("asyncio")


@pytest.mark.asyncio
async def test_sta_names_default_to_a_counter(main: aptio.Apartment) -> None:
    first = await aptio.start_sta()
    second = await aptio.start_sta()
    assert first.name != second.name
    assert first.name.startswith("STA-")


@pytest.mark.asyncio
async def test_mta_is_one_per_process(main: aptio.Apartment) -> None:
    assert aptio.mta() is aptio.mta()
    assert aptio.mta().kind is ApartmentKind.MTA


@pytest.mark.asyncio
async def test_a_plain_thread_is_an_implicit_mta_member_once_the_mta_exists(
    main: aptio.Apartment,
) -> None:
    seen: list[aptio.Apartment | None] = []

    def probe() -> None:
        seen.append(aptio.current_apartment())

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen == [None]
    mta = aptio.mta()
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen[1] is mta


@pytest.mark.asyncio
async def test_apartment_is_an_async_context_manager(main: aptio.Apartment) -> None:
    async with await aptio.start_sta("scoped") as sta:
        assert not sta.is_closed
    assert sta.is_closed
    assert not [t for t in live_apartment_threads() if t.name == "aptio scoped"]


@pytest.mark.asyncio
async def test_main_sta_twice_raises_changed_mode(main: aptio.Apartment) -> None:
    with pytest.raises(aptio.ChangedModeError, match="already belongs"):
        async with aptio.main_sta():
            pass  # pragma: no cover


@pytest.mark.asyncio
async def test_run_inside_a_running_loop_raises_changed_mode() -> None:
    async def body() -> None:  # pragma: no cover - never runs
        pass

    with pytest.raises(aptio.ChangedModeError, match=r"main_sta\(\)"):
        aptio.run(body())


@pytest.mark.asyncio
async def test_aptio_without_a_runtime_raises_not_initialized() -> None:
    with pytest.raises(aptio.NotInitializedError, match=r"aptio\.run\(main\)"):
        await aptio.create(ApartmentObj)
    with pytest.raises(aptio.NotInitializedError):
        aptio.mta()
    with pytest.raises(aptio.NotInitializedError):
        await aptio.start_sta()
    assert aptio.current_apartment() is None


def test_run_returns_the_result_and_leaves_no_thread_behind() -> None:
    async def body() -> int:
        for _ in range(3):
            sta = await aptio.start_sta()
            obj = await sta.create(ApartmentObj)
            await obj.where()
        free = aptio.mta()
        assert free.kind is ApartmentKind.MTA
        return 7

    assert aptio.run(body) == 7
    assert live_apartment_threads() == []


def test_run_accepts_a_coroutine_and_propagates_its_exception() -> None:
    async def body() -> None:
        await aptio.start_sta()
        raise KeyError("out")

    with pytest.raises(KeyError, match="out"):
        aptio.run(body())
    assert live_apartment_threads() == []


def test_run_with_asyncio_loops() -> None:
    async def body() -> str:
        sta = await aptio.start_sta()

        @aptio.coclass
        class LoopType:
            def loop_module(self) -> str:
                return type(asyncio.get_running_loop()).__module__

        obj = await sta.create(LoopType)
        return await obj.loop_module()

    assert aptio.run(body, use_uvloop=False).startswith("asyncio")


def test_run_twice_in_one_process() -> None:
    async def body() -> aptio.ApartmentKind:
        here = aptio.current_apartment()
        assert here is not None
        return here.kind

    assert aptio.run(body) is ApartmentKind.MAIN_STA
    assert aptio.run(body) is ApartmentKind.MAIN_STA


def test_a_second_runtime_on_another_thread_raises_changed_mode() -> None:
    started = threading.Event()
    finish = threading.Event()
    errors: list[BaseException] = []

    async def holder() -> None:
        started.set()
        while not finish.is_set():
            await asyncio.sleep(0.001)

    def other() -> None:
        async def body() -> None:
            async with aptio.main_sta():
                pass  # pragma: no cover

        try:
            asyncio.run(body())
        except BaseException as error:
            errors.append(error)
        finally:
            finish.set()

    def start_other() -> None:
        started.wait()
        threading.Thread(target=other).start()

    threading.Thread(target=start_other).start()
    aptio.run(holder)
    assert len(errors) == 1
    assert isinstance(errors[0], aptio.ChangedModeError)
