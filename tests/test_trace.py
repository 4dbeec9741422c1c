"""Call recordings: every way to record, every kind of event, and the format's rules on what
was written (tests/trace_rules.py)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import aptio
from aptio._call.context import process_state

import trace_rules


@aptio.coclass
class Counter:
    def __init__(self) -> None:
        self.value = 0

    def add(self, n: int) -> int:
        self.value += n
        return self.value

    async def slow_add(self, n: int) -> int:
        await asyncio.sleep(0)
        return self.add(n)

    def fail(self) -> None:
        raise ValueError("on purpose")


@aptio.coclass(aptio.ThreadingModel.FREE)
class Free:
    def where(self) -> str:
        return threading.current_thread().name

    async def awhere(self) -> str:
        return threading.current_thread().name


@aptio.coclass(aptio.ThreadingModel.NEUTRAL)
class Neutral:
    def where(self) -> str:
        return threading.current_thread().name


@aptio.coclass
class Relay:
    async def relay(self, counter: Any, n: int) -> int:
        result: int = await counter.add(n)
        return result

    async def hold(self, lock: aptio.Lock) -> None:
        async with lock:
            pass


def by_step(events: list[dict[str, Any]], step: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("args", {}).get("step") == step]


def lanes(document: dict[str, Any]) -> dict[int, str]:
    return {e["tid"]: e["args"]["name"] for e in document["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name"}


def test_run_records_each_call_as_send_run_and_reply(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"

    async def main() -> None:
        sta = await aptio.start_sta("worker")
        counter = await sta.create(Counter)
        assert await counter.add(2) == 2
        assert await counter.slow_add(3) == 5

    aptio.run(main, trace=path)
    document = trace_rules.load(str(path))
    events = trace_rules.check(document)
    names = lanes(document)
    assert "main STA" in names.values() and "STA 'worker'" in names.values()
    runs = {e["name"]: e for e in by_step(events, "run") if e["ph"] in ("X", "b")}
    assert runs["Counter.add"]["ph"] == "X" and names[runs["Counter.add"]["tid"]] == \
        "STA 'worker'"
    assert runs["Counter.slow_add"]["ph"] == "b"  # a coroutine: an async slice
    assert runs["Counter()"]["args"]["to"] == "worker"
    for name, run in runs.items():
        call = run["args"]["call"]
        send = [e for e in by_step(events, "send") if e["args"]["call"] == call]
        reply = [e for e in by_step(events, "reply") if e["args"]["call"] == call]
        assert len(send) == len(reply) == 1, name
        assert names[send[0]["tid"]] == names[reply[0]["tid"]] == "main STA"
        assert send[0]["ts"] < run["ts"] < reply[0]["ts"]
        assert run["args"]["queued_us"] >= 0 and run["args"]["outcome"] == "returned"
    assert process_state.tracer is None
    assert process_state.context_marked == process_state.contexts_used


@pytest.mark.asyncio
async def test_main_sta_records_chains_nested_in_coroutine_calls(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    async with aptio.main_sta(trace=str(path)):
        sta = await aptio.start_sta("relay")
        relay = await sta.create(Relay)
        counter = await aptio.create(Counter)
        assert await relay.relay(counter, 4) == 4
    events = trace_rules.check(trace_rules.load(str(path)))
    relayed = next(e for e in by_step(events, "run") if e["name"] == "Relay.relay")
    add = next(e for e in by_step(events, "run") if e["name"] == "Counter.add")
    assert add["args"]["parent"] == relayed["args"]["call"]
    assert add["args"]["chain"] == relayed["args"]["chain"]
    # the nested send and its reply sit on the relaying call's own async track
    inner = [e for e in events if e["ph"] == "n" and e["args"]["call"] == add["args"]["call"]]
    assert {e["args"]["step"] for e in inner} == {"send", "reply"}
    assert all(e["id2"] == relayed["id2"] for e in inner)


def test_a_plain_with_on_a_plain_thread_records_blocking_callers(tmp_path: Path) -> None:
    path = tmp_path / "part.json"
    seen: list[str] = []

    async def main() -> None:
        counter = await aptio.create(Counter)
        free = await aptio.create(Free)

        def work() -> None:
            with aptio.recording(path):
                counter.add(1).result()
                seen.append(free.where().result())

        thread = threading.Thread(target=work, name="plain")
        thread.start()
        await asyncio.to_thread(thread.join)

    aptio.run(main)
    document = trace_rules.load(str(path))
    events = trace_rules.check(document)
    names = lanes(document)
    assert seen == ["plain"]  # an implicit MTA member calls a FREE object inline
    plain = "thread 'plain' (implicit MTA)"
    run = next(e for e in by_step(events, "run") if e["name"] == "Free.where")
    assert names[run["tid"]] == plain
    add = next(e for e in by_step(events, "run") if e["name"] == "Counter.add")
    assert names[add["tid"]] == "main STA"
    assert {names[e["tid"]] for e in by_step(events, "send")} == {plain}
    assert {names[e["tid"]] for e in by_step(events, "reply")} == {plain}


@pytest.mark.asyncio
async def test_async_with_records_part_of_a_program_mta_and_neutral_calls(
        main: aptio.Apartment, tmp_path: Path) -> None:
    free = await aptio.create(Free)
    neutral = await aptio.create(Neutral)
    await free.where()  # before: not recorded
    path = tmp_path / "part.json"
    async with aptio.recording(path) as recording:
        assert recording.path == str(path)
        await free.where()
        await free.awhere()
        assert await neutral.where() == threading.current_thread().name
    document = trace_rules.load(str(path))
    events = trace_rules.check(document)
    names = lanes(document)
    runs = {e["name"]: e for e in by_step(events, "run") if e["ph"] in ("X", "b")}
    assert set(runs) == {"Free.where", "Free.awhere", "Neutral.where"}
    assert names[runs["Free.where"]["tid"]].startswith("MTA worker")
    assert names[runs["Free.awhere"]["tid"]] == "MTA loop"
    assert names[runs["Neutral.where"]["tid"]] == "main STA"  # the caller's own thread
    assert runs["Neutral.where"]["args"]["to"] == "NA"


@pytest.mark.asyncio
async def test_waits_that_park_are_recorded_in_their_call(
        main: aptio.Apartment, tmp_path: Path) -> None:
    sta = await aptio.start_sta("holder")
    relay = await sta.create(Relay)
    lock = aptio.Lock()
    path = tmp_path / "waits.json"
    async with aptio.recording(path):
        await lock.acquire()
        call = relay.hold(lock)
        while not lock.statistics().waiters:
            await asyncio.sleep(0)  # the STA's coroutine parks on the lock
        lock.release()
        await call

        def blocked() -> None:
            with lock:
                pass

        await lock.acquire()
        thread = threading.Thread(target=blocked)
        thread.start()
        while not lock.statistics().waiters:
            await asyncio.sleep(0)
        lock.release()
        await asyncio.to_thread(thread.join)
    events = trace_rules.check(trace_rules.load(str(path)))
    waits = [e for e in by_step(events, "wait") if e["ph"] in ("X", "b")]
    hold = next(e for e in by_step(events, "run") if e["name"] == "Relay.hold")
    assert any(e["ph"] == "b" and e.get("id2") == hold["id2"] for e in waits)
    assert any(e["ph"] == "X" for e in waits)  # the thread's blocking wait


def test_failures_cancellations_and_deadlocks_are_marked(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"

    @aptio.coclass(reentrancy=aptio.Reentrancy.NONE)
    class Strict:
        async def outer(self, me: Any) -> None:
            await me.inner()

        async def inner(self) -> None:
            pass

    async def main() -> None:
        sta = await aptio.start_sta("strict")
        counter = await sta.create(Counter)
        with pytest.raises(ValueError, match="on purpose"):
            await counter.fail()
        strict = await sta.create(Strict)
        with pytest.raises(aptio.DeadlockError):
            await strict.outer(strict)
        pending = counter.slow_add(1)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending

    aptio.run(main, trace=path)
    events = trace_rules.check(trace_rules.load(str(path)))
    outcomes = {e["name"].rpartition(".<locals>.")[2]: e["args"]["outcome"]
                for e in by_step(events, "reply")}
    assert outcomes["\u2190 Counter.fail"] == "raised ValueError"
    assert outcomes["Strict.inner"] == "raised DeadlockError"
    assert outcomes["\u2190 Counter.slow_add"] == "cancelled"
    assert [e["name"] for e in by_step(events, "event")] == ["deadlock broken"]


def test_a_message_filter_rejection_is_marked(tmp_path: Path) -> None:
    class No(aptio.MessageFilter):
        def handle_incoming_call(self, info: aptio.CallInfo) -> aptio.ServerCall:
            return aptio.ServerCall.REJECTED

    async def main() -> None:
        sta = await aptio.start_sta("busy")
        counter = await sta.create(Counter)
        sta.set_message_filter(No())
        with pytest.raises(aptio.CallRejectedError):
            await counter.add(1)

    path = tmp_path / "trace.json"
    aptio.run(main, trace=path)
    events = trace_rules.check(trace_rules.load(str(path)))
    assert [e["name"] for e in by_step(events, "event")] == ["call rejected"]
    reply = next(e for e in by_step(events, "reply") if e["name"] == "\u2190 Counter.add")
    assert reply["args"]["outcome"] == "raised CallRejectedError"


def test_the_file_is_written_when_main_fails_or_is_cancelled(tmp_path: Path) -> None:
    async def failing() -> None:
        counter = await aptio.create(Counter)
        await counter.add(1)
        raise KeyError("main failed")

    with pytest.raises(KeyError):
        aptio.run(failing, trace=tmp_path / "failed.json")
    trace_rules.check(trace_rules.load(str(tmp_path / "failed.json")))

    async def cancelled() -> None:
        async def body() -> None:
            async with aptio.main_sta(trace=tmp_path / "cancelled.json"):
                counter = await aptio.create(Counter)
                await counter.add(1)
                await asyncio.Event().wait()

        task = asyncio.ensure_future(body())
        while not (tmp_path / "cancelled.json").exists() and process_state.tracer is None:
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    events = trace_rules.check(trace_rules.load(str(tmp_path / "cancelled.json")))
    assert any(e["name"] == "Counter.add" for e in by_step(events, "run"))


def test_a_second_recording_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    with aptio.recording(tmp_path / "first.json"):
        with pytest.raises(aptio.RecordingError, match=r"already running in this process "
                           r"\(recording to .*first\.json'\); one process records one at a "
                           r"time"), aptio.recording(tmp_path / "second.json"):
            pass

        async def main() -> None:
            pass

        with pytest.raises(aptio.RecordingError, match="already running"):
            aptio.run(main, trace=tmp_path / "third.json")
    assert not (tmp_path / "second.json").exists() and not (tmp_path / "third.json").exists()
    trace_rules.check(trace_rules.load(str(tmp_path / "first.json")))
    recording = aptio.recording(tmp_path / "again.json")
    with recording:
        pass
    with pytest.raises(aptio.RecordingError, match=r"make a new aptio\.recording"), recording:
        pass


def test_a_path_that_cannot_be_written_is_refused_at_the_start(tmp_path: Path) -> None:
    with pytest.raises(aptio.RecordingError, match=r"does not exist; give a file path in a "
                       "directory you can write to"), \
            aptio.recording(tmp_path / "missing" / "trace.json"):
        pass
    with pytest.raises(aptio.RecordingError, match="it is a directory"), \
            aptio.recording(tmp_path):
        pass
    with pytest.raises(TypeError, match="a recording's path is a file path"):
        aptio.recording(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a number of records"), \
            aptio.recording(tmp_path / "t.json", limit=0):
        pass
    assert process_state.tracer is None


def test_the_environment_variable_records_a_program_nobody_edits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.json"
    monkeypatch.setenv("APTIO_TRACE", str(path))

    async def main() -> None:
        counter = await aptio.create(Counter)
        await counter.add(1)

    aptio.run(main)
    events = trace_rules.check(trace_rules.load(str(path)))
    assert any(e["name"] == "Counter.add" for e in by_step(events, "run"))
    monkeypatch.setenv("APTIO_TRACE_LIMIT", "many")
    with pytest.raises(aptio.RecordingError, match="APTIO_TRACE_LIMIT='many' is not a number"):
        aptio.run(main)


def test_the_ring_buffer_keeps_the_newest_records(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"

    async def main() -> None:
        sta = await aptio.start_sta("worker")
        counter = await sta.create(Counter)
        for n in range(50):
            await counter.add(n)

    aptio.run(main, trace=aptio.recording(path, limit=10))
    document = trace_rules.load(str(path))
    events = trace_rules.check(document)
    assert document["metadata"]["limit"] == 10
    assert document["metadata"]["dropped"] >= 40
    assert 1 <= len(by_step(events, "send")) <= 10


@pytest.mark.parametrize("round_", range(5))
def test_calls_from_many_threads_at_once_keep_the_rules(tmp_path: Path, round_: int) -> None:
    path = tmp_path / "many.json"

    async def main() -> None:
        stas = [await aptio.start_sta(f"sta{i}") for i in range(3)]
        counters = [await sta.create(Counter) for sta in stas]
        free = await aptio.create(Free)
        start = threading.Barrier(3)

        def hammer() -> None:
            start.wait()
            for n in range(40):
                counters[n % 3].add(1).result()
                free.where().result()

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        calls = [counter.slow_add(1) for counter in counters for _ in range(30)]
        await asyncio.gather(*calls)
        for thread in threads:
            await asyncio.to_thread(thread.join)

    aptio.run(main, trace=path)
    events = trace_rules.check(trace_rules.load(str(path)))
    assert len(by_step(events, "reply")) >= 3 * 80 + 90


def test_an_unrelated_file_is_left_alone_until_the_end(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text("old")
    with aptio.recording(path):
        assert path.read_text() == "old"  # written once, at the end, whole
    trace_rules.check(trace_rules.load(str(path)))
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".aptio-trace-")]
