"""Typed programs (tests/typing/) checked by mypy with aptio's plugin, by mypy without it and by
pyright: each reports exactly the errors its ``# expect:`` comments list, and the examples
type-check clean under ``mypy --strict`` with the plugin.

A program's ``# checkers:`` line names the checkers it is for (the plugin's programs are for
mypy only); ``assert_type`` lines make every expected type a check of its own. ``a|b`` in an
expectation accepts either code (mypy versions name some errors differently). The checkers
run once per session over all programs. ``APTIO_TYPING_MYPY`` names another mypy command (CI
runs the oldest supported mypy with it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS_DIR = ROOT / "tests" / "typing"
PROGRAMS = sorted(PROGRAMS_DIR.glob("*.py"))
# The Qt examples need PySide6's stubs (aptio[qt]); without PySide6 they are left out.
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py")
                  if not p.name.startswith("qt_") or importlib.util.find_spec("PySide6"))

#: (file name, line) -> the error codes expected there, per checker.
Expected = dict[tuple[str, int], list[str]]

_EXPECT = re.compile(r"#\s*expect:\s*(.*)$")
_CHECKER_CODES = re.compile(r"(\w+)\[([^\]]*)\]")
_MYPY_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def _checkers_of(program: Path) -> set[str]:
    for line in program.read_text().splitlines():
        if line.startswith("# checkers:"):
            return set(line.split(":", 1)[1].split())
    return set()  # a helper module, not a program


def _expected(program: Path, checker: str) -> Expected:
    found: Expected = {}
    for number, line in enumerate(program.read_text().splitlines(), start=1):
        match = _EXPECT.search(line)
        if match is None:
            continue
        for name, codes in _CHECKER_CODES.findall(match.group(1)):
            if name == checker:
                found[(program.name, number)] = sorted({c.strip() for c in codes.split(",")})
    return found


def _programs_for(checker: str) -> list[Path]:
    return [p for p in PROGRAMS if checker in _checkers_of(p)]


def _mypy_command() -> list[str] | None:
    override = os.environ.get("APTIO_TYPING_MYPY")
    if override:
        return shlex.split(override)
    try:
        import mypy  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "mypy"]


def _run_mypy(files: list[Path], tmp: Path, *, plugin: bool, extra_path: Path | None,
              ) -> dict[tuple[str, int], list[str]]:
    command = _mypy_command()
    if command is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    config = tmp / "mypy.ini"
    lines = ["[mypy]", "strict = True", "warn_unreachable = True"]
    if plugin:
        lines.append("plugins = aptio.mypy")
    if extra_path is not None:
        lines.append(f"mypy_path = {extra_path}")
    # The optional extras, as in pyproject.toml: checked where installed (CI has Ray on 3.11).
    lines += ["[mypy-ray.*]", "ignore_missing_imports = True",
              "[mypy-PySide6.*]", "ignore_missing_imports = True"]
    config.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [*command, "--config-file", str(config), "--cache-dir", str(tmp / "cache"),
         "--no-error-summary", "--no-pretty", "--show-error-codes", *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    if result.returncode not in (0, 1) or result.stderr.strip():
        pytest.fail(f"mypy failed to run:\n{result.stdout}\n{result.stderr}")
    found: dict[tuple[str, int], list[str]] = {}
    for line in result.stdout.splitlines():
        match = _MYPY_LINE.match(line)
        if match is not None:
            key = (Path(match["path"]).name, int(match["line"]))
            found.setdefault(key, []).append(match["code"])
        elif ": error:" in line:
            pytest.fail(f"mypy reported an error without a code: {line}")
    return {key: sorted(set(codes)) for key, codes in found.items()}


def _pyright_command() -> list[str] | None:
    local = Path(sys.executable).parent / "pyright"
    command = str(local) if local.exists() else shutil.which("pyright")
    if command is None:
        return None
    probe = subprocess.run([command, "--version"], capture_output=True, text=True,
                           timeout=300, check=False)
    return [command] if probe.returncode == 0 else None


@pytest.fixture(scope="session")
def mypy_with_plugin(tmp_path_factory: pytest.TempPathFactory,
                     ) -> dict[tuple[str, int], list[str]]:
    return _run_mypy(_programs_for("mypy"), tmp_path_factory.mktemp("mypy-plugin"),
                     plugin=True, extra_path=PROGRAMS_DIR)


@pytest.fixture(scope="session")
def mypy_without_plugin(tmp_path_factory: pytest.TempPathFactory,
                        ) -> dict[tuple[str, int], list[str]]:
    # The declared-proxy programs: what a project without the plugin sees.
    files = [p for p in _programs_for("mypy") if "pyright" in _checkers_of(p)]
    return _run_mypy(files, tmp_path_factory.mktemp("mypy-bare"), plugin=False,
                     extra_path=PROGRAMS_DIR)


@pytest.fixture(scope="session")
def pyright_results(tmp_path_factory: pytest.TempPathFactory,
                    ) -> dict[tuple[str, int], list[str]]:
    command = _pyright_command()
    if command is None:
        pytest.skip("pyright is not installed or cannot start (pip install -e '.[test]'; it "
                    "fetches its Node.js package on first use)")
    tmp = tmp_path_factory.mktemp("pyright")
    config = tmp / "pyrightconfig.json"
    config.write_text(json.dumps({
        "typeCheckingMode": "strict",
        "extraPaths": [str(ROOT), str(PROGRAMS_DIR)],
        "reportUnusedExpression": "none",
        "reportMissingModuleSource": "none",
    }))
    result = subprocess.run(
        [*command, "--outputjson", "--project", str(config),
         *map(str, _programs_for("pyright"))],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright failed to run:\n{result.stdout}\n{result.stderr}")
    found: dict[tuple[str, int], list[str]] = {}
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] != "error":
            continue
        key = (Path(diagnostic["file"]).name, diagnostic["range"]["start"]["line"] + 1)
        found.setdefault(key, []).append(diagnostic.get("rule", diagnostic["message"]))
    return {key: sorted(set(codes)) for key, codes in found.items()}


def _of(results: dict[tuple[str, int], list[str]], program: Path) -> Expected:
    return {key: codes for key, codes in results.items() if key[0] == program.name}


def _matches(found: Expected, expected: Expected) -> bool:
    if found.keys() != expected.keys():
        return False
    for key, codes in expected.items():
        accepted = [set(code.split("|")) for code in codes]
        if len(found[key]) != len(accepted) or not all(
                code in options for code, options in zip(found[key], accepted, strict=True)):
            return False
    return True


def _ids(programs: list[Path]) -> list[str]:
    return [p.stem for p in programs]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("program", _programs_for("mypy"), ids=_ids(_programs_for("mypy")))
def test_mypy_with_the_plugin_reports_exactly_the_expected_errors(
        program: Path, mypy_with_plugin: dict[tuple[str, int], list[str]]) -> None:
    found, expected = _of(mypy_with_plugin, program), _expected(program, "mypy")
    assert _matches(found, expected), (found, expected)


_DECLARED = [p for p in _programs_for("mypy") if "pyright" in _checkers_of(p)]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("program", _DECLARED, ids=_ids(_DECLARED))
def test_declared_proxies_need_no_plugin_under_mypy(
        program: Path, mypy_without_plugin: dict[tuple[str, int], list[str]]) -> None:
    found, expected = _of(mypy_without_plugin, program), _expected(program, "mypy")
    assert _matches(found, expected), (found, expected)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("program", _programs_for("pyright"),
                         ids=_ids(_programs_for("pyright")))
def test_pyright_reports_exactly_the_expected_errors(
        program: Path, pyright_results: dict[tuple[str, int], list[str]]) -> None:
    found, expected = _of(pyright_results, program), _expected(program, "pyright")
    assert _matches(found, expected), (found, expected)


def test_every_program_names_its_checkers() -> None:
    programs = [p for p in PROGRAMS if p.name != "shapes.py"]
    assert programs
    for program in programs:
        assert _checkers_of(program) <= {"mypy", "pyright"}, program.name
        assert _checkers_of(program), program.name


@pytest.mark.timeout(900)
def test_the_examples_type_check_clean_with_the_plugin(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    errors = _run_mypy(EXAMPLES, tmp_path_factory.mktemp("mypy-examples"), plugin=True,
                       extra_path=None)
    # Errors in aptio's own modules are left out, as mypy leaves them out for an installed
    # package (the oldest supported mypy reads a few of them differently).
    names = {example.name for example in EXAMPLES}
    assert {key: codes for key, codes in errors.items() if key[0] in names} == {}


def test_import_aptio_imports_no_typing_machinery() -> None:
    probe = ("import sys, aptio; "
             "print(sorted(m for m in sys.modules if m == 'mypy' or m.startswith('mypy.') "
             "or m == 'aptio.mypy'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
