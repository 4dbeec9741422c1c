"""Writing a recording as a Chrome trace (the JSON Object Format: ``traceEvents`` plus
``displayTimeUnit``), which Perfetto's JSON importer and chrome://tracing open.

What each call becomes (``args.call`` is the call's id in the file, ``args.step`` says which
part of it an event is):

* ``send``: a zero-length slice (``X``) on the sending thread, or an async instant (``n``) on
  the sending coroutine call's own track;
* ``run``: a complete slice (``X``) on the thread for a sync method; a nestable async slice
  (``b``/``e``, category ``aptio.coroutine``, ``id2.local`` the call's id) for a coroutine
  method, since coroutines interleave on one thread and their slices may overlap there;
* ``reply``: a zero-length slice where the reply reached the caller (or an ``n`` on the awaiting
  coroutine call's track);
* one flow (``bind_id`` = the call's id): out of the send, through the run, into the reply.

A call into another process is one call in the file: the client's send and reply, the
server's run. Waits on primitives are ``wait`` slices (a thread's on its thread, a
coroutine's nested in its call's async slice), deadlocks broken and calls turned away are
instants (``i``), and ``M`` events name the processes and the lanes.

The rules Perfetto's importer relies on, which the writer keeps whatever the recording holds
(a call cut short by shutdown, a ring buffer that let records go): complete slices on one
thread nest or are disjoint, never partly overlap (a partial overlap is clamped); async
begins and ends pair up by category and id, nested ones inside their parent; each flow id
begins once, at the earliest of its slices (send < run < reply, enforced to the nanosecond);
pids and tids are integers; every lane is named.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from .records import CallRow, ProcessPart, WaitRow

__all__ = ["FORMAT", "chrome_trace", "flatten", "write_trace"]

#: The value of ``metadata["aptio-trace"]``: the version of what the file holds.
FORMAT: Final = 1

_CALL: Final = "aptio.call"
_CORO: Final = "aptio.coroutine"
_WAIT: Final = "aptio.wait"
_EVENT: Final = "aptio.event"


class _Placed(NamedTuple):
    """A process part with its clock offset from the client's clock (ns)."""

    part: ProcessPart
    offset: int
    sort: int


class _Run(NamedTuple):
    """Where and when a call ran (in the client's clock)."""

    pid: int
    tid: int
    start: int
    end: int
    is_async: bool
    unfinished: bool


def flatten(root: ProcessPart) -> list[_Placed]:
    """The client's part and every server part under it, each with its total clock offset."""
    placed: list[_Placed] = []

    def visit(part: ProcessPart, offset: int) -> None:
        placed.append(_Placed(part, offset, len(placed)))
        for child in part.children:
            visit(child, offset + child.clock_offset_ns)

    visit(root, 0)
    return placed


def label(row: CallRow) -> str:
    """How a call is named: ``Class.method`` (``Class()`` for a creation)."""
    if row.method == "__init__":
        return f"{row.cls}()" if row.cls else "create()"
    return f"{row.cls}.{row.method}" if row.cls else row.method


