"""Coclasses shared by the tests: one per threading model, each able to report where it runs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aptio
from aptio import ThreadingModel


class Where:
    """Reports the apartment and thread a call runs in."""

    def where(self) -> tuple[aptio.Apartment | None, str]:
        return aptio.current_apartment(), threading.current_thread().name

    async def awhere(self) -> tuple[aptio.Apartment | None, str]:
        await asyncio.sleep(0)
        return aptio.current_apartment(), threading.current_thread().name

    def thread_id(self) -> int:
        return threading.get_ident()


@aptio.coclass(ThreadingModel.SINGLE)
class SingleObj(Where):
    pass


@aptio.coclass(ThreadingModel.APARTMENT)
class ApartmentObj(Where):
    pass


@aptio.coclass(ThreadingModel.FREE)
class FreeObj(Where):
    pass


@aptio.coclass(ThreadingModel.BOTH)
class BothObj(Where):
    pass


@aptio.coclass(ThreadingModel.NEUTRAL)
class NeutralObj(Where):
    pass


class Undecorated(Where):
    pass


@aptio.coclass
class Counter:
    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.log: list[Any] = []

    def inc(self, by: int = 1) -> int:
        self.value += by
        return self.value

    async def ainc(self, by: int = 1) -> int:
        await asyncio.sleep(0)
        self.value += by
        return self.value

    def record(self, item: Any) -> None:
        self.log.append(item)

    async def arecord(self, item: Any) -> None:
        self.log.append(item)

    def get_log(self) -> list[Any]:
        return list(self.log)

    def get(self) -> int:
        return self.value


@aptio.coclass(ThreadingModel.FREE)
class Creator:
    """Creates objects from inside the MTA (its async methods run on MTA threads)."""

    async def create(self, cls: type) -> Any:
        return await aptio.create(cls)

    async def create_and_locate(self, cls: type) -> tuple[Any, Any]:
        proxy = await aptio.create(cls)
        return aptio.apartment_of(proxy), await proxy.where()


@aptio.coclass(ThreadingModel.APARTMENT)
class StaCreator:
    async def create_and_locate(self, cls: type) -> tuple[Any, Any]:
        proxy = await aptio.create(cls)
        return aptio.apartment_of(proxy), await proxy.where()


@aptio.coclass(ThreadingModel.NEUTRAL)
class NeutralCreator:
    async def create_and_locate(self, cls: type) -> tuple[Any, Any]:
        proxy = await aptio.create(cls)
        return aptio.apartment_of(proxy), await proxy.where()

    def locate_self(self) -> aptio.Apartment | None:
        return aptio.current_apartment()
