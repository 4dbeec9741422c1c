"""The sync benchmark runs to completion in its quick mode and prints its table."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sync.py"


@pytest.mark.timeout(50)
def test_bench_sync_quick_completes_and_prints_a_table(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
) -> None:
    spec = importlib.util.spec_from_file_location("bench_sync", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    markdown = tmp_path / "sync.md"
    assert module.main(["--quick", "--markdown", str(markdown)]) == 0
    out = capsys.readouterr().out
    assert "ratios (aptio / baseline)" in out
    assert "uncontended coroutine acquire+release" in out
    assert "contended thread + loop" in out
    # The docs' block: one row per aptio variant, each with its ratios to the others.
    block = markdown.read_text()
    assert block.startswith("<!-- bench:sync:begin -->\n") and block.endswith(
        "<!-- bench:sync:end -->\n")
    rows = [line for line in block.splitlines() if line.startswith("| contended 2 threads |")]
    assert [row.split(" | ")[1] for row in rows] == ["default", "fair=False"]
    assert all("x threading" in row for row in rows)
