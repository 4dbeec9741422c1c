"""Declared proxies at run time: aptio hands out instances of the declared class, calls through
them run the same sending functions as any proxy, and a declaration that does not match its
class fails with DeclarationError when the class statement runs."""

from __future__ import annotations

import asyncio
import re
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import aptio
from aptio._proxy.proxy import proxy_class


@aptio.coclass
class Counter(aptio.ProxiedAs["CounterProxy"]):
    def __init__(self, start: int = 0) -> None:
        self.value = start

    def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    async def slow_double(self) -> int:
        await asyncio.sleep(0)
        self.value *= 2
        return self.value

    def twin(self) -> Counter:
        return Counter(self.value)

    def _secret(self) -> str:
        return "secret"

    def undeclared(self) -> str:
        return "still callable"


class CounterProxy(aptio.DeclaredProxy[Counter]):
    increment = aptio.proxy_method(Counter.increment)
    slow_double = aptio.proxy_method(Counter.slow_double)
    twin = aptio.proxy_method(Counter.twin)
    _secret = aptio.proxy_method(Counter._secret)


@aptio.coclass
class Plain:
    def get(self) -> int:
        return 1


class Subject:
    """A class for the declaration errors (each test declares a proxy for it)."""

    label = "x"

    @property
    def size(self) -> int:
        return 0

    def run(self) -> int:
        return 0

    async def fetch(self) -> int:
        return 0

    @staticmethod
    def helper() -> int:
        return 0

    def rows(self) -> Iterator[int]:
        yield 0

    def listed(self) -> Iterator[int]:
        return iter([0])

    def widget(self) -> Plain:
        return Plain()

    def maybe(self) -> Plain | None:
        return None


class Fetching:
    def fetch(self) -> int:  # a sync method where Subject's is async
        return 0


@pytest.mark.asyncio
async def test_create_hands_out_the_declared_proxy_class(main: aptio.Apartment) -> None:
    worker = await aptio.start_sta("worker")
    for counter in (await aptio.create(Counter, 1), await worker.create(Counter, 1)):
        assert isinstance(counter, CounterProxy)
        assert aptio.is_proxy(counter)
        assert await counter.increment(2) == 3
        assert await counter.slow_double() == 6
        assert await counter._secret() == "secret"
        twin = await counter.twin()
        assert isinstance(twin, CounterProxy)
        assert await twin.increment() == 7
        # Undeclared methods still run: only the checkers see the declared ones.
        assert await counter.undeclared() == "still callable"  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_the_hand_over_paths_keep_the_declared_class(main: aptio.Apartment) -> None:
    counter = await aptio.create(Counter)
    assert isinstance(aptio.unmarshal(aptio.marshal(counter)), CounterProxy)
    table = aptio.GlobalInterfaceTable()
    cookie = table.register(counter)
    assert isinstance(cookie, int) and isinstance(cookie, aptio.Cookie)
    assert isinstance(table.get(cookie), CounterProxy)
    assert isinstance(table.get(int(cookie)), CounterProxy)  # any int with its value
    table.revoke(cookie)


def test_calls_run_the_same_sending_functions_as_undeclared_proxies() -> None:
    made = proxy_class(Counter)
    assert issubclass(made, CounterProxy)
    for name in ("increment", "slow_double", "twin", "_secret", "undeclared"):
        assert not isinstance(vars(made)[name], aptio.ProxyMethod), name
        assert vars(made)[name].__qualname__ == f"Proxy.{name}"
    assert proxy_class(Plain).__bases__ == (aptio.Proxy,)


def test_a_declared_proxy_is_described_by_its_methods() -> None:
    assert isinstance(CounterProxy.increment, aptio.ProxyMethod)
    assert repr(CounterProxy.increment) == "<aptio.proxy_method Counter.increment>"


def _declaring(*lines: tuple[str, Any]) -> type:
    return types.new_class("SubjectProxy", (aptio.DeclaredProxy[Subject],),
                           exec_body=lambda namespace: namespace.update(lines))


