"""Finds the benchmark scripts (in ``benchmarks/`` of a source checkout) and runs one."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def _load(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` under its own name (the benchmarks directory goes on
    ``sys.path``, so server processes and spawned children import it the same way)."""
    root = Path(__file__).resolve().parent.parent / "benchmarks"
    if not (root / f"{name}.py").exists():
        raise SystemExit(
            f"benchmark script {root / name}.py not found: the benchmarks ship with the source "
            "checkout (git clone), not with the installed package"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(name)


def run_bench(args: list[str]) -> int:
    if args and args[0] == "sync":
        result: int = _load("bench_sync").main(args[1:])
        return result
    if args and args[0] == "trace":
        result = _load("bench_trace").main(args[1:])
        return result
    if args and args[0] == "ray":
        result = _load("bench_ray").main(args[1:])
        return result
    if args and args[0] == "processes":
        result = _load("bench_processes").main(args[1:])
        return result
    result = _load("bench_calls").main(args)
    return result
