"""Finds the benchmark scripts (in ``benchmarks/`` of a source checkout) and runs one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load(name: str) -> ModuleType:
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    path = root / f"{name}.py"
    if not path.exists():
        raise SystemExit(
            f"benchmark script {path} not found: the benchmarks ship with the source checkout "
            "(git clone), not with the installed package"
        )
    spec = importlib.util.spec_from_file_location(f"aptio_benchmarks_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_bench(args: list[str]) -> int:
    if args and args[0] == "sync":
        result: int = _load("bench_sync").main(args[1:])
        return result
    result = _load("bench_calls").main(args)
    return result