@pytest.mark.parametrize(("name", "method", "message"), [
    ("walk", lambda: Subject.run,
     r"^SubjectProxy\.walk declares 'run': a proxy method keeps its method's name; write "
     r"`run = aptio\.proxy_method\(\.\.\.\)`$"),
    ("fetch", lambda: Fetching.fetch,
     r"^SubjectProxy\.fetch declares a sync method, but Subject\.fetch is a coroutine method; "
     r"declare the method the class has: aptio\.proxy_method\(Subject\.fetch\)$"),
    ("helper", lambda: Subject.helper,
     r"^SubjectProxy\.helper: Subject\.helper is not an instance method \(a staticmethod\); "),
    ("listed", lambda: Subject.listed,
     r"^SubjectProxy\.listed returns an iterator but is not a generator method; "),
    ("widget", lambda: Subject.widget,
     r"^SubjectProxy\.widget returns Plain: a Plain crosses apartments as a proxy, "),
    ("maybe", lambda: Subject.maybe,
     r"^SubjectProxy\.maybe returns .*: a Plain crosses apartments as a proxy, "),
])
def test_a_declaration_that_does_not_match_fails_at_class_definition(
        name: str, method: Any, message: str) -> None:
    with pytest.raises(aptio.DeclarationError, match=message):
        _declaring((name, aptio.proxy_method(method())))


def test_a_method_the_class_lacks_fails_at_class_definition() -> None:
    def missing(self: Any) -> None:
        pass

    with pytest.raises(aptio.DeclarationError, match=re.escape(
            "SubjectProxy.missing: Subject has no method 'missing'; declare only methods "
            "the class has")):
        _declaring(("missing", aptio.proxy_method(missing)))


def test_properties_are_not_methods() -> None:
    size = Subject.size.fget
    assert size is not None
    with pytest.raises(aptio.DeclarationError, match=r"is not an instance method \(a property\)"):
        _declaring(("size", aptio.proxy_method(size)))


def test_a_declared_proxy_must_name_its_class() -> None:
    with pytest.raises(aptio.DeclarationError, match="does not say which class it stands for"):
        types.new_class("Loose", (aptio.DeclaredProxy,))


def test_matching_declarations_pass() -> None:
    made = _declaring(("run", aptio.proxy_method(Subject.run)),
                      ("fetch", aptio.proxy_method(Subject.fetch)),
                      ("rows", aptio.proxy_method(Subject.rows)))
    assert made._aptio_declared == {"run", "fetch", "rows"}


@aptio.coclass
class Orphan(aptio.ProxiedAs["OrphanProxy"]):  # its declared proxy is never defined
    def get(self) -> int:
        return 1


@pytest.mark.asyncio
async def test_a_class_whose_declared_proxy_was_never_defined_cannot_be_proxied(
        main: aptio.Apartment) -> None:
    with pytest.raises(aptio.DeclarationError, match=re.escape(
            "Orphan names OrphanProxy as its proxy type (aptio.ProxiedAs), but no "
            "OrphanProxy(aptio.DeclaredProxy[Orphan]) class was defined; define it right after "
            "Orphan, in the same module")):
        await aptio.create(Orphan)


@pytest.mark.asyncio
async def test_a_declared_proxy_defined_after_use_applies_to_later_proxies(
        main: aptio.Apartment) -> None:
    @aptio.coclass
    class Late(aptio.ProxiedAs["LateProxy"]):
        async def items(self) -> AsyncIterator[int]:
            yield 1

        def get(self) -> int:
            return 2

    with pytest.raises(aptio.DeclarationError):
        await aptio.create(Late)

    class LateProxy(aptio.DeclaredProxy[Late]):
        items = aptio.proxy_method(Late.items)
        get = aptio.proxy_method(Late.get)

    late = await aptio.create(Late)
    assert isinstance(late, LateProxy)
    assert await late.get() == 2