class _Writer:
    def __init__(self, root: ProcessPart) -> None:
        self.placed = flatten(root)
        self.base = min(p.part.started_ns - p.offset for p in self.placed)
        self.thread_x: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.async_roots: dict[tuple[int, int], dict[str, Any]] = {}
        self.async_children: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.instants: list[dict[str, Any]] = []
        self.cookies = 0

    def ts(self, ns: int) -> float:
        return round((ns - self.base) / 1000, 3)

    # -- calls --------------------------------------------------------------------------

    def calls(self) -> dict[tuple[int, int], int]:
        """Emit every call; returns the id in the file of each call row, by (part, serial).
        A call that crossed processes is one call: the sender's row (send and reply) and the
        receiver's row (the run) share its id."""
        rows = [(placed, row) for placed in self.placed for row in placed.part.calls]
        senders = {row.wire: (placed, row) for placed, row in rows
                   if row.wire is not None and not row.arrived}
        ids: dict[tuple[int, int], int] = {}
        for placed, row in rows:
            if not (row.arrived and row.wire in senders):
                ids[(placed.sort, row.serial)] = len(ids) + 1
        self.cookies = len(ids) + 1
        ran_there: dict[int, tuple[_Placed, CallRow]] = {}
        for placed, row in rows:
            if row.arrived and row.wire in senders:
                sender_placed, sender = senders[row.wire]
                call_id = ids[(sender_placed.sort, sender.serial)]
                ids[(placed.sort, row.serial)] = call_id
                ran_there[call_id] = (placed, row)
        own = [(ids[(placed.sort, row.serial)], placed, row) for placed, row in rows
               if not (row.arrived and row.wire in senders)]
        runs: dict[int, _Run] = {}
        for call_id, placed, row in own:
            run_placed, run_row = ran_there.get(call_id, (placed, row))
            if run_row.start_ns:
                end = run_row.end_ns or run_placed.part.stopped_ns
                runs[call_id] = _Run(run_placed.part.pid, run_row.start_tid,
                                     run_row.start_ns - run_placed.offset,
                                     end - run_placed.offset, run_row.is_async,
                                     not run_row.end_ns)
        for call_id, placed, row in own:
            parent = ids.get((placed.sort, row.parent), 0) if row.parent else 0
            self.call(call_id, placed, row, runs.get(call_id), runs.get(parent), parent)
        return ids

    def call(self, call_id: int, placed: _Placed, row: CallRow, run: _Run | None,
             parent_run: _Run | None, parent: int) -> None:
        pid = placed.part.pid
        name = label(row)
        send = row.send_ns - placed.offset
        reply = row.reply_ns - placed.offset if row.reply_ns else 0
        common: dict[str, Any] = {"call": call_id, "chain": row.causality}
        if parent:
            common["parent"] = parent
        has_send = not row.arrived
        if run is not None:
            start = max(run.start, send + 1) if has_send else run.start
            end = max(run.end, start)
            run = run._replace(start=start, end=end)
            if reply:
                reply = max(reply, end + 1)
        elif reply:
            reply = max(reply, send + 1)
        flow = has_send and (run is not None or bool(reply))
        if has_send:
            args = {**common, "step": "send", "from": row.source, "to": row.target}
            self.point(pid, row.send_tid, send, f"\u2192 {name}", args, parent, parent_run,
                       {"bind_id": call_id, "flow_out": True} if flow else {})
        if run is not None:
            args = {**common, "step": "run", "from": row.source, "to": row.target,
                    "outcome": row.outcome or "unfinished"}
            if has_send:
                args["queued_us"] = round((run.start - send) / 1000, 3)
            if row.rejections:
                args["rejections"] = row.rejections
            binding: dict[str, Any] = {}
            if flow:
                binding = {"bind_id": call_id, "flow_in": True, "flow_out": bool(reply)}
            if run.is_async:
                root = {"name": name, "cat": _CORO, "ph": "b", "ts": run.start, "pid": run.pid,
                        "tid": run.tid, "id2": {"local": call_id}, "args": args, **binding}
                self.async_roots[(run.pid, call_id)] = {**root, "end": run.end}
            else:
                self.thread_x.setdefault((run.pid, run.tid), []).append(
                    {"name": name, "cat": _CALL, "ph": "X", "ts": run.start,
                     "end": run.end, "pid": run.pid, "tid": run.tid, "args": args, **binding})
        if reply:
            args = {**common, "step": "reply", "outcome": row.outcome}
            self.point(pid, row.reply_tid, reply, f"\u2190 {name}", args, parent, parent_run,
                       {"bind_id": call_id, "flow_in": True} if flow else {})

    def point(self, pid: int, tid: int, ns: int, name: str, args: dict[str, Any],
              parent: int, parent_run: _Run | None, binding: dict[str, Any]) -> None:
        """A send or a reply: on the awaiting coroutine call's track if it happened inside
        that call on its thread, else on the thread."""
        if (parent_run is not None and parent_run.is_async and parent_run.pid == pid
                and parent_run.tid == tid and parent_run.start < ns < parent_run.end):
            self.async_children.setdefault((pid, parent), []).append(
                {"name": name, "cat": _CORO, "ph": "n", "ts": ns, "end": ns, "pid": pid,
                 "tid": tid, "id2": {"local": parent}, "args": args, **binding})
            return
        self.thread_x.setdefault((pid, tid), []).append(
            {"name": name, "cat": _CALL, "ph": "X", "ts": ns, "end": ns, "pid": pid,
             "tid": tid, "args": args, **binding})

    # -- waits and instants -------------------------------------------------------------

    def waits(self, ids: dict[tuple[int, int], int]) -> None:
        for placed in self.placed:
            part = placed.part
            for wait in part.waits:
                self.wait(placed, wait, ids.get((placed.sort, wait.call), 0))
            for instant in part.instants:
                args: dict[str, Any] = {"step": "event", "message": instant.message}
                call = ids.get((placed.sort, instant.call), 0)
                if call:
                    args["call"] = call
                self.instants.append({"name": instant.name, "cat": _EVENT, "ph": "i", "s": "t",
                                      "ts": instant.ns - placed.offset, "pid": part.pid,
                                      "tid": instant.tid, "args": args})

    def wait(self, placed: _Placed, wait: WaitRow, call: int) -> None:
        pid = placed.part.pid
        start = wait.start_ns - placed.offset
        end = (wait.end_ns or placed.part.stopped_ns) - placed.offset
        args: dict[str, Any] = {"step": "wait", "primitive": wait.primitive}
        if call:
            args["call"] = call
        if not wait.end_ns:
            args["unfinished"] = True
        name = f"wait {wait.primitive}"
        if wait.blocking:
            self.thread_x.setdefault((pid, wait.tid), []).append(
                {"name": name, "cat": _WAIT, "ph": "X", "ts": start, "end": end, "pid": pid,
                 "tid": wait.tid, "args": args})
            return
        root = self.async_roots.get((pid, call))
        if root is not None and root["tid"] == wait.tid:
            self.async_children.setdefault((pid, call), []).append(
                {"name": name, "cat": _CORO, "ph": "b", "ts": start, "end": end, "pid": pid,
                 "tid": wait.tid, "id2": {"local": call}, "args": args})
        else:
            self.standalone({"name": name, "cat": _WAIT, "ph": "b", "ts": start, "end": end,
                             "pid": pid, "tid": wait.tid, "args": args})

    def standalone(self, event: dict[str, Any]) -> None:
        self.cookies += 1
        cookie = self.cookies
        event["id2"] = {"local": cookie}
        self.async_roots[(event["pid"], cookie)] = event

    # -- the rules of the format ----------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """Every timed event, with the nesting rules kept (times still in ns)."""
        for slices in self.thread_x.values():
            slices.sort(key=lambda e: (e["ts"], -e["end"]))
            stack: list[dict[str, Any]] = []
            for event in slices:
                while stack and stack[-1]["end"] <= event["ts"]:
                    stack.pop()
                if stack and event["end"] > stack[-1]["end"]:
                    event["end"] = stack[-1]["end"]  # a partial overlap: clamp it inside
                event["depth"] = len(stack)
                stack.append(event)
                yield event
        for (pid, cookie), root in list(self.async_roots.items()):
            children = sorted(self.async_children.get((pid, cookie), ()),
                              key=lambda e: (e["ts"], -e["end"]))
            yield root
            stack = [root]
            for child in children:
                while len(stack) > 1 and stack[-1]["end"] <= child["ts"]:
                    stack.pop()
                top = stack[-1]
                if child["ts"] < top["ts"] or child["end"] > top["end"]:
                    if child["ph"] == "n":
                        continue  # not inside its call's slice after all: left out
                    child.pop("id2")
                    child["cat"] = _WAIT  # overlaps a sibling: its own track
                    self.standalone(child)
                    yield child
                    continue
                child["depth"] = len(stack)
                yield child
                if child["ph"] == "b":
                    stack.append(child)
        yield from self.instants

    def render(self, source: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """One event as the file holds it (times in microseconds; an async slice as its
        begin and its end)."""
        event = {key: value for key, value in source.items() if key not in ("end", "depth")}
        end: int = source.get("end", source["ts"])
        event["ts"] = self.ts(event["ts"])
        if event["ph"] == "X":
            event["dur"] = max(round(self.ts(end) - event["ts"], 3), 0)
            yield event
        elif event["ph"] == "b":
            yield event
            args = event.get("args", {})
            closing = {"name": event["name"], "cat": event["cat"], "ph": "e",
                       "ts": max(self.ts(end), event["ts"]), "pid": event["pid"],
                       "tid": event["tid"], "id2": event["id2"],
                       "args": {key: args[key] for key in ("call", "step") if key in args}}
            yield closing
        else:
            yield event

    def metadata_events(self) -> Iterator[dict[str, Any]]:
        for placed in self.placed:
            part = placed.part
            yield {"name": "process_name", "ph": "M", "pid": part.pid, "tid": part.pid,
                   "args": {"name": part.label}}
            yield {"name": "process_sort_index", "ph": "M", "pid": part.pid, "tid": part.pid,
                   "args": {"sort_index": placed.sort}}
            for thread in sorted(part.threads, key=lambda t: t.order):
                yield {"name": "thread_name", "ph": "M", "pid": part.pid, "tid": thread.tid,
                       "args": {"name": thread.lane, "apartment": thread.apartment,
                                "kind": thread.kind}}
                yield {"name": "thread_sort_index", "ph": "M", "pid": part.pid,
                       "tid": thread.tid, "args": {"sort_index": thread.order}}


def chrome_trace(root: ProcessPart, version: str) -> dict[str, Any]:
    """The recording ``root`` (the client's part, servers' parts inside) as a Chrome trace."""
    writer = _Writer(root)
    ids = writer.calls()
    writer.waits(ids)
    timed: list[tuple[tuple[float, int, int], dict[str, Any]]] = []
    for event in writer.events():
        depth = event.get("depth", 0)
        for rendered in writer.render(event):
            if rendered["ph"] == "e":
                key = (rendered["ts"], 0, -depth)  # at one instant: ends first, inner first
            else:
                key = (rendered["ts"], 1, depth)  # then begins, outer first
            timed.append((key, rendered))
    timed.sort(key=lambda item: item[0])
    parts = [placed.part for placed in writer.placed]
    notes = [note for part in parts for note in part.notes]
    metadata: dict[str, Any] = {
        "aptio-trace": FORMAT,
        "aptio-version": version,
        "clock": "time.perf_counter_ns, one clock for every process of the machine",
        "processes": len(parts),
        "calls": len({call_id for call_id in ids.values()}),
        "limit": root.limit,
        "dropped": sum(part.dropped for part in parts),
        "notes": " | ".join(notes),
    }
    return {"traceEvents": [*writer.metadata_events(), *(event for _, event in timed)],
            "displayTimeUnit": "ns", "metadata": metadata}


def write_trace(trace: dict[str, Any], path: str) -> None:
    """Write ``trace`` to ``path`` as a whole: into a temporary file beside it, then renamed
    over it, so the file is never seen half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".aptio-trace-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            events = trace["traceEvents"]
            stream.write('{"traceEvents": [\n')
            for index, event in enumerate(events):
                stream.write(json.dumps(event, separators=(",", ":")))
                stream.write(",\n" if index + 1 < len(events) else "\n")
            stream.write("],\n")
            stream.write(f'"displayTimeUnit": {json.dumps(trace["displayTimeUnit"])},\n')
            stream.write(f'"metadata": {json.dumps(trace["metadata"], indent=1)}\n}}\n')
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
