"""What the marshaling tables share: the stubs they hold, and how a value to share is found.

Invariant: both tables (one-shot tokens and the global interface table) hold stubs strongly,
so an entry keeps its object alive exactly until it is consumed or removed. Both are cleared
(objects released) when the runtime shuts down, since their apartments are gone.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Final

from .._call.context import current_site
from .._proxy.proxy import Proxy
from .._proxy.stub import Stub, stub_for
from .._values.declarations import HOME_ATTRIBUTE, is_coclass_instance
from .._values.errors import NotInitializedError

__all__ = ["clear_tables", "git_entries", "new_id", "stub_to_share", "table_lock", "tokens"]

#: Ids for tokens and cookies (unique in the process; the counter's own thread-safe method).
new_id: Final[Callable[[], int]] = itertools.count(1).__next__
#: Guards both tables.
table_lock: Final = threading.Lock()
#: One-shot marshal tokens: id -> stub.
tokens: Final[dict[int, Stub]] = {}
#: The global interface table: cookie -> stub.
git_entries: Final[dict[int, Stub]] = {}


def stub_to_share(value: object, what: str) -> Stub:
    """The stub behind a proxy, or made for a raw coclass instance in its home apartment."""
    if isinstance(value, Proxy):
        stub: Stub = value._aptio_stub
        return stub
    if is_coclass_instance(value):
        home = getattr(value, HOME_ATTRIBUTE, None) or current_site()
        if home is None:
            raise NotInitializedError(
                f"aptio.{what}() of a {type(value).__qualname__} outside any apartment; start "
                "a runtime with aptio.run(main) or `async with aptio.main_sta():`"
            )
        return stub_for(value, home)
    raise TypeError(
        f"aptio.{what}() takes a proxy or an instance of an @aptio.coclass class, not "
        f"{type(value).__qualname__}: other values need no marshaling, pass them as they are"
    )


def clear_tables() -> None:
    """Drop every token and table entry (the runtime shut down: their apartments are gone)."""
    with table_lock:
        tokens.clear()
        git_entries.clear()
