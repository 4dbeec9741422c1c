"""Declared proxies: the same types under every checker, no plugin needed."""
# checkers: mypy pyright

from __future__ import annotations

from typing import assert_type

import aptio

from shapes import Counter, CounterProxy


async def main() -> None:
    counter = await aptio.create(Counter, 10, label="c")
    assert_type(counter, CounterProxy)
    assert_type(counter.increment(5), aptio.Call[int])
    assert_type(counter.increment(), aptio.Call[int])
    assert_type(await counter.increment(by=2), int)
    assert_type(await counter.slow_double(), int)  # a coroutine method: its result, unwrapped
    assert_type(await counter.name(), str)
    assert_type(counter.rows(), aptio.CallIterator[int])
    assert_type(counter.labels(), aptio.CallIterator[str])
    async for label in counter.labels():
        assert_type(label, str)
    assert_type(await counter.twin(), CounterProxy)  # a Counter crosses as its proxy
    worker = await aptio.start_sta("worker")
    assert_type(await worker.create(Counter), CounterProxy)
    assert_type(aptio.apartment_of(counter), aptio.Apartment)
    assert_type(aptio.unwrap(counter), Counter)
    assert_type(aptio.is_proxy(counter), bool)
