"""The processes benchmark's references: the loop-to-loop ping-pong answers every message and
its process ends with the connection; the tables show the row against the pipe floor."""

from __future__ import annotations

import importlib
import pathlib
import sys
from typing import Any

import pytest

from aptio._threads.loops import uvloop_available

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="the loop reference uses Unix domain sockets")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Imported by name from the benchmarks folder, as `python -m aptio bench` does: the spawned
    # echo process imports the module the same way (it inherits sys.path).
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_processes")


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_the_loop_reference_answers_every_message_then_its_process_ends(
        bench: Any, kind: str) -> None:
    if kind == "uvloop" and not uvloop_available():
        pytest.skip("uvloop is not installed here")
    floor = bench.LoopFloor(kind)
    try:
        assert floor.sequential(50) > 0
        assert floor.sequential(5) > 0  # each run on a fresh loop, over the same connection
    finally:
        floor.close()
    assert floor.process.exitcode == 0


def test_the_tables_show_the_loop_reference_against_the_pipe_floor(bench: Any) -> None:
    results = {"uvloop": {"floor.seq": [50_000.0], "floor.loop": [75_000.0],
                          "process.seq": [150_000.0]}}
    text = bench.render(results)
    row = next(line for line in text.splitlines() if line.startswith("reference: loop-to-loop"))
    assert row.split()[-2:] == ["75.0", "1.50x"]
    markdown = bench.render_markdown(results, "caption")
    assert "| reference: loop-to-loop socket ping-pong | 75.0 µs | 1.50x |" in markdown
    assert "| aptio STA→server STA sequential | 150.0 µs | 3.00x |" in markdown
