"""The calls benchmark runs to completion in its quick mode, prints its table and writes JSON."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import re
import sys
from typing import Any

import pytest

import aptio

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
BENCH = BENCHMARKS / "bench_calls.py"


def _load(path: pathlib.Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_bench(argv: list[str]) -> int:
    """``python -m aptio bench ARGV``, in this process (the script registered as a module for
    the time of the run, as its dataclasses need)."""
    spec = importlib.util.spec_from_file_location("aptio_bench_calls_under_test", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        status: int = module.main(argv)
        return status
    finally:
        del sys.modules[spec.name]


@aptio.coclass
class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.log: list[int] = []

    def inc(self) -> None:
        self.value += 1

    async def ainc(self) -> None:
        self.value += 1

    def record(self, i: int) -> None:
        self.log.append(i)

    async def arecord(self, i: int) -> None:
        self.log.append(i)

    def get(self) -> int:
        return self.value

    def get_log(self) -> list[int]:
        return self.log


def test_the_reference_transport_gives_the_same_results() -> None:
    """The bench's naive transport (one run_coroutine_threadsafe per call) plugged into an STA
    runs calls to the same results, in order, sync and async methods mixed."""
    reference = _load(BENCHMARKS / "reference_transport.py", "aptio_reference_under_test")

    async def body() -> list[Any]:
        sta = await aptio.start_sta()
        reference.use_reference_transport(sta)
        counter = await sta.create(Counter)
        await asyncio.gather(*(counter.inc() if i % 2 else counter.ainc() for i in range(100)))
        await asyncio.gather(*(counter.record(i) if i % 3 else counter.arecord(i)
                               for i in range(100)))
        return [await counter.get(), await counter.get_log()]

    assert aptio.run(body) == [100, list(range(100))]


@pytest.mark.timeout(50)
def test_bench_calls_quick_completes_prints_the_table_and_writes_json(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "bench.json"
    assert _run_bench(["--quick", "--no-progress", "--json", str(out_path)]) == 0
    out = capsys.readouterr().out
    for text in ("aptio STA->STA sequential", "floor: 2x call_soon_threadsafe",
                 "aptio STA->STA pipelined", "same-apt proxy, async method", "STA start",
                 "scale (N idle STAs alive", "targets", "sqlite3 connection served to tasks",
                 f"aptio: {aptio._compiled.DESCRIPTION}", "create + await a done Future"):
        assert text in out
    data = json.loads(out_path.read_text())
    assert set(data) >= {"meta", "results", "scale", "targets"}
    loops = data["meta"]["loops"]
    assert "asyncio" in loops
    for loop in loops:
        figures = data["results"][loop]
        for key in ("floor.seq", "naive.seq", "naive.pipe", "reference.seq.sta_sta",
                    "aptio.seq.sta_sta", "aptio.pipe.sta_sta", "aptio.seq.sta_mta",
                    "aptio.seq.thread_sta", "local.proxy_async", "local.direct_await",
                    "create.same", "sta.start", "sta.stop"):
            assert figures[key]["median"] > 0, key
        assert set(data["scale"][loop]) == {"1", "10"}
        for entry in data["scale"][loop].values():
            assert {"seq", "start_median", "rss_per_sta", "fds_per_sta"} <= set(entry)
    assert all({"loop", "name", "measured", "limit", "passed"} <= set(t)
               for t in data["targets"])
    assert data["meta"]["compiled"] is aptio.compiled
    for loop in loops:
        sqlite = data["sqlite"][loop]
        for key in ("aptio.seq", "aptio.concurrent", "aiosqlite.seq", "aiosqlite.concurrent",
                    "loopshape.seq", "queueshape.seq"):  # the shapes: sequential only
            assert sqlite[key]["median"] > 0, key
            assert sqlite[f"{key}.cpu"]["median"] > 0, key
        assert "loopshape.concurrent" not in sqlite
        # aptio with an idle spin: where the build has one, in both modes; else no rows.
        assert ("aptiospin.seq" in sqlite) is aptio.idle_spin_available
        assert ("aptiospin.concurrent" in sqlite) is aptio.idle_spin_available
    assert f"{loops[0]:<9}seq, bare*" in out
    assert (f"{loops[0]:<9}seq, spin†" in out) is aptio.idle_spin_available


@pytest.mark.timeout(50)
def test_a_run_of_one_part_writes_only_that_part_s_markdown(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A block the run did not measure would blank the docs' table of that name.
    out_path = tmp_path / "bench.md"
    assert _run_bench(["--quick", "--no-progress", "--only", "sqlite", "--loops", "asyncio",
                       "--markdown", str(out_path)]) == 0
    capsys.readouterr()
    names = re.findall(r"^<!-- bench:([\w.-]+):begin -->$", out_path.read_text(), re.MULTILINE)
    assert names == ["sqlite"]


def test_the_builds_comparison_pools_rounds_and_compares_row_by_row() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        builds = _load(BENCHMARKS / "bench_builds.py", "aptio_bench_builds_under_test")
        assert builds._without_repeat(["--quick", "--repeat", "3", "--json", "x", "--only",
                                       "calls", "--repeat=2"]) == ["--quick", "--only", "calls"]
        pooled = {"compiled": {"uvloop": {"aptio.seq.sta_sta": [10_000.0, 12_000.0],
                                          "sqlite.aptio.seq": [20_000.0]}},
                  "pure": {"uvloop": {"aptio.seq.sta_sta": [15_000.0, 17_000.0],
                                      "sqlite.aptio.seq": [30_000.0]}}}
        table = builds.render_builds(pooled, 2)
    finally:
        sys.path.remove(str(BENCHMARKS))
    row = next(line for line in table.splitlines() if line.startswith("aptio STA->STA seq"))
    assert row.split()[-3:] == ["11.0", "16.0", "1.45x"]
    row = next(line for line in table.splitlines() if line.startswith("sqlite.aptio.seq"))
    assert row.split()[-3:] == ["20.0", "30.0", "1.50x"]
