"""The rules of the Chrome trace format that Perfetto's JSON importer relies on, checked on a
file a recording wrote (see aptio/_trace/chrome.py for where each comes from)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

PHASES = {"X", "B", "E", "b", "e", "n", "i", "M", "s", "t", "f"}


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as stream:
        document: dict[str, Any] = json.load(stream)
    return document


def check(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Assert every rule; returns the timed events."""
    assert set(document) >= {"traceEvents", "displayTimeUnit", "metadata"}
    assert document["displayTimeUnit"] in ("ms", "ns")
    assert document["metadata"]["aptio-trace"] == 1
    events = document["traceEvents"]
    named_threads: set[tuple[int, int]] = set()
    named_processes: set[int] = set()
    timed = []
    for event in events:
        assert event["ph"] in PHASES, event
        for key in ("pid", "tid"):
            assert isinstance(event[key], int) and 0 < event[key] < 2**32, event
        if event["ph"] == "M":
            if event["name"] in ("thread_name", "process_name"):
                assert isinstance(event["args"]["name"], str) and event["args"]["name"]
            if event["name"] == "thread_name":
                named_threads.add((event["pid"], event["tid"]))
            if event["name"] == "process_name":
                named_processes.add(event["pid"])
            continue
        assert isinstance(event["ts"], (int, float)), event
        timed.append(event)
    last_ts: dict[tuple[int, int], float] = {}
    for event in timed:  # every lane named; complete events in time order per lane
        lane = (event["pid"], event["tid"])
        assert lane in named_threads, f"unnamed lane {lane}: {event}"
        assert event["pid"] in named_processes
        if event["ph"] == "X":
            assert event["dur"] >= 0
            assert event["ts"] >= last_ts.get(lane, float("-inf")), event
            last_ts[lane] = event["ts"]
    _nesting(timed)
    _async_pairs(timed)
    _flows(timed)
    begins = sum(1 for e in timed if e["ph"] == "B")
    assert begins == sum(1 for e in timed if e["ph"] == "E")  # B/E balanced (aptio writes none)
    for event in timed:
        if event["ph"] == "i":
            assert event.get("s", "t") in ("t", "p", "g")
    return timed


def _nesting(timed: list[dict[str, Any]]) -> None:
    """Complete slices on one thread nest or are disjoint, never partly overlap."""
    lanes: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for event in timed:
        if event["ph"] == "X":
            lanes[(event["pid"], event["tid"])].append(
                (round(event["ts"] * 1000), round((event["ts"] + event["dur"]) * 1000)))
    for spans in lanes.values():
        stack: list[tuple[float, float]] = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1][1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1][1], f"partial overlap {stack[-1]} {start, end}"
            stack.append((start, end))


def _async_pairs(timed: list[dict[str, Any]]) -> None:
    """Async begins and ends pair up by category and id, last in first out, with matching
    names, and an end never comes before its begin."""
    stacks: dict[tuple[int, str, Any], list[dict[str, Any]]] = defaultdict(list)
    for event in timed:
        if event["ph"] not in ("b", "e", "n"):
            continue
        assert "id2" in event or "id" in event, event
        key = (event["pid"], event["cat"], json.dumps(event.get("id2", event.get("id"))))
        if event["ph"] == "b":
            stacks[key].append(event)
        elif event["ph"] == "e":
            assert stacks[key], f"an end with no begin: {event}"
            begin = stacks[key].pop()
            assert begin["name"] == event["name"] and begin["ts"] <= event["ts"], (begin, event)
        else:
            assert stacks[key], f"an async instant outside its slice: {event}"
    assert not any(stacks.values()), "unmatched async begins"


def _flows(timed: list[dict[str, Any]]) -> None:
    """Each flow begins once, at its earliest event, and ends somewhere."""
    by_id: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for event in timed:
        if "bind_id" in event:
            assert event.get("flow_in") or event.get("flow_out"), event
            by_id[event["bind_id"]].append(event)
    for flow, events in by_id.items():
        starts = [e for e in events if e.get("flow_out") and not e.get("flow_in")]
        assert len(starts) == 1, f"flow {flow} begins {len(starts)} times"
        assert any(e.get("flow_in") for e in events), f"flow {flow} never ends"
        assert all(starts[0]["ts"] < e["ts"] for e in events if e is not starts[0]), events
