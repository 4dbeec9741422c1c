"""Every python block of the testing guide and of the aptio.testing reference runs, as the
complete program it is (the pytest files run pytest on themselves), in a fresh interpreter."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = ["guides/testing.md", "reference/testing.md"]


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = (DOCS / page).read_text()
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S), 1):
            found.append((page, number, block))
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("page", "number", "code"), _blocks(),
                         ids=[f"{page}-{number}" for page, number, _ in _blocks()])
def test_the_block_runs(tmp_path: pathlib.Path, page: str, number: int, code: str) -> None:
    path = tmp_path / f"test_block_{number}.py"
    path.write_text(code)
    env = dict(os.environ, PYTHONWARNINGS="error")
    result = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=280, env=env, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if "pytest.main" in code:
        assert re.search(r"\d+ passed", output), output
        assert " failed" not in output and " error" not in output, output
