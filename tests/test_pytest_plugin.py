"""aptio's pytest plugin, run through pytester in a subprocess (so what an inner session
leaves cannot touch this one): inert unless used, runs async tests with their pytest-asyncio
loop as the main STA in strict and auto modes and every loop scope, parametrizes over asyncio
and uvloop, reports each leak kind by name, and dumps the calls of a test that times out."""

from __future__ import annotations

import re
import sys

import pytest

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
timeout = 60
timeout_method = thread
"""


def _run(pytester: pytest.Pytester, *args: str, mode: str = "strict") -> pytest.RunResult:
    pytester.makeini(INI.format(mode=mode))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:anyio", *args)


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Each test's outcomes from the ``-rA`` summary ("PASSED", "ERROR", "PASSED ERROR" for a
    test that passed and failed at teardown), by node id."""
    found: dict[str, str] = {}
    for line in result.stdout.lines:
        match = re.match(r"(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S+\.py::\S+)", line)
        if match:
            outcome, test = match.groups()
            found[test] = f"{found[test]} {outcome}" if test in found else outcome
    return found


def _sections(output: str) -> dict[str, str]:
    """The report's sections by test name: ``___ ERROR at teardown of test_x ___`` and
    ``___ test_x ___``."""
    parts = re.split(r"\n_{3,} (?:ERROR at teardown of )?(\S+) _{3,}\n", output)
    sections: dict[str, str] = {}
    for i in range(1, len(parts) - 1, 2):  # -rA shows a test twice (its error, its passing)
        sections[parts[i]] = sections.get(parts[i], "") + parts[i + 1]
    return sections


# ---------------------------------------------------------------------- doing nothing unless used

INERT_TESTS = """
import asyncio
import pytest
import pytest_asyncio


@pytest_asyncio.fixture
async def value():
    await asyncio.sleep(0)
    return 1


@pytest.mark.asyncio
async def test_async(value, request):
    print("FIXTURES", request.node.name, sorted(request.fixturenames))
    assert value == 1


def test_sync(request):
    print("FIXTURES", request.node.name, sorted(request.fixturenames))


@pytest.mark.parametrize("n", [1, 2])
def test_param(n, request):
    print("FIXTURES", request.node.name, sorted(request.fixturenames))


def test_fails():
    assert False
"""

INERT_CONFTEST = """
import sys
import threading


def pytest_sessionfinish(session):
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("uvloop", "tkinter", "PySide6"))
    print("\\nMODULES", loaded)
    print("THREADS", sorted(t.name for t in threading.enumerate()))
"""


def _facts(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in result.stdout.lines
                  if line.startswith(("FIXTURES", "MODULES", "THREADS", "test_inert.py::")))


def test_a_session_that_uses_no_aptio_runs_as_without_the_plugin(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inert=INERT_TESTS)
    pytester.makeconftest(INERT_CONFTEST)
    with_plugin = _run(pytester, "-s", "-v", "-W", "error")
    without = _run(pytester, "-s", "-v", "-W", "error", "-p", "no:aptio")
    with_plugin.assert_outcomes(passed=4, failed=1)
    without.assert_outcomes(passed=4, failed=1)
    assert _facts(with_plugin) == _facts(without)
    assert "MODULES []" in with_plugin.stdout.lines
    assert "THREADS ['MainThread']" in with_plugin.stdout.lines


def test_importing_the_plugin_starts_no_thread_and_imports_no_loop_or_toolkit(
        pytester: pytest.Pytester) -> None:
    result = pytester.run(sys.executable, "-c", (
        "import sys, threading, aptio.pytest_plugin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('uvloop', 'tkinter', 'PySide6')), threading.active_count())"))
    assert result.ret == 0
    assert result.stdout.lines == ["[] 1"]


# ---------------------------------------------------------------------- running tests in aptio

SCOPED_TESTS = """
import pytest
import pytest_asyncio

import aptio

pytestmark = [pytest.mark.aptio, pytest.mark.asyncio(loop_scope="{scope}")]


@aptio.coclass
class Counter:
    def __init__(self):
        self.n = 0

    def increment(self):
        self.n += 1
        return self.n


@pytest_asyncio.fixture(scope="{scope}", loop_scope="{scope}")
async def counter():
    worker = await aptio.start_sta("shared worker")
    return await worker.create(Counter)


MAINS = []


async def test_one(counter, aptio_main):
    MAINS.append(aptio_main)
    assert aptio.current_apartment() is aptio_main
    assert await counter.increment() == 1


async def test_two(counter, aptio_main):
    assert aptio_main is MAINS[0]  # one runtime for the loop's scope
    assert await counter.increment() == 2


async def test_an_sta_of_its_own(counter, aptio_sta):
    thing = await aptio_sta.create(Counter)
    assert await thing.increment() == 1
    assert await counter.increment() == 3
"""


