"""Which class a proxy to an object in a server uses: the real one whenever this process can
import it (a class of the script that started the server included, which the server loads as
``__mp_main__``), else a stand-in that learns each method as it is called. Both are driven
from scripts run as ``__main__``, as users run theirs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

_SCRIPT_CLASS = textwrap.dedent("""
    from collections.abc import Iterator
    import aptio

    @aptio.coclass
    class Greeter:
        def hello(self, name: str) -> str:
            return f"hello {name}"

        def count(self, n: int) -> Iterator[int]:
            yield from range(n)

    async def main() -> None:
        async with await aptio.start_server("classes") as server:
            greeter = await server.create(Greeter)
            stub = greeter._aptio_stub
            assert stub.cls is Greeter, stub.cls  # not a stand-in for __mp_main__.Greeter
            assert "hello" in type(greeter).__dict__  # the class's proxy, methods and all
            assert await greeter.hello("you") == "hello you"
            assert [x async for x in greeter.count(3)] == [0, 1, 2]
        print("ok")

    if __name__ == "__main__":
        aptio.run(main)
""")

_HIDDEN_CLASS = textwrap.dedent("""
    import aptio

    @aptio.coclass
    class Factory:
        def make(self) -> object:
            # A class of a module that only the server has: the client cannot import it.
            import sys, types
            module = types.ModuleType("only_in_the_server")
            sys.modules[module.__name__] = module

            @aptio.coclass
            class Hidden:
                def hello(self, name: str) -> str:
                    return f"hidden {name}"

                def count(self, n: int):
                    yield from range(n)

            Hidden.__module__ = module.__name__
            Hidden.__qualname__ = "Hidden"
            module.Hidden = Hidden
            return Hidden()

    async def main() -> None:
        async with await aptio.start_server("classes") as server:
            factory = await server.create(Factory)
            assert "make" in type(factory).__dict__
            hidden = await factory.make()
            cls = hidden._aptio_stub.cls
            assert cls.__module__ == "only_in_the_server" and cls.__qualname__ == "Hidden"
            assert "hello" not in type(hidden).__dict__
            assert await hidden.hello("one") == "hidden one"
            assert "hello" in type(hidden).__dict__  # learned: later calls find it at once
            assert await hidden.hello("two") == "hidden two"
            assert [x async for x in hidden.count(2)] == [0, 1]  # a generator, as the ref says
            try:
                await hidden.nothing_of_the_kind()
            except AttributeError as error:
                assert "nothing_of_the_kind" in str(error), error
            else:
                raise AssertionError("a method the class does not have was called")
            try:
                hidden._private
            except AttributeError:
                pass
            else:
                raise AssertionError("a private name was sent")
        print("ok")

    if __name__ == "__main__":
        aptio.run(main)
""")


@pytest.mark.parametrize("script", [_SCRIPT_CLASS, _HIDDEN_CLASS], ids=["importable", "hidden"])
def test_proxies_use_the_class_when_it_is_importable_else_a_learning_stand_in(
        tmp_path: Path, script: str) -> None:
    path = tmp_path / "script.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                            timeout=100, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"


def test_a_script_class_is_this_process_s_only_if_the_script_is_the_same_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import aptio
    from aptio._remote.remote_stub import resolve_class
    from aptio._wire.messages import ClassRef

    script = tmp_path / "app.py"
    script.write_text("")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)

    @aptio.coclass
    class Worker:
        def work(self) -> int:
            return 1

    main.Worker = Worker  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    same = ClassRef("__mp_main__", "Worker", (), (), os.path.realpath(script))
    assert resolve_class(same) is Worker  # what a server this script started sends back
    other = ClassRef("__mp_main__", "Worker", (), (), str(tmp_path / "another_app.py"))
    stand_in = resolve_class(other)  # another script's Worker: not this one's
    assert stand_in is not Worker and stand_in.__module__ == "__mp_main__"
    also_other = ClassRef("__main__", "Worker", (), (), str(tmp_path / "another_app.py"))
    assert resolve_class(also_other) is not Worker  # passed on from another client, say
