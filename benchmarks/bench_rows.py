"""The rows of the call benchmark's table: shared by the bench (bench_calls.py) and
the builds comparison (bench_builds.py)."""

from __future__ import annotations

# (label, key, baseline key for the ratio column or None)
ROWS: list[tuple[str, str, str | None]] = [
    ("floor: 2x call_soon_threadsafe, seq", "floor.seq", None),
    ("aptio STA->STA sequential", "aptio.seq.sta_sta", "floor.seq"),
    ("  same, async method", "aptio.seq_async.sta_sta", "floor.seq"),
    ("  reference transport", "reference.seq.sta_sta", "floor.seq"),
    ("  naive run_coroutine_threadsafe", "naive.seq", "floor.seq"),
    ("  pykka proxy .get()", "pykka.seq", "floor.seq"),
    ("aptio STA->MTA sequential", "aptio.seq.sta_mta", "floor.seq"),
    ("aptio thread->STA sequential", "aptio.seq.thread_sta", "floor.seq"),
    ("  anyio portal.call(sync fn)", "anyio.seq.sync_fn", "floor.seq"),
    ("  anyio portal.call(async fn)", "anyio.seq.async_fn", "floor.seq"),
    ("aptio STA->STA pipelined", "aptio.pipe.sta_sta", "naive.pipe"),
    ("  same, async method", "aptio.pipe_async.sta_sta", "naive.pipe"),
    ("  same, asyncio.gather", "aptio.pipe_gather.sta_sta", "naive.pipe"),
    ("  reference transport", "reference.pipe.sta_sta", "naive.pipe"),
    ("  naive run_coroutine_threadsafe", "naive.pipe", "naive.pipe"),
    ("  floor: bare deque, no semantics", "bare.pipe", "naive.pipe"),
    ("  pykka futures + get_all", "pykka.pipe", "naive.pipe"),
    ("aptio STA->MTA pipelined", "aptio.pipe.sta_mta", "naive.pipe"),
    ("aptio thread->STA pipelined", "aptio.pipe.thread_sta", "naive.pipe"),
    ("  anyio start_task_soon", "anyio.pipe.async_fn", "naive.pipe"),
    ("same-apt proxy, async method", "local.proxy_async", "local.direct_await"),
    ("  direct await of the method", "local.direct_await", "local.direct_await"),
    ("same-apt proxy, sync method", "local.proxy_sync", "local.direct_sync"),
    ("  direct sync call", "local.direct_sync", "local.direct_sync"),
    ("  create + await a done Future", "local.done_future", "local.direct_sync"),
    ("create, same apartment", "create.same", "create.direct"),
    ("create, in another STA", "create.other_sta", "create.direct"),
    ("  direct construction", "create.direct", "create.direct"),
    ("STA start", "sta.start", "bare.start"),
    ("STA stop", "sta.stop", "bare.stop"),
    ("  bare loop thread start", "bare.start", "bare.start"),
    ("  bare loop thread stop", "bare.stop", "bare.stop"),
]

__all__ = ["ROWS"]
