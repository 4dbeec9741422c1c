"""The sample application's own test suite (tests/sample_app: a window object in the main STA,
an indexer in a worker STA, a storage service in the MTA), run with its own configuration
(warnings as errors, pytest-asyncio in strict mode, then in auto mode) in a fresh interpreter,
using only aptio's pytest plugin and aptio.testing."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

SAMPLE = pathlib.Path(__file__).resolve().parent / "sample_app"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_sample_app_suite_passes(mode: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(SAMPLE / "pytest.ini"), "--rootdir",
         str(SAMPLE), "-o", f"asyncio_mode={mode}", "-q", "-rA", str(SAMPLE)],
        capture_output=True, text=True, cwd=SAMPLE, timeout=280, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "9 passed" in output, output
    assert "warning" not in output.lower(), output
