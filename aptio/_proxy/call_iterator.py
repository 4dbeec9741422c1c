"""``CallIterator``: what a proxy call of a generator or async-generator method returns.

A typed skeleton only: it fixes the class's name, its type parameter and its methods, so that
the type checkers (the mypy plugin, declared proxies) can name it. The behaviour (running the
generator's body in the object's apartment, one step per item) is added by the runtime work on
generator methods, in this same module.

Its contract: ``async for row in proxy.rows()`` on a loop; ``for row in proxy.rows()`` from a
plain thread (blocking); ``await iterator.aclose()`` or ``iterator.close()`` to stop early. A
CallIterator is not awaitable: a generator has no single result.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["CallIterator"]

T_co = TypeVar("T_co", covariant=True)


class CallIterator(Generic[T_co]):
    """The items a generator method yields in its own apartment, delivered to the caller.

    Iterate it with ``async for`` (any loop) or plain ``for`` (threads outside any STA);
    ``aclose()``/``close()`` stop the generator early. Not awaitable.
    """

    __slots__ = ()

    def __aiter__(self) -> CallIterator[T_co]:
        return self

    async def __anext__(self) -> T_co:
        raise NotImplementedError("CallIterator is a typed skeleton until generator calls land")

    def __iter__(self) -> CallIterator[T_co]:
        return self

    def __next__(self) -> T_co:
        raise NotImplementedError("CallIterator is a typed skeleton until generator calls land")

    async def aclose(self) -> None:
        """Stop the generator in its apartment (it sees GeneratorExit) and wait until it has."""
        raise NotImplementedError("CallIterator is a typed skeleton until generator calls land")

    def close(self) -> None:
        """Blocking ``aclose()`` for plain threads."""
        raise NotImplementedError("CallIterator is a typed skeleton until generator calls land")