FUNCTION_TESTS = """
import pytest

import aptio
import aptio.testing


@aptio.coclass
class Echo:
    def echo(self, value):
        return value, aptio.current_apartment().name


@aptio.coclass(model=aptio.ThreadingModel.FREE)
class Free:
    def where(self):
        return aptio.current_apartment().kind


MAINS = []


{marker}
async def test_the_loop_is_the_main_sta(aptio_main):
    assert aptio_main.kind is aptio.ApartmentKind.MAIN_STA
    assert aptio.current_apartment() is aptio_main
    MAINS.append(aptio_main)


{marker}
async def test_a_new_runtime_per_test(aptio_main, aptio_sta, aptio_mta):
    assert aptio_main is not MAINS[0] and MAINS[0].is_closed
    echo = await aptio_sta.create(Echo)
    assert await echo.echo(5) == (5, aptio_sta.name)
    free = await aptio.create(Free)
    assert await free.where() is aptio.ApartmentKind.MTA
    assert aptio_mta is aptio.mta()


async def test_a_fixture_alone_makes_an_aptio_test(aptio_sta):
    echo = await aptio_sta.create(Echo)
    assert (await echo.echo("x"))[0] == "x"


@pytest.mark.aptio
def test_a_sync_test_runs_a_coroutine_in_aptio(aptio_run):
    async def main():
        echo = await aptio.create(Echo)
        return await echo.echo(1)

    assert aptio_run(main) == (1, "main STA")
    assert aptio.testing.live_apartments() == []


@pytest.mark.aptio(runtime=False)
async def test_runtime_false_leaves_the_runtime_to_the_test():
    assert aptio.current_apartment() is None
    async with aptio.main_sta() as main:
        assert aptio.current_apartment() is main


@pytest.mark.aptio
def test_aptio_main_in_a_sync_test_says_why(aptio_main):
    pass
"""


LOOP_TESTS = """
import asyncio

import pytest

import aptio


@pytest.mark.aptio(loops=["asyncio", "uvloop"])
async def test_on_each_loop(aptio_loop, aptio_sta):
    running = type(asyncio.get_running_loop()).__module__
    assert running.startswith("uvloop") == (aptio_loop == "uvloop")

    async def kind():
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    echo = await aptio_sta.create(Kind)
    assert (await echo.kind()).startswith(aptio_loop)


@pytest.mark.aptio(loops=["asyncio", "uvloop"])
def test_sync_on_each_loop(aptio_loop, aptio_run):
    async def main():
        return type(asyncio.get_running_loop()).__module__

    assert aptio_run(main).startswith(aptio_loop)


@aptio.coclass
class Kind:
    async def kind(self):
        return type(asyncio.get_running_loop()).__module__
"""


WRONG_OPTION_TESTS = """
import pytest


@pytest.mark.aptio(loop=["uvloop"])
async def test_typo():
    pass
"""


def test_async_and_sync_tests_run_in_aptio_on_every_loop_scope(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a_function=FUNCTION_TESTS.replace("{marker}", "@pytest.mark.aptio"),
        test_b_module=SCOPED_TESTS.replace("{scope}", "module"),
        test_c_loops=LOOP_TESTS,
        test_d_wrong=WRONG_OPTION_TESTS,
        test_e_session=SCOPED_TESTS.replace("{scope}", "session"))
    result = _run(pytester, "-rA", "--continue-on-collection-errors")
    outcomes = _outcomes(result)
    assert outcomes.pop("test_a_function.py::test_aptio_main_in_a_sync_test_says_why") == "ERROR"
    assert set(outcomes.values()) == {"PASSED"}, outcomes
    assert len(outcomes) == 5 + 3 + 4 + 3
    assert "test_c_loops.py::test_on_each_loop[uvloop]" in outcomes
    result.stdout.fnmatch_lines_random([
        "*aptio_main needs an async aptio test*not an async test*",
        "*test_d_wrong.py*unknown option(s) loop; it takes loops, mta_workers*"])


def test_auto_mode_needs_no_marker_and_a_missing_uvloop_skips_its_runs(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a_function=FUNCTION_TESTS.replace("{marker}", ""),
                        test_c_loops=LOOP_TESTS)
    pytester.makeconftest("import sys\nsys.modules['uvloop'] = None  # as if not installed\n")
    result = _run(pytester, "-rA", mode="auto")
    result.assert_outcomes(passed=7, skipped=2, errors=1)
    result.stdout.fnmatch_lines(["*uvloop is not installed (pip install uvloop)*"])


# ---------------------------------------------------------------------- nothing left behind

