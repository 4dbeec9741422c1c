"""A thread-affine sqlite3 connection served to asyncio tasks: aptio against aiosqlite.

    python -m aptio bench --only sqlite [--quick] [--repeat N] [--loops asyncio,uvloop]

A sqlite3 connection may only be used on the thread that opened it. Both contenders keep it
on a thread of its own and pass every operation there: aptio as an object living in an STA
(``Store`` below, whose methods run on the STA's thread), aiosqlite as its connection thread
fed by a queue. The workload: a table of 1,000 rows; each operation is a read (80%, a SELECT
by key, its rows fetched) or a write (20%, an UPDATE by key), and every 100th write is
followed by a commit, each one a call of its own. The same sequence of operations (a fixed
seed) runs

* sequentially: one task, one operation at a time (a round trip each);
* concurrently: 50 tasks at once, each doing its share of the operations in turn.

Each round measures aptio and aiosqlite once per loop kind and mode, in turns (the order
swaps every round), on the same machine state; the table shows the medians. Times are
wall-clock microseconds per operation and the process's CPU time per operation (all
threads), so "ahead" means both fewer microseconds and less CPU.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aptio

try:
    import aiosqlite
except ImportError:  # pragma: no cover - the bench extra is not installed
    aiosqlite = None

ROWS = 1000
TASKS = 50
COMMIT_EVERY = 100
READ_SHARE = 0.8
SELECT = "SELECT id, value FROM items WHERE id = ?"
UPDATE = "UPDATE items SET value = ? WHERE id = ?"

Op = tuple[bool, int, int]  # (is a read, key, new value)


@dataclass(frozen=True)
class SqliteSizes:
    repeat: int = 5
    sequential: int = 2000  # operations per sequential sample
    concurrent: int = 5000  # operations per concurrent sample (over TASKS tasks)


SQLITE_QUICK = SqliteSizes(repeat=1, sequential=100, concurrent=200)


def operations(count: int, seed: int = 20) -> list[Op]:
    rng = random.Random(seed)
    return [(rng.random() < READ_SHARE, rng.randrange(ROWS), rng.randrange(1 << 30))
            for _ in range(count)]


def _prepare(path: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, value INTEGER)")
        db.executemany("INSERT OR REPLACE INTO items VALUES (?, ?)",
                       ((i, i) for i in range(ROWS)))
        db.commit()
    finally:
        db.close()


def _open(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)  # check_same_thread=True: the connection is thread-affine
    # The same for both contenders: commits are not flushed to the disk, so the figures are
    # the cost of serving the connection, not the disk's.
    db.execute("PRAGMA synchronous=OFF")
    return db


@aptio.coclass  # APARTMENT: lives in the STA that creates it, so on one thread
class Store:
    """The connection as an aptio object: every method runs on the STA's thread."""

    def __init__(self, path: str) -> None:
        self._db = _open(path)

    def fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self._db.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        self._db.execute(sql, params)

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class _Writes:
    """Counts writes across the tasks; True every COMMIT_EVERY-th (that task commits)."""

    def __init__(self) -> None:
        self.count = 0

    def commit_due(self) -> bool:
        self.count += 1
        return self.count % COMMIT_EVERY == 0


async def _aptio_ops(store: Any, ops: list[Op], writes: _Writes) -> None:
    for is_read, key, value in ops:
        if is_read:
            await store.fetch(SELECT, (key,))
        else:
            await store.execute(UPDATE, (value, key))
            if writes.commit_due():
                await store.commit()


async def _aiosqlite_ops(db: Any, ops: list[Op], writes: _Writes) -> None:
    for is_read, key, value in ops:
        if is_read:
            await db.execute_fetchall(SELECT, (key,))
        else:
            await db.execute(UPDATE, (value, key))
            if writes.commit_due():
                await db.commit()


Runner = Callable[[list[Op], _Writes], Awaitable[None]]


async def _timed(run: Runner, ops: list[Op], tasks: int) -> tuple[float, float]:
    """(wall ns, CPU ns) per operation: ``ops`` split over ``tasks`` tasks run at once."""
    writes = _Writes()
    shares = [ops[i::tasks] for i in range(tasks)]
    wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
    if tasks == 1:
        await run(ops, writes)
    else:
        await asyncio.gather(*(run(share, writes) for share in shares))
    wall, cpu = time.perf_counter_ns() - wall0, time.process_time_ns() - cpu0
    return wall / len(ops), cpu / len(ops)


Results = dict[str, dict[str, list[float]]]  # loop -> key -> samples (ns per op)


