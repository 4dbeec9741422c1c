"""A call goes wherever a coroutine goes: ``asyncio.create_task``, ``TaskGroup.create_task``
and anyio's ``start_soon`` take one, with the call's semantics (ordering, cancellation)."""

from __future__ import annotations

import asyncio
import collections.abc
import sys
import threading
from typing import Any

import anyio
import pytest

import aptio


@aptio.coclass
class Worker:
    def __init__(self) -> None:
        self.log: list[Any] = []
        self.gate = aptio.Event()
        self.started = aptio.Event()
        self.saw_cancel = aptio.Event()
        self.cancelled: list[str] = []

    def record(self, item: Any) -> Any:
        self.log.append(item)
        return item

    async def arecord(self, item: Any) -> Any:
        self.log.append(item)
        return item

    async def hang(self, tag: str) -> None:
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(tag)
            self.saw_cancel.set()
            raise

    async def wait_started(self) -> None:
        await self.started.wait()

    async def wait_cancelled(self) -> None:
        await self.saw_cancel.wait()

    def get_log(self) -> list[Any]:
        return list(self.log)

    def get_cancelled(self) -> list[str]:
        return list(self.cancelled)

    def thread(self) -> str:
        return threading.current_thread().name


@pytest.mark.asyncio
async def test_create_task_and_task_groups_take_a_call(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("home")
    worker = await sta.create(Worker)
    call = worker.record(1)
    assert isinstance(call, collections.abc.Coroutine)
    assert await asyncio.create_task(call) == 1
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(worker.record(i) if i % 2 else worker.arecord(i))
                 for i in range(2, 40)]
    assert [task.result() for task in tasks] == list(range(2, 40))
    assert await worker.get_log() == list(range(1, 40))  # started in the order sent
    assert await asyncio.create_task(worker.thread()) == "aptio home"


@pytest.mark.asyncio
async def test_anyio_task_groups_start_a_proxy_method(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    worker = await sta.create(Worker)
    async with anyio.create_task_group() as group:
        for i in range(10):
            group.start_soon(worker.record, i)
    assert await worker.get_log() == list(range(10))


@pytest.mark.asyncio
async def test_cancelling_the_task_cancels_the_call(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    worker = await sta.create(Worker)
    task = asyncio.create_task(worker.hang("running"))
    await worker.wait_started()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await worker.wait_cancelled()  # the method saw CancelledError in its own apartment
    assert await worker.get_cancelled() == ["running"]


@pytest.mark.asyncio
async def test_a_task_cancelled_before_its_first_step_cancels_its_call(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    worker = await sta.create(Worker)
    for _ in range(20):
        call = worker.hang("early")
        task = asyncio.get_running_loop().create_task(call)
        task.cancel()  # before the task ever ran: the call is cancelled all the same
        with pytest.raises(asyncio.CancelledError):
            await task
        assert call.cancelled()


@pytest.mark.asyncio
async def test_a_task_group_failing_cancels_the_calls_of_its_other_tasks(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    worker = await sta.create(Worker)
    hanging = worker.hang("grouped")

    async def fail() -> None:
        await worker.record("before the failure")
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup):
        async with asyncio.TaskGroup() as group:
            group.create_task(hanging)
            group.create_task(fail())
    assert hanging.cancelled()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager task factories are 3.12+")
@pytest.mark.asyncio
async def test_an_eager_task_factory_drives_a_call(main: aptio.Apartment) -> None:
    loop = asyncio.get_running_loop()
    if type(loop).__module__.startswith("uvloop"):
        pytest.skip("uvloop's create_task does not take 3.13's eager task factory")
    sta = await aptio.start_sta()
    worker = await sta.create(Worker)
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    try:
        assert await asyncio.create_task(worker.record("eager")) == "eager"
    finally:
        loop.set_task_factory(None)


def test_run_refuses_a_sync_main_before_running_it() -> None:
    ran: list[str] = []

    def sync_main() -> int:
        ran.append("ran")
        return 1

    with pytest.raises(TypeError, match=r"^aptio\.run\(\) takes a coroutine or an async "
                                        r"function .*not function 'test_run_refuses"):
        aptio.run(sync_main)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nothing was run"):
        aptio.run(lambda: asyncio.sleep(0))  # type: ignore[arg-type, return-value]
    assert ran == []

    class Main:
        async def __call__(self) -> int:
            return 7

    assert aptio.run(Main()) == 7
