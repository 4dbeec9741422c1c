"""``python -m aptio trace summarize``: a recording as plain text, in a stable format (fixed
sections and columns, times in milliseconds with three decimals), so it can be read in a
terminal, diffed, or checked by a test.

Sections: the recording (processes, calls, span, records let go), the slowest calls (send to
reply, split into queued and ran), queue waits per apartment (send to start), the longest
chains (a causality chain's first send to its last reply, with its deepest path of nested
calls), and the marked events (deadlocks broken, calls turned away, refusals)."""

from __future__ import annotations

import collections
import statistics
from collections.abc import Iterable

from .reader import CallView, TraceView

__all__ = ["summarize"]


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.3f} ms"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _table(headers: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                     .rstrip())
    return lines


def summarize(view: TraceView, top: int = 10) -> str:
    """The text report of ``view`` (``top`` rows per list)."""
    calls = list(view.calls.values())
    meta = view.metadata
    lines = [f"aptio call recording: {view.path}",
             f"  {len(calls)} calls in {len(view.processes)} "
             f"process{'es' if len(view.processes) != 1 else ''}, {_ms(view.span)} recorded; "
             f"{meta.get('dropped', 0)} records let go (ring buffer of {meta.get('limit', '?')})"]
    if meta.get("notes"):
        lines.append(f"  notes: {meta['notes']}")
    lines += ["", "Slowest calls (send to reply)"]
    timed = sorted((c for c in calls if c.total is not None),
                   key=lambda c: (-(c.total or 0.0), c.id))[:top]
    lines += _table(("total", "queued", "ran", "call", "from -> to", "outcome"),
                    ((_ms(c.total), _ms(c.queued), _ms(c.ran), f"#{c.id} {c.name}",
                      f"{c.source} -> {c.target}", c.outcome or "unfinished") for c in timed))
    lines += ["", "Queue waits per apartment (send to start)"]
    by_target: dict[str, list[float]] = collections.defaultdict(list)
    for call in calls:
        if call.queued is not None:
            by_target[call.target].append(call.queued)
    lines += _table(("apartment", "calls", "mean", "p50", "p95", "max"),
                    ((target, str(len(waits)), _ms(statistics.fmean(waits)),
                      _ms(_percentile(waits, 0.5)), _ms(_percentile(waits, 0.95)),
                      _ms(max(waits))) for target, waits in sorted(by_target.items())))
    lines += ["", "Longest chains (first send to last reply)"]
    lines += _table(("chain", "calls", "depth", "span", "deepest path"),
                    _chains(calls, top))
    lines += ["", "Marked events"]
    counts = collections.Counter(event["name"] for event in view.instants)
    waits = len(view.waits)
    lines.append(f"  waits on aptio primitives that parked: {waits}")
    for name in ("deadlock broken", "call rejected", "input-sync refusal"):
        lines.append(f"  {name}: {counts.get(name, 0)}")
    return "\n".join(lines) + "\n"


def _chains(calls: list[CallView], top: int) -> list[tuple[str, ...]]:
    by_chain: dict[int, list[CallView]] = collections.defaultdict(list)
    for call in calls:
        by_chain[call.chain].append(call)
    rows = []
    for chain, members in by_chain.items():
        firsts = [c.sent if c.sent is not None else c.started for c in members]
        lasts = [c.replied if c.replied is not None else c.ended for c in members]
        begin = min((t for t in firsts if t is not None), default=None)
        end = max((t for t in lasts if t is not None), default=None)
        span = end - begin if begin is not None and end is not None else 0.0
        path = _deepest(members)
        rows.append((span, chain, len(members), path))
    rows.sort(key=lambda r: (-r[0], r[1]))
    return [(str(chain), str(count), str(len(path)), _ms(span),
             " > ".join(c.name for c in path)) for span, chain, count, path in rows[:top]]


def _deepest(members: list[CallView]) -> list[CallView]:
    """The longest parent-to-child path among a chain's calls (earliest first on ties)."""
    by_id = {c.id: c for c in members}

    def path_to(call: CallView) -> list[CallView]:
        path = [call]
        seen = {call.id}
        while path[-1].parent in by_id and path[-1].parent not in seen:
            seen.add(path[-1].parent)
            path.append(by_id[path[-1].parent])
        return path[::-1]

    best: list[CallView] = []
    for call in sorted(members, key=lambda c: c.id):
        path = path_to(call)
        if len(path) > len(best):
            best = path
    return best