async def _round(path: str, sizes: SqliteSizes, loop: str, flip: bool,
                 results: Results) -> None:
    """Both contenders, both modes, once each, on this runtime's loop."""
    sta = await aptio.start_sta("sqlite")
    store = await sta.create(Store, path + ".aptio")
    contenders: dict[str, Runner] = {"aptio": lambda o, w: _aptio_ops(store, o, w)}
    db = None
    if aiosqlite is not None:
        db = await aiosqlite.connect(path + ".aiosqlite")
        await db.execute("PRAGMA synchronous=OFF")
        contenders["aiosqlite"] = lambda o, w: _aiosqlite_ops(db, o, w)
    names = list(contenders)
    if flip:
        names.reverse()
    try:
        for mode, count, tasks in (("seq", sizes.sequential, 1),
                                   ("concurrent", sizes.concurrent, TASKS)):
            ops = operations(count)
            for name in names:  # a short warm-up, then the sample
                await _timed(contenders[name], ops[: max(1, count // 10)], tasks)
                wall, cpu = await _timed(contenders[name], ops, tasks)
                by_key = results.setdefault(loop, {})
                by_key.setdefault(f"{name}.{mode}", []).append(wall)
                by_key.setdefault(f"{name}.{mode}.cpu", []).append(cpu)
    finally:
        if db is not None:
            await db.close()
        await store.close()
        await sta.shutdown()


def run_sqlite(sizes: SqliteSizes, loops: list[str],
               progress: Callable[[str], None]) -> Results:
    results: Results = {}
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "bench.sqlite3")  # a file of its own for each contender
        _prepare(path + ".aptio")
        _prepare(path + ".aiosqlite")
        for r in range(sizes.repeat):
            for loop in loops:
                progress(f"sqlite round {r + 1}/{sizes.repeat}, {loop}")

                async def body(loop: str = loop, flip: bool = r % 2 == 1) -> None:
                    await _round(path, sizes, loop, flip, results)

                aptio.run(body, use_uvloop=loop == "uvloop")
    return results


def render_sqlite(results: Results) -> str:
    out = ["", "sqlite3 connection served to tasks (80% reads, 20% writes, a commit every "
           f"{COMMIT_EVERY} writes; {TASKS} tasks when concurrent)"]
    head = (f"{'loop':<9}{'mode':<12}{'aptio us':>10}{'aiosqlite us':>14}{'ratio':>8}"
            f"{'aptio CPU us':>14}{'aiosqlite CPU us':>18}{'ratio':>8}  aptio ahead")
    out += [head, "-" * len(head)]
    for loop, by_key in results.items():
        def med(key: str, by_key: dict[str, list[float]] = by_key) -> float | None:
            samples = by_key.get(key)
            return statistics.median(samples) / 1000 if samples else None

        for mode in ("seq", "concurrent"):
            a, b = med(f"aptio.{mode}"), med(f"aiosqlite.{mode}")
            ac, bc = med(f"aptio.{mode}.cpu"), med(f"aiosqlite.{mode}.cpu")
            ratio = f"{a / b:.2f}x" if a and b else "-"
            cpu_ratio = f"{ac / bc:.2f}x" if ac and bc else "-"
            ahead = "-" if not (a and b) else "yes" if a < b else "NO"
            out.append(f"{loop:<9}{mode:<12}{_f(a):>10}{_f(b):>14}{ratio:>8}"
                       f"{_f(ac):>14}{_f(bc):>18}{cpu_ratio:>8}  {ahead}")
    if aiosqlite is None:
        out.append("aiosqlite is not installed (pip install 'aptio[bench]'): aptio only")
    out.append("ratio: aptio / aiosqlite (below 1: aptio takes less)")
    return "\n".join(out) + "\n"


def render_sqlite_markdown(results: Results, caption: str) -> str:
    """The table as the ``sqlite`` block of ``benchmarks/update_docs.py``."""
    lines = ["<!-- bench:sqlite:begin -->", caption, "",
             "| loop | mode | aptio µs | aiosqlite µs | aptio ÷ aiosqlite | aptio CPU µs "
             "| aiosqlite CPU µs | CPU ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for loop, by_key in results.items():
        def med(key: str, by_key: dict[str, list[float]] = by_key) -> float | None:
            samples = by_key.get(key)
            return statistics.median(samples) / 1000 if samples else None

        for mode, label in (("seq", "sequential"), ("concurrent", f"{TASKS} tasks")):
            a, b = med(f"aptio.{mode}"), med(f"aiosqlite.{mode}")
            ac, bc = med(f"aptio.{mode}.cpu"), med(f"aiosqlite.{mode}.cpu")
            lines.append(f"| {loop} | {label} | {_f(a)} | {_f(b)} | "
                         f"{f'{a / b:.2f}x' if a and b else '-'} | {_f(ac)} | {_f(bc)} | "
                         f"{f'{ac / bc:.2f}x' if ac and bc else '-'} |")
    lines.append("<!-- bench:sqlite:end -->")
    return "\n".join(lines) + "\n"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 10 else f"{value:.1f}"


__all__ = ["SQLITE_QUICK", "SqliteSizes", "operations", "render_sqlite",
           "render_sqlite_markdown", "run_sqlite"]
