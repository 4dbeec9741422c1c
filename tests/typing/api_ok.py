"""The rest of the public API keeps the proxied type: marshal, the global interface table,
callbacks, unwrap."""
# checkers: mypy pyright

from __future__ import annotations

from typing import assert_type

import aptio

from shapes import Counter, CounterProxy, Widget


async def report(done: int, total: int) -> str:
    return f"{done}/{total}"


def note(text: str) -> None:
    pass


async def main() -> None:
    counter = await aptio.create(Counter)
    widget = await aptio.create(Widget, 3)
    assert_type(widget, aptio.Proxy[Widget])
    counter_token = aptio.marshal(counter)
    assert_type(counter_token, aptio.MarshalToken[Counter])
    assert_type(aptio.unmarshal(counter_token), CounterProxy)
    widget_token = aptio.marshal(widget)
    assert_type(widget_token, aptio.MarshalToken[Widget])
    assert_type(aptio.unmarshal(widget_token), aptio.Proxy[Widget])
    aptio.release_marshal_data(aptio.marshal(Counter()))
    table = aptio.GlobalInterfaceTable()
    cookie = table.register(counter)
    assert_type(cookie, aptio.Cookie[Counter])
    assert_type(table.get(cookie), CounterProxy)
    assert_type(table.get(table.register(widget)), aptio.Proxy[Widget])
    table.revoke(cookie)
    progress: aptio.Callback[[int, int], str] = aptio.callback(report)
    assert_type(progress(1, 2), aptio.Call[str])
    assert_type(await aptio.callback(note)("x"), None)
    assert_type(aptio.unwrap(widget), Widget)
