"""The docs' code runs: every ```python block in README.md and docs/ runs in a fresh interpreter.

A block is a program, run as ``python block.py`` in an empty directory. A block with ``await``
at its top level is the body of a coroutine, run with ``aptio.run`` as the docs tell users to.
An HTML comment on the line before a block says when it is run differently:

* ``<!-- docs-test: skip (why) -->``: not run; the reason is required (use sparingly).
* ``<!-- docs-test: pytest -->``: a test module, run by pytest with the page's
  ``[tool.pytest.ini_options]`` block (a ```toml block of the same page) as its configuration.
* ``<!-- docs-test: file examples/NAME.py -->``: the block is that file, verbatim (the examples
  run in ``test_examples.py``).

A block that only includes a file (``--8<-- "examples/NAME.py"``, mkdocs' snippets) shows that
file as it is; the file must exist in ``examples/``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TIMEOUT = 60  # seconds per block; a block's own work takes well under one

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^<!-- docs-test: (?P<what>[^>]*?) -->$")
_INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')

# Runs a block whose top level awaits as the body of ``aptio.run``, in ``__main__``. Any other
# block runs as the script itself (``python block.py``), so that a server process, which loads
# the main script as multiprocessing's spawn does, finds the block's classes.
_AWAIT_RUNNER = """\
import ast, sys
import aptio
path = sys.argv[1]
code = compile(open(path).read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
aptio.run(eval(code, {"__name__": "__main__", "__file__": path}))
"""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    directive: str | None  # the docs-test comment before the block, if any

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a markdown page, each with the directive before it."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        start = i
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            i += 1
        body = "".join(line.removeprefix(indent) + "\n" for line in lines[start + 1:i])
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1)
                         if lines[j].strip()), "")
        directive = _DIRECTIVE.match(previous)
        blocks.append(Block(page, start + 1, opening["info"].strip().split(" ")[0],
                            body,
                            directive["what"].strip() if directive else None))
        i += 1
    return blocks


PYTHON_BLOCKS = [block for page in PAGES for block in _blocks(page) if block.lang in
                 {"python", "py", "python3"}]


def _pytest_config(page: Path) -> str:
    configs = [block.code for block in _blocks(page)
               if block.lang == "toml" and "[tool.pytest.ini_options]" in block.code]
    assert len(configs) == 1, (
        f"{page.relative_to(ROOT)} has a docs-test: pytest block, so it needs exactly one "
        "```toml block with [tool.pytest.ini_options] to run it with")
    return configs[0]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # A block's ray.init() starts a Ray instance of its own: left to itself it would join any
    # cluster already running on this machine (another test's, with another token).
    env = {**os.environ, "RAY_ADDRESS": "local"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, env=env)


def _included_example(block: Block) -> Path | None:
    lines = block.code.strip().splitlines()
    includes = [_INCLUDE.match(line.strip()) for line in lines]
    if not lines or not all(includes):
        return None
    assert len(lines) == 1, f"{block.id}: include one file per block"
    return ROOT / includes[0]["path"]  # type: ignore[index]


@pytest.mark.timeout(TIMEOUT + 30)
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[block.id for block in PYTHON_BLOCKS])
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    directive = block.directive
    included = _included_example(block)
    if included is not None:
        assert included.parent == ROOT / "examples" and included.exists(), (
            f"{block.id} includes {included}: include only files in examples/, which the "
            "suite runs")
        return
    if directive is not None and directive.startswith("skip"):
        reason = re.fullmatch(r"skip \((?P<why>.+)\)", directive)
        assert reason, f"{block.id}: write why the block is skipped: docs-test: skip (why)"
        pytest.skip(reason["why"])
    if directive is not None and directive.startswith("file "):
        path = ROOT / directive.removeprefix("file ").strip()
        assert path.exists(), f"{block.id}: {path} does not exist"
        assert block.code == path.read_text(), (
            f"{block.id} shows {path.relative_to(ROOT)} but differs from it: copy the file "
            "into the block again")
        return
    if directive == "pytest":
        (tmp_path / "pyproject.toml").write_text(_pytest_config(block.page))
        (tmp_path / "test_docs_block.py").write_text(block.code)
        done = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_docs_block.py"],
                    tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(r"\b\d+ passed\b", done.stdout), done.stdout
        assert not re.search(r"\b(skipped|xfailed|warnings?)\b", done.stdout), done.stdout
        return
    assert directive is None, f"{block.id}: unknown directive docs-test: {directive}"
    missing = _missing_extra(block.code)
    if missing is not None:
        pytest.skip(f"needs {missing}, not installed here")
    _run_program(block.code, tmp_path)


# Modules of the optional extras, and the module each needs installed: a block importing one
# runs only where the extra is installed (CI installs Ray on one Python only).
_EXTRAS = {"ray": ("ray", "aptio[ray]"), "aptio.ray": ("ray", "aptio[ray]"),
           "PySide6": ("PySide6", "aptio[qt]"), "aptio.qt": ("PySide6", "aptio[qt]"),
           "matplotlib": ("matplotlib", "aptio[plot]")}


def _missing_extra(code: str) -> str | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None  # the run reports the syntax error
    for node in ast.walk(tree):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            found = _EXTRAS.get(name) or _EXTRAS.get(name.partition(".")[0])
            if found is not None and importlib.util.find_spec(found[0]) is None:
                return found[1]
    return None


def _awaits_at_top_level(code: str) -> bool:
    try:
        compile(code, "block.py", "exec")
    except SyntaxError:
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        return bool(compile(code, "block.py", "exec", flags=flags).co_flags
                    & inspect.CO_COROUTINE)
    return False


def _run_program(code: str, directory: Path) -> str:
    (directory / "block.py").write_text(code)
    if _awaits_at_top_level(code):
        (directory / "runner.py").write_text(_AWAIT_RUNNER)
        done = _run(["runner.py", "block.py"], directory)
    else:
        done = _run(["block.py"], directory)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_a_block_that_awaits_at_its_top_level_runs_in_aptio_run(tmp_path: Path) -> None:
    out = _run_program(textwrap.dedent("""\
        import aptio

        here = aptio.current_apartment()
        worker = await aptio.start_sta("worker")
        print(here.kind.name, worker.name, __name__)
        """), tmp_path)
    assert out == "MAIN_STA worker __main__\n"


def test_every_page_is_checked() -> None:
    """The pages searched are the ones mkdocs builds, plus the README."""
    assert ROOT / "README.md" in PAGES
    assert ROOT / "docs" / "index.md" in PAGES
    assert len(PYTHON_BLOCKS) >= 10


def test_the_block_parser_reads_directives_and_indented_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent("""\
        Text.

        <!-- docs-test: skip (needs a display) -->

        ```python
        import tkinter
        ```

        - In a list:

          ```python
          x = 1
          ```

        ````markdown
        ```python
        not a block of its own
        ```
        ````
        """))
    blocks = _blocks(page)
    assert [(b.lang, b.code, b.directive) for b in blocks] == [
        ("python", "import tkinter\n", "skip (needs a display)"),
        ("python", "x = 1\n", None),
        ("markdown", '```python\nnot a block of its own\n```\n', None),
    ]


# ---------------------------------------------------------------------------- generated tables

BENCHMARKS = ROOT / "benchmarks"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"aptio_docs_test_{name}",
                                                  BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


update_docs = _load("update_docs")


def test_the_pages_show_one_run_of_each_generated_table() -> None:
    """A table shown on two pages is the same text on both, and none is left empty."""
    seen: dict[str, tuple[Path, str]] = {}
    for page in update_docs.PAGES:
        for name, body in update_docs.read_blocks(page.read_text()).items():
            assert body.strip(), (
                f"{page.name}: block {name} is empty; fill it with benchmarks/update_docs.py")
            if name in seen:
                assert body == seen[name][1], (
                    f"block {name} differs between {seen[name][0].name} and {page.name}: "
                    "put one run's tables in both with benchmarks/update_docs.py")
            seen[name] = (page, body)
    assert {"calls", "scale", "targets"} <= set(seen)
    assert seen["calls"][1].startswith("CPython "), "the calls table says what it ran on"


def test_update_docs_takes_every_block_of_the_first_run_and_only_new_ones_of_later_runs() -> None:
    first = ("<!-- bench:calls:begin -->\nfirst run\n<!-- bench:calls:end -->\n"
             "<!-- bench:methods-3.11:begin -->\n3.11\n<!-- bench:methods-3.11:end -->\n")
    later = ("<!-- bench:calls:begin -->\nlater run\n<!-- bench:calls:end -->\n"
             "<!-- bench:methods-3.12:begin -->\n3.12\n<!-- bench:methods-3.12:end -->\n")
    blocks = update_docs.merge_runs([first, later])
    assert blocks == {"calls": "first run\n", "methods-3.11": "3.11\n", "methods-3.12": "3.12\n"}
    page = ("Intro.\n\n<!-- bench:calls:begin -->\nold\ntable\n<!-- bench:calls:end -->\n\n"
            "<!-- bench:methods-3.12:begin -->\n<!-- bench:methods-3.12:end -->\n"
            "<!-- bench:other:begin -->\nkept\n<!-- bench:other:end -->\nEnd.\n")
    text, filled, missing = update_docs.fill(page, blocks)
    assert text == ("Intro.\n\n<!-- bench:calls:begin -->\nfirst run\n<!-- bench:calls:end -->\n\n"
                    "<!-- bench:methods-3.12:begin -->\n3.12\n<!-- bench:methods-3.12:end -->\n"
                    "<!-- bench:other:begin -->\nkept\n<!-- bench:other:end -->\nEnd.\n")
    assert (filled, missing) == ({"calls", "methods-3.12"}, {"other"})
    with pytest.raises(SystemExit, match="no matching end line for block"):
        update_docs.fill("<!-- bench:calls:begin -->\nno end\n", blocks)


def test_bench_markdown_tables_name_the_baseline_of_every_ratio_column() -> None:
    bench = _load("bench_calls")
    keys = {key for _, key, _ in bench.ROWS} | {base for _, _, base in bench.ROWS if base}
    results = {loop: {key: [1000.0 * (i + 1)] for i, key in enumerate(sorted(keys))}
               for loop in ("asyncio", "uvloop")}
    entry = {"seq": 20_000.0, "floor": 20_000.0, "start_median": 300_000.0,
             "rss_per_sta": 16_384.0, "fds_per_sta": 3.0}
    scale = {loop: {"1": entry, "1000": entry} for loop in ("asyncio", "uvloop")}
    checks = [bench.TargetCheck(loop, "seq STA->STA / floor", 0.9, 1.3, "<=", "round trip",
                                True) for loop in ("asyncio", "uvloop")]
    out = bench.render_markdown(results, scale, checks, "caption")
    blocks = update_docs.read_blocks(out)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert set(blocks) == {"calls", "scale", "targets", f"methods-{version}"}
    assert blocks["calls"].startswith("caption\n")
    shown = 0
    for table in re.findall(r"^(\|.*\|\n\| -.*\n(?:\|.*\n)*)", blocks["calls"], re.MULTILINE):
        head = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
        assert head[1::2] == ["asyncio", "uvloop"], head
        ratio_heads = head[2::2]
        assert len(set(ratio_heads)) == 1 and ratio_heads[0].startswith("÷ "), head
        shown += len(table.splitlines()) - 2
    assert shown == len(bench.ROWS)
    assert "| seq STA→STA / floor | round trip | ≤ 1.3 | 0.90 met | 0.90 met |" in blocks["targets"]
