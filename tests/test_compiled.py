"""The compiled call path and the pure-Python sources behave alike, and the switch between them
says what it does: ``aptio.compiled``, ``APTIO_PURE_PYTHON=1``, stale compiled modules.

Most of these run in child processes, since one interpreter imports one build. Where this
installation has no compiled modules (a pure-Python install), the comparisons still run and
compare the sources with themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import aptio
from aptio import _compiled

needs_compiled = pytest.mark.skipif(
    not aptio.compiled, reason=f"this process runs {_compiled.DESCRIPTION}")


def _run(code: str, *, pure: bool = False, cwd: Path | None = None,
         path: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "APTIO_PURE_PYTHON"}
    if pure:
        env["APTIO_PURE_PYTHON"] = "1"
    if path is not None:
        env["PYTHONPATH"] = str(path)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


_WHERE_MODULES_COME_FROM = """
    import json, sys
    import aptio
    from aptio import _compiled
    files = {name: getattr(module, "__file__", None) or "" for name, module in
             sys.modules.items() if name.startswith("aptio.")}
    print(json.dumps({"compiled": aptio.compiled, "description": _compiled.DESCRIPTION,
                      "names": list(_compiled.compiled_modules()), "files": files}))
"""


def test_aptio_compiled_says_which_build_this_process_runs() -> None:
    assert isinstance(aptio.compiled, bool)
    assert aptio.compiled is _compiled.COMPILED
    names = _compiled.compiled_modules()
    assert bool(names) is aptio.compiled
    for name in names:
        module = sys.modules[name]
        assert module.__file__ is not None
        assert not module.__file__.endswith(".py"), (name, module.__file__)
    assert (" with mypyc" in _compiled.DESCRIPTION) is aptio.compiled


def test_aptio_pure_python_runs_every_module_from_its_source() -> None:
    found = json.loads(_run(_WHERE_MODULES_COME_FROM, pure=True))
    assert found["compiled"] is False
    assert found["names"] == []
    assert found["description"] == "pure Python (APTIO_PURE_PYTHON=1)"
    not_source = {name: file for name, file in found["files"].items()
                  if not file.endswith(".py")}
    assert not_source == {}


@needs_compiled
def test_the_compiled_build_runs_every_module_it_compiled() -> None:
    found = json.loads(_run(_WHERE_MODULES_COME_FROM))
    assert found["compiled"] is True, found["description"]
    assert "aptio._call.call" in found["names"]
    assert "aptio._proxy.proxy" not in found["names"]  # it builds classes at run time
    for name in found["names"]:
        assert found["files"][name].endswith(_compiled._SUFFIX), name


def test_a_proxy_method_is_machine_code_where_the_call_path_is_compiled() -> None:
    # Compiled, a proxy method call runs no Python frame before the apartment; pure, the
    # method is the one Python function (both from aptio/_proxy/method_sender.py).
    import types

    from aptio._proxy.proxy import proxy_class

    @aptio.coclass
    class Pinged:
        def ping(self) -> None:
            """Answers."""

    method = vars(proxy_class(Pinged))["ping"]
    assert isinstance(method, types.FunctionType) is not aptio.compiled
    # Binds like a function, so 3.12+ reads `proxy.ping` without making a bound method
    # (setup.py's patch, for the compiled one).
    method_descriptor, immutable = 1 << 17, 1 << 8  # Py_TPFLAGS_METHOD_DESCRIPTOR, IMMUTABLETYPE
    assert type(method).__flags__ & method_descriptor
    assert type(method).__flags__ & immutable
    assert (method.__name__, method.__qualname__, method.__doc__) == (
        "ping", "Proxy.ping", "Answers.")


@needs_compiled
def test_a_source_changed_after_the_build_runs_the_sources_instead(tmp_path: Path) -> None:
    # A copy of the installed package, compiled modules and all, with one source edited.
    shutil.copytree(Path(aptio.__file__).parent, tmp_path / "aptio",
                    ignore=shutil.ignore_patterns("__pycache__"))
    edited = tmp_path / "aptio" / "_call" / "call.py"
    edited.write_text(edited.read_text() + "\n# edited\n")
    found = json.loads(_run(_WHERE_MODULES_COME_FROM, cwd=tmp_path, path=tmp_path))
    assert found["compiled"] is False
    assert found["description"] == (
        "pure Python (aptio/_call/call.py changed after it was compiled; reinstall aptio to "
        "compile it again)")
    assert all(file.endswith(".py") for file in found["files"].values())
    assert found["files"]["aptio._call.call"] == str(edited)


_TRACEBACK = """
    import traceback, os
    import aptio

    class Broken:
        def fail(self):
            return self.inner()

        def inner(self):
            raise ValueError("broken")

    async def main():
        sta = await aptio.start_sta("other")
        broken = await sta.create(Broken)
        try:
            await broken.fail()
        except ValueError as error:
            for frame in traceback.extract_tb(error.__traceback__):
                print(os.path.basename(frame.filename), frame.name)

    aptio.run(main)
