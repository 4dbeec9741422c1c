"""Coclass instances inside the ordinary containers (list, tuple, dict, set, frozenset, named
tuples, nested) cross apartments as proxies, in arguments and in results; plain containers pass
by reference, uncopied; other objects are not walked."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, NamedTuple

import pytest

import aptio


@aptio.coclass
class Item:
    def __init__(self, n: int) -> None:
        self.n = n

    def where(self) -> str:
        return threading.current_thread().name

    def get(self) -> int:
        return self.n


@aptio.coclass(agile=True)
class Agile:
    pass


class Pair(NamedTuple):
    left: Any
    right: Any


@dataclasses.dataclass
class Box:
    item: Any


@aptio.coclass
class Factory:
    def listed(self) -> list[Item]:
        return [Item(1), Item(2)]

    def nested(self) -> dict[str, Any]:
        return {"a": Item(1), "b": (Item(2), [Item(3)]), "c": frozenset({Item(4)}),
                "d": {Item(5)}, "pair": Pair(Item(6), 7)}

    def plain(self, value: Any) -> Any:
        return value  # crosses back as it came, when nothing in it needs marshaling

    def boxed(self) -> Box:
        return Box(Item(9))  # not walked: the raw object escapes (debug mode catches it)

    def agile(self) -> list[Agile]:
        return [Agile()]

    def where_are(self, things: Any) -> list[str]:
        """Call every proxy found in ``things`` (a flat list) synchronously from here."""
        return [thing.where().result() if aptio.is_proxy(thing) else "raw" for thing in things]

    async def call_all(self, things: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in things.items():
            if aptio.is_proxy(value):
                out[key] = (await value.where(), await value.get())
            else:
                out[key] = [(await v.where()) if aptio.is_proxy(v) else v for v in value]
        return out

    def cyclic(self) -> list[Any]:
        cycle: list[Any] = [Item(1)]
        cycle.append(cycle)
        return cycle


def _proxies_in(value: Any) -> list[Any]:
    if aptio.is_proxy(value):
        return [value]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _proxies_in(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [p for v in value for p in _proxies_in(v)]
    return []


@pytest.mark.asyncio
async def test_results_inside_containers_cross_as_proxies(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("home")
    factory = await sta.create(Factory)
    listed = await factory.listed()
    assert type(listed) is list and all(aptio.is_proxy(p) for p in listed)
    assert [await p.get() for p in listed] == [1, 2]
    nested = await factory.nested()
    assert type(nested["b"]) is tuple and type(nested["b"][1]) is list
    assert type(nested["c"]) is frozenset and type(nested["d"]) is set
    assert type(nested["pair"]) is Pair and nested["pair"].right == 7
    proxies = _proxies_in(nested)
    assert len(proxies) == 6
    assert {await p.where() for p in proxies} == {"aptio home"}


@pytest.mark.asyncio
async def test_arguments_inside_containers_cross_back_as_proxies(main: aptio.Apartment) -> None:
    """A nested container holding a proxy (to a third apartment) and raw objects of the caller:
    the proxy stays a proxy, the raw objects arrive as proxies to the caller's apartment."""
    sta = await aptio.start_sta("target")
    other = await aptio.start_sta("other")
    factory = await sta.create(Factory)
    remote = await other.create(Item, 1)
    local = Item(2)  # a raw object of the main STA (made directly, no home recorded)
    result = await factory.call_all({"remote": remote, "mixed": [local, 3]})
    assert result["remote"] == ("aptio other", 1)
    assert result["mixed"] == [threading.current_thread().name, 3]


@pytest.mark.asyncio
async def test_plain_containers_pass_by_reference_uncopied(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    factory = await sta.create(Factory)
    value = {"numbers": list(range(1000)), "nested": [(1, "a"), {2.5, None}], "b": b"x"}
    assert await factory.plain(value) is value
    proxy = await sta.create(Item, 5)
    with_proxy = [proxy, [1, 2]]
    assert await factory.plain(with_proxy) is with_proxy  # a proxy needs no marshaling


@pytest.mark.asyncio
async def test_rows_pass_uncopied_unless_a_row_holds_an_object(main: aptio.Apartment) -> None:
    # Rows of plain values (a database's fetchall) take a shortcut in the walk; a row holding
    # an object, or a list holding itself, must still be found, at any position.
    sta = await aptio.start_sta()
    factory = await sta.create(Factory)
    rows = [(n, str(n)) for n in range(50)] + [[1.5, None], 7]
    assert await factory.plain(rows) is rows
    itself: list[Any] = [(1, 2)]
    itself.append(itself)
    assert await factory.plain(itself) is itself
    for position in (0, 25, 51):
        mixed: list[Any] = [(n, str(n)) for n in range(52)]
        mixed[position] = (position, Item(position))
        back = await factory.plain(mixed)
        assert back is not mixed and back[position][0] == position
        assert aptio.is_proxy(back[position][1]) and await back[position][1].get() == position
        assert back[:position] == mixed[:position] and back[position + 1:] == mixed[position + 1:]


@pytest.mark.asyncio
async def test_cycles_are_kept_and_converted(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("home")
    factory = await sta.create(Factory)
    cycle = await factory.cyclic()
    assert aptio.is_proxy(cycle[0]) and cycle[1] is cycle
    assert await cycle[0].where() == "aptio home"


@pytest.mark.asyncio
async def test_other_objects_are_not_walked_and_agile_objects_stay_raw(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    factory = await sta.create(Factory)
    box = await factory.boxed()
    assert not aptio.is_proxy(box.item)  # documented: only the ordinary containers are walked
    (agile,) = await factory.agile()
    assert isinstance(agile, Agile)


@aptio.coclass(aptio.ThreadingModel.FREE)
class FreeFactory(Factory):
    pass


@pytest.mark.asyncio
async def test_objects_sent_in_a_list_are_called_back_in_their_home(
    main: aptio.Apartment,
) -> None:
    """Raw objects of the caller, sent inside a list to an MTA object that blocks on their
    calls: each call runs back in the caller's STA (which stays free: it awaits)."""
    free_factory = await aptio.create(FreeFactory)
    mine = [Item(1), Item(2)]
    assert await free_factory.where_are(mine) == [threading.current_thread().name] * 2
    assert await free_factory.where_are([1, "x"]) == ["raw", "raw"]
