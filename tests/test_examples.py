"""Every example and the demo run as users run them: in a fresh interpreter, to completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The GUI examples have tests of their own (test_tk_progress.py, test_qt_progress.py), and so
# does the Ray one (test_ray.py: it needs aptio[ray] and runs on the tests' cluster).
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py")
                  if not p.name.startswith(("tk_", "qt_", "ray_")))


def _run(*args: str) -> str:
    completed = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(example: Path) -> None:
    assert _run(str(example)).strip()


def test_quickstart_output() -> None:
    out = _run(str(ROOT / "examples" / "quickstart.py"))
    assert "counter lives on aptio worker" in out
    assert "five increments -> [23, 24, 25, 26, 27]" in out


DEMO_STORY = (  # in this order
    "This thread is the main STA",
    "Neutral    -> NA (thread 'MainThread')",
    "Apartment  -> host STA (thread 'aptio host STA')",
    "Free       -> MTA (thread 'aptio MTA loop')",
    "'aptio MTA worker N'",
    "worker: nap() started",
    "main STA: cancelling the task that awaits nap()",
    "main STA: the task ended with CancelledError at once",
    "worker, meanwhile: nap() got CancelledError at its await and unwound",
    "DisconnectedError: where(): apartment 'worker' is shut down",
    "threads left behind: none",
)


def _in_order(out: str, story: tuple[str, ...]) -> None:
    position = 0
    for expected in story:
        found = out.find(expected, position)
        assert found >= 0, f"{expected!r} missing or out of order in:\n{out}"
        position = found + len(expected)


def test_demo_tells_the_whole_tour() -> None:
    _in_order(_run("-m", "aptio", "demo"), DEMO_STORY)


def test_demo_narrates_the_cancellation_in_the_order_it_happens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each line is printed once what it reports has happened (events, not sleeps), so the
    order holds in every run."""
    from aptio import _demo

    for _ in range(10):
        _demo.main()
        _in_order(capsys.readouterr().out, DEMO_STORY)


def test_cli_usage() -> None:
    assert "demo" in _run("-m", "aptio", "--help")


def test_readme_quickstart_is_the_example_file() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "quickstart.py").read_text()
    assert f"```python\n{example}```" in readme


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    lines = head.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("python -m aptio demo")
    assert lines[1].endswith("python -m pytest")
