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

aptio runs twice: as it comes, and with its STA started with an idle spin
(``aptio.start_sta(idle_spin=...)``, off by default; the compiled build only): after serving
a call that came alone the STA's thread polls for the next call, without the interpreter lock,
for up to ``IDLE_SPIN`` before its loop sleeps, which spares it the wake-up when calls come
one after another. Sequentially, two more rows show the same operations served with neither
library, to tell the libraries' own cost from their threads' shapes: the connection on a bare
event loop running on a thread (an STA's shape: woken by ``call_soon_threadsafe``, so from its
loop's poll) and on a plain thread blocked on a ``queue.SimpleQueue`` (aiosqlite's shape, with the
queue aiosqlite 0.22 uses: woken from a lock); both hand each result back with
``call_soon_threadsafe``. What separates those two is how the kernel wakes a thread, which
aptio's STAs, being event loops, cannot change.

Each round measures aptio and aiosqlite once per loop kind and mode, in turns (the order
swaps every round), on the same machine state; the table shows the medians. Times are
wall-clock microseconds per operation and the process's CPU time per operation (all
threads), so "ahead" means both fewer microseconds and less CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loop_thread import LoopThread, answer

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
    # operations per concurrent sample (over TASKS tasks). Samples of 5,000 (60-75 ms each)
    # read aptio at 1.03-1.26x aiosqlite on uvloop where samples of 20,000 of the same
    # operations read 0.93-1.0x: too short a sample to stand for the steady state.
    concurrent: int = 20000


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


class _LoopShape:
    """The connection on a bare event loop's thread (an STA's shape, nothing of aptio)."""

    def __init__(self, path: str, uvloop: bool) -> None:
        self._thread = LoopThread(uvloop, "sqlite loop shape")
        self._store = self._thread.run(_opened(path))  # on its thread: the connection's own

    async def call(self, method: str, *args: Any) -> Any:
        return await self._thread.hand_off(getattr(self._store, method), *args)

    def close(self) -> None:
        self._thread.run(_closed(self._store))
        self._thread.close()


async def _opened(path: str) -> Store:
    return Store(path)


async def _closed(store: Store) -> None:
    store.close()