LEAK_TESTS = """
import asyncio
import threading

import pytest

import aptio
from aptio.testing import apartment_barrier, wait_idle


@aptio.coclass
class Thing:
    def touch(self):
        return 1

    def fail(self):
        raise ValueError("planted")

    async def forever(self):
        await asyncio.Event().wait()


@aptio.coclass(model=aptio.ThreadingModel.FREE)
class Blocker:
    def block(self, event, started):
        started.set()
        event.wait()


KEPT = []
RELEASE = threading.Event()
BLOCKED = threading.Event()
STOP = threading.Event()
THREADS = []


@pytest.mark.aptio
async def test_clean(aptio_sta):
    thing = await aptio_sta.create(Thing)
    assert await thing.touch() == 1


@pytest.mark.aptio
async def test_unreleased_object(aptio_sta):
    KEPT.append(await aptio_sta.create(Thing))


@pytest.mark.aptio
async def test_pending_call(aptio_main):
    worker = await aptio.start_sta("worker")
    thing = await worker.create(Thing)
    thing.forever()
    await apartment_barrier(worker)


@pytest.mark.aptio
async def test_unretrieved_exception(aptio_sta):
    thing = await aptio_sta.create(Thing)
    thing.fail()
    await wait_idle(aptio_sta)


@pytest.mark.aptio(shutdown_timeout=0, allow_leaks=["calls"])
async def test_apartment_thread(aptio_main):
    blocker = await aptio.create(Blocker)
    blocker.block(RELEASE, BLOCKED)  # an MTA worker stays blocked past the shutdown
    await asyncio.to_thread(BLOCKED.wait)  # it has started (not failed unstarted at shutdown)


@pytest.mark.aptio(allow_leaks=["objects"])
async def test_allowed(aptio_sta):
    KEPT.append(await aptio_sta.create(Thing))


@pytest.mark.aptio
def test_runtime_left_running():  # the last aptio test: no other can start a runtime now
    started = threading.Event()

    async def main():
        await aptio.start_sta("forgotten")
        started.set()
        await asyncio.to_thread(STOP.wait)

    thread = threading.Thread(target=aptio.run, args=(main,), name="user thread")
    THREADS.append(thread)
    thread.start()
    started.wait()


def test_zz_cleanup():
    RELEASE.set()
    STOP.set()
    for thread in THREADS:
        thread.join()
    KEPT.clear()
"""

SHARED_LEAK_TESTS = """
import pytest

import aptio

pytestmark = [pytest.mark.aptio, pytest.mark.asyncio(loop_scope="module")]


async def test_sta_left_open():
    await aptio.start_sta("left open")


async def test_server_left_running():
    await aptio.start_server("left running")


async def test_clean_after_them():
    pass
"""


def test_each_leak_kind_is_reported_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks=LEAK_TESTS, test_shared_leaks=SHARED_LEAK_TESTS)
    result = _run(pytester, "-rA")
    outcomes = _outcomes(result)
    reports = _sections(result.stdout.str())
    expected = {
        "test_unreleased_object": ("[objects]", "Thing in 'test_unreleased_object STA'"),
        "test_pending_call": ("[calls]", "Thing.forever() in 'worker'"),
        "test_unretrieved_exception": ("[errors]", "Thing.fail()", "ValueError: planted"),
        "test_apartment_thread": ("[threads]", "thread 'aptio MTA worker 1'"),
        "test_runtime_left_running": ("[runtime]", "main STA on thread 'user thread'",
                                      "[threads]", "thread 'aptio forgotten'"),
        "test_sta_left_open": ("[threads]", "STA 'left open'"),
        "test_server_left_running": ("[processes]", "server 'left running' (pid"),
    }
    for test, needles in expected.items():
        file = "test_shared_leaks.py" if test.startswith(("test_sta", "test_server")) \
            else "test_leaks.py"
        assert outcomes[f"{file}::{test}"] == "PASSED ERROR", (test, outcomes)
        assert f"aptio: {file}::{test} left things behind" in reports[test]
        for needle in needles:
            assert needle in reports[test], (test, needle, reports[test])
    assert "[errors]" not in reports["test_pending_call"]  # its shutdown's error: not twice
    for clean in ("test_leaks.py::test_clean", "test_leaks.py::test_allowed",
                  "test_leaks.py::test_zz_cleanup",
                  "test_shared_leaks.py::test_clean_after_them"):
        assert outcomes[clean] == "PASSED", (clean, outcomes)


# ---------------------------------------------------------------------- a hang explains itself

HANG_TESTS = """
import asyncio

import pytest

import aptio


@aptio.coclass
class Stuck:
    async def wait(self):
        await asyncio.Event().wait()


@pytest.mark.aptio
@pytest.mark.timeout({timeout})
async def test_hangs(aptio_sta):
    stuck = await aptio_sta.create(Stuck)
    await stuck.wait()
"""


@pytest.mark.parametrize("method", ["thread", "signal"])
def test_a_test_that_times_out_prints_the_calls_in_flight(pytester: pytest.Pytester,
                                                          method: str) -> None:
    pytester.makepyfile(test_hang=HANG_TESTS.replace("{timeout}", "3"))
    result = _run(pytester, "-o", f"timeout_method={method}")
    result.stdout.fnmatch_lines([
        "*aptio calls in flight at the timeout (oldest first):",
        "[[]test_hangs STA[]] Stuck.wait() chain *: running for *",
        "aptio apartments:",
        "*STA 'test_hangs STA': 0 queued, 1 running*"])
    if method == "thread":  # pytest-timeout's own output around it, then the process ends
        assert result.ret != 0
        result.stdout.fnmatch_lines(["*+ Timeout +*", "*Stack of MainThread*"])
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*Captured aptio calls at the timeout call*"])
