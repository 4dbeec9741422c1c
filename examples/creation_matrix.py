"""Where ``aptio.create`` puts an object: every threading model, created from every kind of
apartment (COM's creation matrix, printed from a live run rather than from a table).

Run it: python examples/creation_matrix.py
"""

from __future__ import annotations

import threading
from typing import Any

import aptio
from aptio import ThreadingModel

MODELS = [ThreadingModel.SINGLE, ThreadingModel.APARTMENT, ThreadingModel.FREE,
          ThreadingModel.BOTH, ThreadingModel.NEUTRAL]


class Probe:
    def thread(self) -> str:
        return threading.current_thread().name


#: One Probe subclass per threading model, declared with @aptio.coclass(model).
PROBES = {model: aptio.coclass(model)(type(f"{model.name.title()}Probe", (Probe,), {}))
          for model in MODELS}


class Creator:
    """Creates one probe of each model from the apartment it runs in, and reports the
    apartment the probe lives in (its proxy knows). The NA has no thread of its own: for a
    NEUTRAL probe, the thread its call ran on (the caller's) is shown too."""

    async def row(self) -> list[str]:
        cells = []
        for model in MODELS:
            probe: Any = await aptio.create(PROBES[model])
            home = aptio.apartment_of(probe)
            cell = home.name
            if home.kind is aptio.ApartmentKind.NEUTRAL:
                cell += f" on {await probe.thread()}"
            cells.append(cell)
        return cells


@aptio.coclass(ThreadingModel.APARTMENT)
class StaCreator(Creator):
    pass


@aptio.coclass(ThreadingModel.FREE)
class MtaCreator(Creator):
    async def row_through(self, neutral: Any) -> list[str]:
        """Call a NEUTRAL creator from this MTA thread: it runs here, in the NA."""
        cells: list[str] = await neutral.row()
        return cells


@aptio.coclass(ThreadingModel.NEUTRAL)
class NeutralCreator(Creator):
    pass


async def main() -> None:
    other = await aptio.start_sta("other STA")
    neutral = await aptio.create(NeutralCreator)
    rows = [
        ("main STA", await (await aptio.create(StaCreator)).row()),
        ("other STA", await (await other.create(StaCreator)).row()),
        ("MTA", await (await aptio.create(MtaCreator)).row()),
        ("NA on an STA thread", await neutral.row()),  # called from the main STA's thread
        ("NA on an MTA thread", await (await aptio.create(MtaCreator)).row_through(neutral)),
    ]
    header = ["creator \\ model"] + [model.name for model in MODELS]
    table = [header] + [[label, *cells] for label, cells in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
              + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("The host STA was started on demand for APARTMENT objects created from the MTA;")
    print("NEUTRAL objects run on whichever thread calls them.")


if __name__ == "__main__":
    aptio.run(main)
