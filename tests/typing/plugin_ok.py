"""The mypy plugin: every proxy call of an undeclared proxy typed from the class itself."""
# checkers: mypy

from __future__ import annotations

from typing import assert_type

import aptio

from shapes import Clock, Counter, CounterProxy, Shelf, Store, Widget


async def main() -> None:
    store = await aptio.create(Store, "/tmp/store")
    assert_type(store, aptio.Proxy[Store])
    assert_type(store.put("a", b"1"), aptio.Call[int])
    assert_type(await store.get("a"), bytes | None)
    assert_type(await store.flush(), bool)  # a coroutine method: its result, unwrapped
    assert_type(store.keys(), aptio.CallIterator[str])
    assert_type(store.values(), aptio.CallIterator[bytes])
    async for key in store.keys():
        assert_type(key, str)
    # Coclass instances cross as proxies; agile ones as themselves.
    assert_type(await store.widget(), aptio.Proxy[Widget])
    assert_type(await store.maybe_widget(), aptio.Proxy[Widget] | None)
    assert_type(await store.clock(), Clock)
    assert_type(await store.widgets(), list[aptio.Proxy[Widget]])  # containers are walked
    assert_type(await store.by_name(), dict[str, aptio.Proxy[Widget] | None])
    assert_type(await store.pair(), tuple[aptio.Proxy[Widget], int])
    assert_type(store.numbers(), aptio.CallIterator[int])  # a generator object crosses too
    assert_type(await store.counter(), CounterProxy)
    # A coclass parameter takes the object or a proxy to it.
    widget = await store.widget()
    assert_type(store.measure(widget), aptio.Call[int])
    assert_type(await store._private(), str)
    # A proxy typed Proxy[Counter] by hand is typed by the plugin too.
    counter: aptio.Proxy[Counter] = await aptio.create(Counter)
    assert_type(await counter.undeclared(), None)
    shelf = await aptio.create(Shelf, 3)
    assert_type(shelf, aptio.Proxy[Shelf[int]])
    assert_type(await shelf.get(), int)
    assert_type(await shelf.same(), Shelf[int])
    assert_type(shelf.pick(1), aptio.Call[int])
    assert_type(shelf.pick("a"), aptio.Call[str])
    assert_type(shelf.parse("1"), aptio.Call[int])
    assert_type(shelf.kind(), aptio.Call[str])