class _QueueShape:
    """The connection on a plain thread blocked on a queue (aiosqlite's shape, nothing of
    aiosqlite)."""

    def __init__(self, path: str) -> None:
        # the queue aiosqlite itself uses (0.22): a put wakes the thread from one lock
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        opened: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, args=(path, opened),
                                        name="sqlite queue shape", daemon=True)
        self._thread.start()
        failed = opened.get()  # the connection is opened on its thread, or this raises
        if failed is not None:
            self._thread.join()
            raise failed

    def _serve(self, path: str, opened: queue.SimpleQueue[BaseException | None]) -> None:
        try:
            store = Store(path)
        except BaseException as error:
            opened.put(error)
            return
        opened.put(None)
        try:
            while (item := self._queue.get()) is not None:
                loop, future, method, args = item
                answer(loop, future, getattr(store, method), *args)
        finally:
            store.close()

    async def call(self, method: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put_nowait((loop, future, method, args))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


async def _shape_ops(shape: _LoopShape | _QueueShape, ops: list[Op], writes: _Writes) -> None:
    for is_read, key, value in ops:
        if is_read:
            await shape.call("fetch", SELECT, (key,))
        else:
            await shape.call("execute", UPDATE, (value, key))
            if writes.commit_due():
                await shape.call("commit")


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


#: The idle spin of the ``aptiospin`` contender, in seconds (``aptio.start_sta(idle_spin=)``):
#: longer than the caller's wake-up and turnaround on the machines measured (20-50 µs), so
#: that the next operation usually arrives while the STA's thread still polls.
IDLE_SPIN = 100e-6

#: The contenders, by name: the two libraries (aptio twice: as it comes, and its STA with an
#: idle spin, where the build has one), then the two bare shapes (sequential only).
CONTENDERS = ("aptio", "aptiospin", "aiosqlite", "loopshape", "queueshape")


@dataclass(frozen=True)
class Contender:
    """One contender serving its connection: ``run`` does operations, ``close`` releases
    everything it opened."""

    run: Runner
    close: Callable[[], Awaitable[None]]


async def open_contender(name: str, path: str, uvloop: bool) -> Contender:
    """The contender ``name`` (one of CONTENDERS) serving the database at ``path`` to tasks
    of the running loop (``uvloop``: the kind of loop a bare loop shape's thread runs)."""
    if name in ("aptio", "aptiospin"):
        if name == "aptiospin" and not aptio.idle_spin_available:
            raise RuntimeError("this build of aptio has no idle spin (the pure-Python build)")
        sta = await aptio.start_sta("sqlite", idle_spin=IDLE_SPIN if name == "aptiospin" else 0)
        try:
            store = await sta.create(Store, path)
        except BaseException:
            await sta.shutdown()
            raise

        async def close_aptio() -> None:
            try:
                await store.close()
            finally:
                await sta.shutdown()

        return Contender(lambda o, w: _aptio_ops(store, o, w), close_aptio)
    if name == "aiosqlite":
        if aiosqlite is None:
            raise RuntimeError("aiosqlite is not installed (the bench extra)")
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA synchronous=OFF")
        except BaseException:
            await db.close()
            raise
        return Contender(lambda o, w: _aiosqlite_ops(db, o, w), db.close)
    if name not in ("loopshape", "queueshape"):
        raise ValueError(f"unknown contender {name!r}: one of {', '.join(CONTENDERS)}")
    shape = _LoopShape(path, uvloop) if name == "loopshape" else _QueueShape(path)

    async def close_shape() -> None:
        shape.close()

    return Contender(lambda o, w: _shape_ops(shape, o, w), close_shape)


async def _round(path: str, sizes: SqliteSizes, loop: str, flip: bool,
                 results: Results) -> None:
    """Both contenders, both modes, once each, on this runtime's loop (and, sequentially, the
    two bare shapes)."""
    async with contextlib.AsyncExitStack() as opened:
        contenders: dict[str, Runner] = {}
        for name in CONTENDERS:
            if name == "aiosqlite" and aiosqlite is None:
                continue
            if name == "aptiospin" and not aptio.idle_spin_available:
                continue
            contender = await open_contender(name, f"{path}.{name}", loop == "uvloop")
            opened.push_async_callback(contender.close)
            contenders[name] = contender.run
        names = list(contenders)
        if flip:
            names.reverse()
        for mode, count, tasks in (("seq", sizes.sequential, 1),
                                   ("concurrent", sizes.concurrent, TASKS)):
            ops = operations(count)
            for name in names:  # a short warm-up, then the sample
                if mode != "seq" and name.endswith("shape"):
                    continue  # the shapes show what one round trip's wake-ups cost
                await _timed(contenders[name], ops[: max(1, count // 10)], tasks)
                wall, cpu = await _timed(contenders[name], ops, tasks)
                by_key = results.setdefault(loop, {})
                by_key.setdefault(f"{name}.{mode}", []).append(wall)
                by_key.setdefault(f"{name}.{mode}.cpu", []).append(cpu)


def run_sqlite(sizes: SqliteSizes, loops: list[str],
               progress: Callable[[str], None]) -> Results:
    results: Results = {}
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "bench.sqlite3")  # a file of its own for each contender
        for contender in CONTENDERS:
            _prepare(f"{path}.{contender}")
        for r in range(sizes.repeat):
            for loop in loops:
                progress(f"sqlite round {r + 1}/{sizes.repeat}, {loop}")

                async def body(loop: str = loop, flip: bool = r % 2 == 1) -> None:
                    await _round(path, sizes, loop, flip, results)

                aptio.run(body, use_uvloop=loop == "uvloop")
    return results


_SPIN_LABEL = f"idle_spin={IDLE_SPIN * 1e6:g} µs†"

#: (mode key, the two contenders it compares, its label in the markdown table)
_LINES = (("seq", "aptio", "aiosqlite", "sequential"),
          ("concurrent", "aptio", "aiosqlite", f"{TASKS} tasks"),
          ("seq", "aptiospin", "aiosqlite", f"sequential, {_SPIN_LABEL}"),
          ("concurrent", "aptiospin", "aiosqlite", f"{TASKS} tasks, {_SPIN_LABEL}"),
          ("seq", "loopshape", "queueshape", "sequential, bare shapes*"))

_SPIN_NOTE = ("†: aptio's STA started with `aptio.start_sta(idle_spin=...)`: after serving "
              "a call that came alone its thread polls for the next one that long before its "
              "loop sleeps "
              "(off by default; see the performance guide)")
_SHAPES_NOTE = ("*: neither library: the same operations served by a bare event loop on a "
                "thread (an STA's shape) / by a thread blocked on a queue (aiosqlite's shape)")


def _medians(by_key: dict[str, list[float]], mode: str, a: str,
             b: str) -> tuple[float | None, float | None, float | None, float | None]:
    """µs per operation: ``a``'s and ``b``'s wall time, then their CPU time."""
    def med(key: str) -> float | None:
        samples = by_key.get(key)
        return statistics.median(samples) / 1000 if samples else None

    return (med(f"{a}.{mode}"), med(f"{b}.{mode}"), med(f"{a}.{mode}.cpu"),
            med(f"{b}.{mode}.cpu"))


def render_sqlite(results: Results) -> str:
    out = ["", "sqlite3 connection served to tasks (80% reads, 20% writes, a commit every "
           f"{COMMIT_EVERY} writes; {TASKS} tasks when concurrent)"]
    head = (f"{'loop':<9}{'mode':<18}{'aptio us':>10}{'aiosqlite us':>14}{'ratio':>8}"
            f"{'aptio CPU us':>14}{'aiosqlite CPU us':>18}{'ratio':>8}  aptio ahead")
    out += [head, "-" * len(head)]
    for loop, by_key in results.items():
        for mode, first, second, _ in _LINES:
            a, b, ac, bc = _medians(by_key, mode, first, second)
            if a is None:  # a contender this run did not measure (the spin in a pure build)
                continue
            ratio = f"{a / b:.2f}x" if a and b else "-"
            cpu_ratio = f"{ac / bc:.2f}x" if ac and bc else "-"
            shapes = first == "loopshape"
            ahead = "" if shapes else "-" if not (a and b) else "yes" if a < b else "NO"
            label = ("seq, bare*" if shapes else
                     f"{mode}, spin†" if first == "aptiospin" else mode)
            out.append(f"{loop:<9}{label:<18}{_f(a):>10}{_f(b):>14}{ratio:>8}"
                       f"{_f(ac):>14}{_f(bc):>18}{cpu_ratio:>8}  {ahead}")
    if aiosqlite is None:
        out.append("aiosqlite is not installed (pip install 'aptio[bench]'): aptio only")
    if not aptio.idle_spin_available:
        out.append("this build has no idle spin (pure Python): no spin† rows")
    out.append("ratio: aptio / aiosqlite (below 1: aptio takes less)")
    if _has_spin_rows(results):
        out.append(_SPIN_NOTE.replace("`", ""))
    out.append(_SHAPES_NOTE)
    return "\n".join(out) + "\n"


def render_sqlite_markdown(results: Results, caption: str) -> str:
    """The table as the ``sqlite`` block of ``benchmarks/update_docs.py``."""
    lines = ["<!-- bench:sqlite:begin -->", caption, "",
             "| loop | mode | aptio µs | aiosqlite µs | aptio ÷ aiosqlite | aptio CPU µs "
             "| aiosqlite CPU µs | CPU ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for loop, by_key in results.items():
        for mode, first, second, label in _LINES:
            a, b, ac, bc = _medians(by_key, mode, first, second)
            if a is None:  # a contender this run did not measure (the spin in a pure build)
                continue
            lines.append(f"| {loop} | {label} | {_f(a)} | {_f(b)} | "
                         f"{f'{a / b:.2f}x' if a and b else '-'} | {_f(ac)} | {_f(bc)} | "
                         f"{f'{ac / bc:.2f}x' if ac and bc else '-'} |")
    if _has_spin_rows(results):
        lines += ["", _SPIN_NOTE + "."]
    lines += ["", _SHAPES_NOTE + "."]
    lines.append("<!-- bench:sqlite:end -->")
    return "\n".join(lines) + "\n"


def _has_spin_rows(results: Results) -> bool:
    return any(key.startswith("aptiospin.") for by_key in results.values() for key in by_key)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 10 else f"{value:.1f}"


__all__ = ["SQLITE_QUICK", "SqliteSizes", "operations", "render_sqlite",
           "render_sqlite_markdown", "run_sqlite"]
