"""The compiled build against the pure-Python one, side by side: ``python -m aptio bench --builds``.

One interpreter runs one build, so each round runs the benchmark twice in child processes,
once compiled and once with ``APTIO_PURE_PYTHON=1``, in turns (which goes first swaps every
round); the samples of all rounds are pooled and the medians compared. Every other option is
passed on to the children (``--only calls``, ``--loops``, ``--quick``, ...).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

Samples = dict[str, dict[str, list[float]]]  # loop -> key -> samples (ns)

BUILDS = ("compiled", "pure")


def _child(build: str, argv: list[str], path: str) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("APTIO_PURE_PYTHON", None)
    if build == "pure":
        env["APTIO_PURE_PYTHON"] = "1"
    command = [sys.executable, "-m", "aptio", "bench", *argv, "--repeat", "1", "--json", path,
               "--no-progress"]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    return data


def _pool(into: Samples, section: dict[str, dict[str, Any]]) -> None:
    for loop, by_key in section.items():
        for key, entry in by_key.items():
            into.setdefault(loop, {}).setdefault(key, []).extend(entry["samples"])


def compare_builds(argv: list[str], rounds: int, markdown: str | None = None) -> int:
    argv = _without_repeat(argv)
    pooled: dict[str, Samples] = {build: {} for build in BUILDS}
    described: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(rounds):
            order = BUILDS if r % 2 == 0 else BUILDS[::-1]
            for build in order:
                print(f"round {r + 1}/{rounds}: {build}", file=sys.stderr, flush=True)
                data = _child(build, argv, os.path.join(scratch, f"{build}.json"))
                described[build] = data["meta"]["compiled"]
                _pool(pooled[build], data["results"])
                _pool(pooled[build], {loop: {f"sqlite.{k}": v for k, v in by_key.items()}
                                      for loop, by_key in data.get("sqlite", {}).items()})
    if not described.get("compiled"):
        print("this installation has no compiled build: both columns are pure Python")
    print(render_builds(pooled, rounds))
    if markdown:
        with open(markdown, "w", encoding="utf-8") as f:
            f.write(render_builds_markdown(pooled, rounds))
    return 0


def render_builds_markdown(pooled: dict[str, Samples], rounds: int) -> str:
    """The comparison as the ``builds`` block of ``benchmarks/update_docs.py``."""
    import platform

    from bench_rows import ROWS

    compiled, pure = pooled["compiled"], pooled["pure"]
    loops = list(compiled)
    lines = ["<!-- bench:builds:begin -->",
             f"CPython {platform.python_version()} on {os.cpu_count()} CPUs, µs per call "
             f"(median of {rounds} rounds of each build, run in turns); speed-up: pure ÷ "
             "compiled.", "",
             "| row | " + " | ".join(f"{loop} compiled | pure | speed-up" for loop in loops)
             + " |",
             "|---|" + "---:|---:|---:|" * len(loops)]
    labels = [(label.strip().replace("->", "→"), key) for label, key, _ in ROWS]
    labels += [(f"sqlite: {key.split('.', 1)[1]}", key) for key in sorted(
        {k for by_key in compiled.values() for k in by_key if _compared(k)
         and not k.endswith(".cpu")})]
    for label, key in labels:
        if not any(compiled.get(loop, {}).get(key) for loop in loops):
            continue
        cells = [label]
        for loop in loops:
            c, p = _median(compiled, loop, key), _median(pure, loop, key)
            cells += [_us(c), _us(p), f"{p / c:.2f}x" if c and p else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("<!-- bench:builds:end -->")
    return "\n".join(lines) + "\n"


def render_builds(pooled: dict[str, Samples], rounds: int) -> str:
    from bench_rows import ROWS

    labels = {key: label.strip() for label, key, _ in ROWS}
    compiled, pure = pooled["compiled"], pooled["pure"]
    out = [f"compiled against pure Python, {rounds} rounds each in turns (median us per call "
           "or operation; speed-up = pure / compiled)"]
    loops = list(compiled)
    head = f"{'row':<44}" + "".join(f"{loop + ' compiled':>18}{'pure':>9}{'speed-up':>10}"
                                    for loop in loops)
    out += [head, "-" * len(head)]
    keys = [key for _, key, _ in ROWS]
    keys += sorted({key for by_key in compiled.values() for key in by_key if _compared(key)})
    for key in keys:
        if not any(compiled.get(loop, {}).get(key) for loop in loops):
            continue
        line = f"{labels.get(key, key):<44}"
        for loop in loops:
            c = _median(compiled, loop, key)
            p = _median(pure, loop, key)
            speedup = f"{p / c:.2f}x" if c and p else "-"
            line += f"{_us(c):>18}{_us(p):>9}{speedup:>10}"
        out.append(line)
    return "\n".join(out)


def _compared(key: str) -> bool:
    """Whether a key of the sqlite bench has a counterpart in both builds (not the idle spin's
    rows: the pure-Python build has no idle spin)."""
    return key.startswith("sqlite.") and not key.startswith("sqlite.aptiospin.")


def _median(samples: Samples, loop: str, key: str) -> float | None:
    values = samples.get(loop, {}).get(key)
    return statistics.median(values) if values else None


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    v = value / 1000
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}" if v < 10 else f"{v:.1f}"


def _without_repeat(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--repeat", "--json"):  # each child runs one round, into its own file
            skip = True
            continue
        if arg.startswith(("--repeat=", "--json=")):
            continue
        out.append(arg)
    return out


__all__ = ["compare_builds", "render_builds", "render_builds_markdown"]
