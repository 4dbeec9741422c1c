"""``python -m aptio trace plot``: a recording as a timeline picture (matplotlib, the
``aptio[plot]`` extra).

One lane per apartment (per process), calls as bars in the lane of the apartment that ran them
(sync methods solid, coroutine methods lighter and outlined; calls that overlap in a lane,
such as coroutines interleaving or MTA workers running at once, get rows of their own), and
each call's path as lines: from the send in the caller's lane to the bar's start, and from the
bar's end back to the reply. A causality chain has one colour. Waits on aptio primitives are
grey bars, marked events red crosses.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from .reader import CallView, TraceView

__all__ = ["plot"]

_ROW = 0.8  # a lane's rows share this much of one unit of height


def _lane_of(view: TraceView, where: tuple[int, int] | None) -> str | None:
    if where is None:
        return None
    lane = view.lanes.get(where)
    process = view.processes.get(where[0], str(where[0]))
    first = next(iter(view.processes), None)
    name = (lane.apartment or lane.name) if lane is not None else f"thread {where[1]}"
    return name if where[0] == first else f"{process}: {name}"


def _pack(spans: list[tuple[float, float, int]]) -> dict[int, int]:
    """Rows for overlapping bars: each bar goes into the first row free at its start."""
    rows: list[float] = []
    placed: dict[int, int] = {}
    for start, end, key in sorted(spans):
        for index, free_from in enumerate(rows):
            if free_from <= start:
                rows[index] = end
                placed[key] = index
                break
        else:
            rows.append(end)
            placed[key] = len(rows) - 1
    return placed


def plot(view: TraceView, output: str, width: float = 12.0) -> None:
    """Draw ``view`` into ``output`` (PNG, SVG or PDF, by its extension)."""
    calls = [c for c in view.calls.values() if c.started is not None]
    lanes: dict[str, list[CallView]] = {}
    for call in calls:
        lane = _lane_of(view, call.run_lane) or call.target
        lanes.setdefault(lane, []).append(call)
    for call in view.calls.values():  # lanes that only send (the main STA of a script)
        sender = _lane_of(view, call.send_lane)
        if sender is not None:
            lanes.setdefault(sender, [])
    order = {lane.apartment or lane.name: index for index, lane in
             enumerate(sorted(view.lanes.values(), key=lambda lane: lane.process))}
    names = sorted(lanes, key=lambda n: (":" in n, order.get(n.split(": ")[-1], 99), n))
    rows_of: dict[int, int] = {}
    heights: dict[str, int] = {}
    for name in names:
        spans = [(c.started or 0.0, (c.ended or c.started or 0.0), c.id) for c in lanes[name]]
        placed = _pack(spans)
        rows_of.update(placed)
        heights[name] = max(placed.values(), default=0) + 1
    base: dict[str, float] = {}
    y = 0.0
    for name in reversed(names):
        base[name] = y
        y += heights[name] * _ROW + 0.6
    centre = {name: base[name] + heights[name] * _ROW / 2 for name in names}
    scale = 1000.0  # microseconds -> milliseconds
    fig, ax = plt.subplots(figsize=(width, max(2.5, 0.9 + y * 0.55)), dpi=110)
    palette = plt.get_cmap("tab10")
    chains = sorted({c.chain for c in view.calls.values()})
    colour = {chain: palette(i % 10) for i, chain in enumerate(chains)}
    times = [t for c in view.calls.values() for t in (c.sent, c.started, c.ended, c.replied)
             if t is not None]
    low, high = (min(times) / scale, max(times) / scale) if times else (0.0, 1.0)
    margin = (high - low) * 0.02 or 0.01
    ax.set_xlim(low - margin, high + margin)
    minimum_label = (high - low) * 0.07
    bar_y: dict[int, float] = {}
    bar_lane: dict[int, str] = {}
    for name in names:
        for call in lanes[name]:
            start = (call.started or 0.0) / scale
            length = max(((call.ended or call.started or 0.0) - (call.started or 0.0)) / scale,
                         0.0)
            row_y = base[name] + rows_of[call.id] * _ROW
            ax.broken_barh([(start, length)], (row_y + 0.08, _ROW - 0.16),
                           facecolor=colour[call.chain], edgecolor=colour[call.chain],
                           linewidth=0.8, alpha=0.45 if call.is_async else 0.9)
            bar_y[call.id] = row_y + _ROW / 2
            bar_lane[call.id] = name
            if length >= minimum_label:
                ax.text(start + length / 2, row_y + _ROW / 2, call.name, ha="center",
                        va="center", fontsize=7, clip_on=True)
    for call in view.calls.values():
        target = _lane_of(view, call.run_lane)
        source = _lane_of(view, call.send_lane)
        if source is None or source not in centre:
            continue
        colour_of = colour[call.chain]
        # The sending code: its own call's bar when it runs in the sending lane.
        source_y = (bar_y[call.parent] if bar_lane.get(call.parent) == source
                    else centre[source])
        if target is not None and call.id in bar_y and call.sent is not None:
            target_y = bar_y[call.id]
            ax.plot([call.sent / scale, (call.started or 0.0) / scale], [source_y, target_y],
                    color=colour_of, linewidth=0.8, alpha=0.7)
            if call.ended is not None and call.replied is not None:
                ax.plot([call.ended / scale, call.replied / scale], [target_y, source_y],
                        color=colour_of, linewidth=0.8, alpha=0.7, linestyle="--")
        if call.sent is not None:
            ax.plot([call.sent / scale], [source_y], marker="o", markersize=2.5,
                    color=colour_of)
    for event in view.waits:
        where = _lane_of(view, (event["pid"], event["tid"]))
        if where in base and "dur" in event:
            ax.broken_barh([(float(event["ts"]) / scale, float(event["dur"]) / scale)],
                           (base[where], 0.08), facecolor="0.5")
    for event in view.instants:
        where = _lane_of(view, (event["pid"], event["tid"]))
        if where in centre:
            ax.plot([float(event["ts"]) / scale], [centre[where]], marker="x", color="red",
                    markersize=8, markeredgewidth=2)
            ax.annotate(event["name"], (float(event["ts"]) / scale, centre[where]),
                        textcoords="offset points", xytext=(4, 6), fontsize=7, color="red")
    ax.set_yticks([centre[name] for name in names], names, fontsize=8)
    ax.set_ylim(-0.3, y - 0.3)
    ax.set_xlabel("milliseconds since the recording started")
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)
    ax.set_title(f"{len(view.calls)} calls, {len(chains)} chains: {view.path}", fontsize=9)
    ax.legend(handles=[Patch(facecolor="0.3", alpha=0.9, label="sync method"),
                       Patch(facecolor="0.3", alpha=0.45, label="coroutine method"),
                       Patch(facecolor="0.5", label="wait on a primitive")],
              loc="upper right", fontsize=7, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
