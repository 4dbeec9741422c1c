"""Reading a recording back from its file: the calls, lanes and events that ``python -m aptio
trace summarize`` and ``plot`` show. Only files aptio wrote are accepted (their
``metadata["aptio-trace"]``); anything else raises :class:`aptio.TraceFileError` saying what
the file is instead."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .._values.errors import TraceFileError
from .chrome import FORMAT

__all__ = ["CallView", "Lane", "TraceView", "load"]


class Lane(NamedTuple):
    """A thread of a process, as the file names it."""

    process: str  # the process's name in the file
    name: str  # the thread's lane name
    apartment: str  # its apartment ("" for a thread in none)


class CallView(NamedTuple):
    """One call, put together from its send, run and reply events (times in microseconds
    from the start of the recording; None where the recording has no such moment)."""

    id: int
    name: str
    chain: int
    parent: int
    source: str  # the caller's apartment
    target: str  # where it ran
    sent: float | None
    started: float | None
    ended: float | None
    replied: float | None
    outcome: str
    is_async: bool
    send_lane: tuple[int, int] | None  # (pid, tid)
    run_lane: tuple[int, int] | None

    @property
    def total(self) -> float | None:
        """Send to reply (or to the end of its run where no reply was noted)."""
        last = self.replied if self.replied is not None else self.ended
        return last - self.sent if last is not None and self.sent is not None else None

    @property
    def queued(self) -> float | None:
        return (self.started - self.sent if self.started is not None and self.sent is not None
                else None)

    @property
    def ran(self) -> float | None:
        return (self.ended - self.started if self.ended is not None and self.started is not None
                else None)


class TraceView(NamedTuple):
    path: str
    metadata: dict[str, Any]
    processes: dict[int, str]
    lanes: dict[tuple[int, int], Lane]
    calls: dict[int, CallView]
    instants: list[dict[str, Any]]
    waits: list[dict[str, Any]]
    span: float  # microseconds from the first event to the last


def load(path: str) -> TraceView:
    """The recording in ``path`` (TraceFileError if it is not one aptio wrote)."""
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except FileNotFoundError:
        raise TraceFileError(f"{path!r} does not exist; give the file a recording wrote "
                             "(aptio.recording, aptio.run(main, trace=...), APTIO_TRACE)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TraceFileError(f"{path!r} is not a JSON file ({error}); give the .json file an "
                             "aptio recording wrote") from None
    except OSError as error:
        raise TraceFileError(f"{path!r} cannot be read: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        raise TraceFileError(f"{path!r} is JSON but not a Chrome trace (no traceEvents list); "
                             "give the file an aptio recording wrote")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or "aptio-trace" not in metadata:
        raise TraceFileError(f"{path!r} is a Chrome trace that aptio did not write (no aptio "
                             "metadata); summarize and plot read aptio's recordings only")
    if metadata["aptio-trace"] != FORMAT:
        raise TraceFileError(f"{path!r} holds aptio trace format {metadata['aptio-trace']!r}; "
                             f"this aptio reads format {FORMAT}: use the aptio that wrote it")
    try:
        return _view(path, metadata, document["traceEvents"])
    except (KeyError, TypeError, ValueError) as error:
        raise TraceFileError(f"{path!r} is damaged: an event lacks what aptio writes "
                             f"({type(error).__name__}: {error}); record it again") from None


def _view(path: str, metadata: dict[str, Any], events: list[Any]) -> TraceView:
    processes: dict[int, str] = {}
    lanes: dict[tuple[int, int], Lane] = {}
    parts: dict[int, dict[str, Any]] = {}
    instants: list[dict[str, Any]] = []
    waits: list[dict[str, Any]] = []
    first = last = None
    for event in events:
        phase = event["ph"]
        if phase == "M":
            if event["name"] == "process_name":
                processes[event["pid"]] = event["args"]["name"]
            elif event["name"] == "thread_name":
                args = event["args"]
                lanes[(event["pid"], event["tid"])] = Lane(
                    "", args["name"], args.get("apartment", ""))
            continue
        ts = float(event["ts"])
        end = ts + float(event.get("dur", 0))
        first = ts if first is None else min(first, ts)
        last = end if last is None else max(last, end)
        args = event.get("args") or {}
        step = args.get("step")
        if step == "event":
            instants.append(event)
        elif step == "wait" and phase in ("X", "b"):
            waits.append(event)
        if "call" not in args or step not in ("send", "run", "reply"):
            continue
        part = parts.setdefault(args["call"], {"chain": args.get("chain", 0),
                                               "parent": args.get("parent", 0)})
        where = (event["pid"], event["tid"])
        if step == "send":
            part.update(sent=ts, send_lane=where, source=args.get("from", ""),
                        target=args.get("to", ""), send_name=event["name"])
        elif step == "reply":
            part.update(replied=ts, reply_outcome=args.get("outcome", ""))
        elif phase in ("X", "b"):
            part.update(started=ts, run_lane=where, name=event["name"],
                        outcome=args.get("outcome", ""), is_async=phase == "b",
                        source=args.get("from", part.get("source", "")),
                        target=args.get("to", part.get("target", "")))
            if phase == "X":
                part["ended"] = end
        elif phase == "e" and "started" in part:
            part["ended"] = ts
    for (pid, tid), lane in list(lanes.items()):
        lanes[(pid, tid)] = lane._replace(process=processes.get(pid, str(pid)))
    calls = {}
    for call_id, part in parts.items():
        name = part.get("name") or str(part.get("send_name", "?")).removeprefix("\u2192 ")
        calls[call_id] = CallView(
            call_id, name, part["chain"], part["parent"], part.get("source", ""),
            part.get("target", ""), part.get("sent"), part.get("started"), part.get("ended"),
            part.get("replied"), part.get("outcome") or part.get("reply_outcome", ""),
            part.get("is_async", False), part.get("send_lane"), part.get("run_lane"))
    span = (last - first) if first is not None and last is not None else 0.0
    return TraceView(path, metadata, processes, lanes, calls, instants, waits, span)