"""


def test_a_failed_call_shows_the_same_frames_in_both_builds() -> None:
    compiled, pure = _run(_TRACEBACK), _run(_TRACEBACK, pure=True)
    assert compiled == pure
    assert "<string> fail\n<string> inner\n" in pure  # the method's own frames are kept


_SEND_TRACEBACK = """
    import os, traceback
    import aptio

    @aptio.coclass
    class Thing:
        def ping(self) -> int:
            return 1

    def frames(error):
        return [(os.path.basename(f.filename), f.name)
                for f in traceback.extract_tb(error.__traceback__)]

    async def main():
        sta = await aptio.start_sta()
        gone, kept = await sta.create(Thing), await sta.create(Thing)
        aptio.disconnect(gone)
        try:
            gone.ping()
        except aptio.DisconnectedError as error:
            print(frames(error))
        await sta.shutdown()
        try:
            kept.ping()
        except aptio.DisconnectedError as error:
            print(frames(error))

    aptio.run(main)
"""


def test_an_error_raised_while_sending_shows_the_same_frames_in_both_builds() -> None:
    compiled, pure = _run(_SEND_TRACEBACK), _run(_SEND_TRACEBACK, pure=True)
    assert compiled == pure
    disconnected, closed = pure.splitlines()
    # The proxy method's own frame, and nothing of the machinery behind it (one source for
    # both builds: aptio/_proxy/method_sender.py).
    assert disconnected.endswith("('method_sender.py', 'method')]")
    assert "('send.py', 'send')" in closed


@aptio.coclass
class _Waits:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def wait_forever(self, started: threading.Event, ended: threading.Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except BaseException as error:
            self.seen.append(type(error).__name__)
            raise
        finally:
            ended.set()

    def seen_errors(self) -> list[str]:
        return self.seen


@pytest.mark.asyncio
@pytest.mark.parametrize("repetition", range(20))
async def test_cancelling_an_async_call_throws_a_plain_cancel_into_the_method(
        main: aptio.Apartment, repetition: int) -> None:
    # mypyc/mypyc#1214: compiled code passing the cancel on with the three-argument throw()
    # warns on 3.12+; under the suite's filterwarnings=error the method would see a
    # DeprecationWarning instead of its CancelledError.
    sta = await aptio.start_sta()
    try:
        obj = await sta.create(_Waits)
        started, ended = threading.Event(), threading.Event()
        call = obj.wait_forever(started, ended)
        await asyncio.to_thread(started.wait, 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The caller is released at once; the method sees the cancel in its own loop's time.
        assert await asyncio.to_thread(ended.wait, 10)
        assert await obj.seen_errors() == ["CancelledError"]
    finally:
        await sta.shutdown()


@aptio.coclass
class _SlowToMake:
    started: Any = None
    gate: Any = None

    def __init__(self) -> None:
        _SlowToMake.started.set()
        _SlowToMake.gate.wait(10)


@pytest.mark.asyncio
async def test_cancelling_a_create_through_a_compiled_await_cancels_cleanly(
        main: aptio.Apartment) -> None:
    # Apartment.create (compiled) awaits the runtime's create_from (Python): the cancel goes
    # through the compiled await.
    sta = await aptio.start_sta()
    try:
        started = _SlowToMake.started = threading.Event()
        gate = _SlowToMake.gate = threading.Event()
        task = asyncio.ensure_future(sta.create(_SlowToMake))
        await asyncio.to_thread(started.wait, 10)  # the create awaits its call now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
    finally:
        await sta.shutdown()


def test_a_call_can_be_weakly_referenced_and_its_references_die_with_it() -> None:
    # Compiled, Call is a native class: mypyc left its weak references uncleared at
    # deallocation on 3.11 (a crash once the object's memory was reused) and unsupported on
    # 3.12+; the build patches both.
    import gc
    import weakref

    from aptio._call.call import Call
    from aptio._call.contract import ApartmentContract

    nowhere = ApartmentContract(aptio.ApartmentKind.STA, "nowhere")
    died: list[object] = []
    calls = [Call(nowhere, None, "m", print, False, (), {}, None, None, 0, 0.0, False, None,
                  None) for _ in range(100)]
    refs = [weakref.ref(call, died.append) for call in calls]
    table = weakref.WeakKeyDictionary({call: i for i, call in enumerate(calls)})
    assert len(table) == 100
    del calls
    gc.collect()
    assert len(died) == 100
    assert all(ref() is None for ref in refs)
    assert len(table) == 0
    churn = [bytearray(256) for _ in range(20000)]  # reuse the memory the calls had
    assert all(ref() is None for ref in refs), len(churn)


@pytest.mark.asyncio
async def test_apartments_and_foreign_calls_can_be_weakly_referenced(main: aptio.Apartment) -> None:
    import weakref

    from aptio._call.foreign import ForeignCall

    sta = await aptio.start_sta()
    ref = weakref.ref(sta)
    await sta.shutdown()
    assert ref() is sta
    foreign = ForeignCall(sta, "node", 1, 0, None)
    died: list[object] = []
    foreign_ref = weakref.ref(foreign, died.append)
    del foreign
    assert foreign_ref() is None and died == [foreign_ref]


@aptio.coclass
class _Shapes:
    def echo(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        return args, kwargs

    def kind_of(self, value: Any) -> str:
        return type(value).__name__

    def fail(self) -> None:
        raise ValueError("from the method")


@aptio.coclass
class _Passed:
    pass


@pytest.mark.asyncio
async def test_a_proxy_method_sends_its_arguments_as_given(main: aptio.Apartment) -> None:
    # A proxy method is one source in both builds (aptio/_proxy/method_sender.py), machine code
    # where the call path is compiled; CI runs this file in both builds.
    from aptio._proxy import proxy as proxy_module
    from aptio._proxy.method_table import method_table

    sta = await aptio.start_sta()
    try:
        target = await sta.create(_Shapes)
        table = method_table(_Shapes)

        def method(name: str) -> Any:
            return proxy_module._make_sender(name, table.lookup(name), None)

        assert await method("echo")(target, 1, "x", key=[2.5]) == ((1, "x"), {"key": [2.5]})
        assert await method("echo")(target) == ((), {})
        passed = _Passed()  # a coclass instance crosses as a proxy, also inside containers
        args, kwargs = await method("echo")(target, [passed], key={"k": passed})
        assert aptio.is_proxy(args[0][0]) and aptio.is_proxy(kwargs["key"]["k"])
        assert await method("kind_of")(target, (1, 2)) == "tuple"
        with pytest.raises(ValueError, match="from the method"):
            await method("fail")(target)
        aptio.disconnect(target)
        with pytest.raises(aptio.DisconnectedError, match=r"_Shapes\.echo\(\).*disconnected"):
            method("echo")(target)
    finally:
        await sta.shutdown()
