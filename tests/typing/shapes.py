"""Classes the typed programs here use: one with a declared proxy, one without."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Generic, Self, TypeVar, overload

import aptio

T = TypeVar("T")


@aptio.coclass
class Widget:
    def __init__(self, size: int) -> None:
        self._size = size

    def size(self) -> int:
        return self._size


@aptio.coclass(agile=True)
class Clock:
    def now(self) -> float:
        return 0.0


@aptio.coclass
class Counter(aptio.ProxiedAs["CounterProxy"]):
    """A class with a declared proxy: every checker types its proxies."""

    def __init__(self, start: int = 0, *, label: str = "") -> None:
        self.value = start
        self.label = label

    @property
    def current(self) -> int:
        return self.value

    def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    async def slow_double(self) -> int:
        await asyncio.sleep(0)
        self.value *= 2
        return self.value

    def name(self) -> str:
        return self.label

    def rows(self) -> Iterator[int]:
        yield from range(self.value)

    async def labels(self) -> AsyncIterator[str]:
        yield self.label

    def twin(self) -> Counter:
        return Counter(self.value)

    def undeclared(self) -> None:
        pass


class CounterProxy(aptio.DeclaredProxy[Counter]):
    increment = aptio.proxy_method(Counter.increment)
    slow_double = aptio.proxy_method(Counter.slow_double)
    name = aptio.proxy_method(Counter.name)
    rows = aptio.proxy_method(Counter.rows)
    labels = aptio.proxy_method(Counter.labels)
    twin = aptio.proxy_method(Counter.twin)


@aptio.coclass
class Store:
    """A class without a declared proxy: the mypy plugin types its proxies."""

    kind = "store"

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    def size(self) -> int:
        return 0

    def get(self, key: str) -> bytes | None:
        return None

    def describe(self) -> str:
        return self.path

    def put(self, key: str, value: bytes) -> int:
        return len(value)

    async def flush(self) -> bool:
        return True

    def keys(self) -> Iterator[str]:
        yield from ()

    async def values(self) -> AsyncIterator[bytes]:
        yield b""

    def widget(self) -> Widget:
        return Widget(1)

    def maybe_widget(self) -> Widget | None:
        return None

    def clock(self) -> Clock:
        return Clock()

    def counter(self) -> Counter:
        return Counter()

    def widgets(self) -> list[Widget]:
        return [Widget(1)]

    def by_name(self) -> dict[str, Widget | None]:
        return {}

    def pair(self) -> tuple[Widget, int]:
        return Widget(1), 1

    def numbers(self) -> Generator[int, None, None]:
        return (n for n in range(3))  # not a generator method, but it returns a generator

    def measure(self, widget: Widget) -> int:
        return 0

    def _private(self) -> str:
        return ""


class Shelf(Generic[T]):
    """Method shapes the plugin handles: generic, Self, overloads, static and class methods."""

    def __init__(self, item: T) -> None:
        self.item = item

    @functools.cached_property
    def cached(self) -> int:
        return 0

    def get(self) -> T:
        return self.item

    def same(self) -> Self:
        return self

    @overload
    def pick(self, key: int) -> int: ...
    @overload
    def pick(self, key: str) -> str: ...
    def pick(self, key: int | str) -> int | str:
        return key

    @staticmethod
    def parse(text: str) -> int:
        return int(text)

    @classmethod
    def kind(cls) -> str:
        return cls.__name__
