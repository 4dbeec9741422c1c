"""Recordings across processes: a server records too, and its part lands in the client's file,
one process lane per server, on the client's clock."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import aptio

import trace_rules
from remote_classes import Service

pytestmark = pytest.mark.timeout(120)


def steps(events: list[dict[str, Any]], call: int) -> dict[str, dict[str, Any]]:
    return {e["args"]["step"]: e for e in events
            if e.get("args", {}).get("call") == call and e["ph"] in ("X", "b", "n")}


def processes(document: dict[str, Any]) -> dict[int, str]:
    return {e["pid"]: e["args"]["name"] for e in document["traceEvents"]
            if e["ph"] == "M" and e["name"] == "process_name"}


def test_a_server_started_during_the_recording_records_its_side(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    pids: list[int | None] = []

    async def main() -> None:
        server = await aptio.start_server("traced")
        pids.append(server.pid)
        service = await server.create(Service, 1)
        assert await service.inc() == 2
        assert await service.ainc(3) == 5

    aptio.run(main, trace=path)
    document = trace_rules.load(str(path))
    events = trace_rules.check(document)
    names = processes(document)
    assert names[pids[0]] == f"server 'traced' (pid {pids[0]})"  # type: ignore[index]
    inc = next(e for e in events if e["name"] == "Service.inc" and e["args"]["step"] == "run")
    parts = steps(events, inc["args"]["call"])
    assert parts["send"]["pid"] != pids[0] and parts["reply"]["pid"] != pids[0]
    assert parts["run"]["pid"] == pids[0]  # one call, two processes, one flow
    assert parts["send"]["ts"] < parts["run"]["ts"] < parts["reply"]["ts"]
    assert {p["bind_id"] for p in parts.values()} == {inc["args"]["call"]}
    assert document["metadata"]["processes"] == 2


@pytest.mark.asyncio
async def test_a_running_server_is_told_to_record_and_collected(
        main: aptio.Apartment, tmp_path: Path) -> None:
    async with await aptio.start_server("running") as server:
        service = await server.create(Service)
        await service.inc()  # before the recording: not in it
        path = tmp_path / "part.json"
        async with aptio.recording(path):
            await service.inc(5)
        document = trace_rules.load(str(path))
        events = trace_rules.check(document)
        runs = [e for e in events if e.get("args", {}).get("step") == "run"]
        assert [(e["name"], e["pid"]) for e in runs] == [("Service.inc", server.pid)]

        def blocking() -> None:  # a plain with on a thread that may block collects too
            with aptio.recording(tmp_path / "thread.json"):
                service.inc().result()

        thread = threading.Thread(target=blocking)
        thread.start()
        await asyncio.to_thread(thread.join)
        events = trace_rules.check(trace_rules.load(str(tmp_path / "thread.json")))
        assert server.pid in {e["pid"] for e in events}

        with aptio.recording(tmp_path / "sta.json"):  # on the main STA, which must not block
            await service.inc()
        document = trace_rules.load(str(tmp_path / "sta.json"))
        trace_rules.check(document)
        assert "use `async with aptio.recording(...)` there" in document["metadata"]["notes"]
