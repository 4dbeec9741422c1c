"""Declared proxies reject wrong calls under every checker."""
# checkers: mypy pyright
# pyright: standard

from __future__ import annotations

import aptio

from shapes import Counter


async def main() -> None:
    counter = await aptio.create(Counter, 10)
    counter.incremnt(1)  # expect: mypy[attr-defined] pyright[reportAttributeAccessIssue]
    counter.increment("1")  # expect: mypy[arg-type] pyright[reportArgumentType]
    counter.increment(1, 2)  # expect: mypy[call-arg] pyright[reportCallIssue]
    count: int = await counter.name()  # expect: mypy[assignment] pyright[reportAssignmentType]
    counter.undeclared()  # expect: mypy[attr-defined] pyright[reportAttributeAccessIssue]
    await counter.rows()  # expect: mypy[misc] pyright[reportGeneralTypeIssues]
    await aptio.create(Counter, "10")  # expect: mypy[call-overload|arg-type] pyright[reportCallIssue, reportArgumentType]
    await aptio.create(Counter, 10, labl="c")  # expect: mypy[call-arg] pyright[reportCallIssue]
    del count
