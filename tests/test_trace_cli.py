"""``python -m aptio trace summarize|plot``: the text report's stable format, the picture, and
what either says about a file that is not an aptio recording."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aptio._trace import cli
from aptio._trace.chrome import chrome_trace, write_trace
from aptio._trace.records import CallRow, InstantRow, ProcessPart, ThreadRow, WaitRow

MS = 1_000_000  # ns


def call(serial: int, parent: int, method: str, source: str, target: str, sent: float,
         started: float, ended: float, replied: float, send_tid: int, run_tid: int,
         chain: int, outcome: str = "returned", is_async: bool = False) -> CallRow:
    return CallRow(serial, parent, method, "Shop", chain, source, target, is_async,
                   int(sent * MS), send_tid, int(started * MS), run_tid, int(ended * MS),
                   run_tid, int(replied * MS), send_tid, outcome, 0, None, False)


def recording(path: Path) -> None:
    """A small recording with known times: main STA (tid 11) calls into 'orders' (12) and
    the MTA (13); one chain nests, one call fails."""
    threads = (ThreadRow(11, "main STA", "main STA", "main_sta", 0),
               ThreadRow(12, "STA 'orders'", "orders", "sta", 10_001),
               ThreadRow(13, "MTA worker 1", "MTA", "mta", 20_002))
    calls = (call(1, 0, "checkout", "main STA", "orders", 1, 2, 9, 10, 11, 12, 1,
                  is_async=True),
             call(2, 1, "price", "orders", "MTA", 3, 5, 7, 8, 12, 13, 1),
             call(3, 0, "refund", "main STA", "orders", 11, 11.5, 12, 12.5, 11, 12, 3,
                  "raised ValueError"))
    part = ProcessPart(4242, "client", "shop.py (pid 4242)", "", 0, 13 * MS, 1000, 0, threads,
                       calls, (WaitRow("Lock", False, 1, 12, int(2.5 * MS), int(2.8 * MS)),),
                       (InstantRow("deadlock broken", 12, int(11.2 * MS), 3, "a cycle"),),
                       (), 0, ())
    write_trace(chrome_trace(part, "0"), str(path))


def test_summarize_prints_a_stable_report(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "shop.json"
    recording(path)
    assert cli.main(["summarize", str(path)]) == 0
    assert capsys.readouterr().out == f"""\
aptio call recording: {path}
  3 calls in 1 process, 11.500 ms recorded; 0 records let go (ring buffer of 1000)

Slowest calls (send to reply)
  total     queued    ran       call              from -> to          outcome
  9.000 ms  1.000 ms  7.000 ms  #1 Shop.checkout  main STA -> orders  returned
  5.000 ms  2.000 ms  2.000 ms  #2 Shop.price     orders -> MTA       returned
  1.500 ms  0.500 ms  0.500 ms  #3 Shop.refund    main STA -> orders  raised ValueError

Queue waits per apartment (send to start)
  apartment  calls  mean      p50       p95       max
  MTA        1      2.000 ms  2.000 ms  2.000 ms  2.000 ms
  orders     2      0.750 ms  0.500 ms  1.000 ms  1.000 ms

Longest chains (first send to last reply)
  chain  calls  depth  span      deepest path
  1      2      2      9.000 ms  Shop.checkout > Shop.price
  3      1      1      1.500 ms  Shop.refund

Marked events
  waits on aptio primitives that parked: 1
  deadlock broken: 1
  call rejected: 0
  input-sync refusal: 0
"""


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist; give the file a recording wrote"),
    ("not json at all", "is not a JSON file"),
    ('{"some": "json"}', "is JSON but not a Chrome trace (no traceEvents list)"),
    ('{"traceEvents": []}', "is a Chrome trace that aptio did not write"),
    ('{"traceEvents": [], "metadata": {"aptio-trace": 99}}', "holds aptio trace format 99"),
    ('{"traceEvents": [{"ph": "X"}], "metadata": {"aptio-trace": 1}}', "is damaged"),
])
@pytest.mark.parametrize("command", ["summarize", "plot"])
def test_a_file_that_is_not_an_aptio_recording_is_refused_with_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None,
        message: str, command: str) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)
    extra = ["-o", str(tmp_path / "out.png")] if command == "plot" else []
    assert cli.main([command, str(path), *extra]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"aptio trace: {str(path)!r}") and message in error


def test_plot_draws_the_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="plot needs matplotlib (aptio[plot])")
    path = tmp_path / "shop.json"
    recording(path)
    output = tmp_path / "shop.png"
    assert cli.main(["plot", str(path), "-o", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == f"wrote {output}\n"


def test_plot_without_matplotlib_says_how_to_install_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shop.json"
    recording(path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.delitem(sys.modules, "aptio._trace.plot", raising=False)
    assert cli.main(["plot", str(path), "-o", str(tmp_path / "x.png")]) == 2
    assert "pip install 'aptio[plot]'" in capsys.readouterr().err


def test_the_written_recording_keeps_the_format_rules(tmp_path: Path) -> None:
    import trace_rules

    path = tmp_path / "shop.json"
    recording(path)
    events = trace_rules.check(trace_rules.load(str(path)))
    price = [e for e in events if e.get("args", {}).get("call") == 2]
    assert [e["ph"] for e in price] == ["n", "X", "n"]  # sent and answered inside checkout
    assert json.loads(path.read_text())["displayTimeUnit"] == "ns"
