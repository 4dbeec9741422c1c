"""The Ray benchmark's own logic, which needs no Ray: the hand-off baseline answers, and the
table takes each ratio within a round and shows the floors only beside aptio's Ray rows."""

from __future__ import annotations

import asyncio
import importlib
import pathlib
import threading
from typing import Any

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # by name, as `python -m aptio bench` does
    return importlib.import_module("bench_ray")


def test_the_hand_off_baseline_answers_from_its_other_thread(bench: Any) -> None:
    target = bench.RawHandoffTarget()
    try:
        async def calls() -> list[int]:
            return [await target.ping() for _ in range(20)]

        assert asyncio.run(calls()) == [1] * 20
    finally:
        target.close()
    assert not any(thread.name == "apartment" for thread in threading.enumerate())


def test_a_ratio_is_the_median_of_the_ratios_within_each_round(bench: Any) -> None:
    # Rounds 2/1, 4/4, 9/3: the per-round ratios are 2, 1, 3 (median 2), where the ratio of
    # the medians would be 4/3: a drift that hits both paths of a round cancels out.
    assert bench.per_round_ratio([2.0, 4.0, 9.0], [1.0, 4.0, 3.0]) == 2.0


def test_the_table_shows_the_floors_beside_aptio_on_ray_only(bench: Any) -> None:
    results = {
        "raw Ray: sequential": [1000.0, 2000.0, 4000.0],
        "raw Ray + payload: sequential": [1000.0, 2000.0, 4000.0],
        "raw Ray + hand-off: sequential": [2000.0, 4000.0, 8000.0],
        "aptio on Ray: sequential": [1100.0, 2200.0, 4400.0],
        "aptio local server: sequential": [100.0, 200.0, 400.0],
    }
    rows = {line.split("  ")[0].strip(): line for line in bench.render(results).splitlines()}
    aptio_row = rows["aptio on Ray: sequential"].split()
    assert aptio_row[-6:-3] == ["1.10x", "1.10x", "0.55x"]  # vs raw, payload, hand-off
    local_row = rows["aptio local server: sequential"]
    assert "0.10x" in local_row and local_row.count("x ") == 1  # vs raw Ray only
    assert rows["raw Ray + payload: sequential"].count("x ") == 1
