"""Wrong uses of the rest of the public API are errors under every checker."""
# checkers: mypy pyright
# pyright: standard

from __future__ import annotations

import aptio

from shapes import Counter, Widget


async def report(done: int, total: int) -> str:
    return f"{done}/{total}"


async def main() -> None:
    counter = await aptio.create(Counter)
    progress = aptio.callback(report)
    progress(1)  # expect: mypy[call-arg] pyright[reportCallIssue]
    progress(1, "2")  # expect: mypy[arg-type] pyright[reportArgumentType]
    text: int = await progress(1, 2)  # expect: mypy[assignment] pyright[reportAssignmentType]
    widget: Widget = aptio.unwrap(counter)  # expect: mypy[assignment] pyright[reportAssignmentType]
    table = aptio.GlobalInterfaceTable()
    table.get(7)  # expect: mypy[call-overload] pyright[reportCallIssue, reportArgumentType]
    del text, widget
