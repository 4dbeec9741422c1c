"""Builds aptio: the call path compiled with mypyc from the unchanged .py files where this
machine can compile C, and pure Python (the same files, run as they are) where it cannot.

The project's metadata lives in pyproject.toml; this file only adds the compiled modules.
``APTIO_PURE_PYTHON=1`` at build time skips the compiled modules; a build that fails (no C
compiler, no Python headers, a mypyc error) falls back to pure Python with one line saying
so (pip shows a build's output with ``pip install -v``). ``aptio.compiled`` tells which one
is in use at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent

# The modules a call passes through (the profile of `python -m aptio bench`), compiled as one
# group: mypyc compiles calls between modules of a group into direct C calls, so a module
# can only run compiled together with the others, and a class only together with its
# subclasses. Left out on purpose: aptio/_proxy/proxy.py and declared.py (they build classes
# at run time; Generic plus __getattr__), aptio/_proxy/enumerator.py (a generator served to
# another process has its methods bound to a stand-in, which compiled methods refuse), the
# message filter (users subclass it; it runs only where a filter is installed), the runtime
# and the entry points (run once per apartment or session), the primitives (aptio/_sync),
# the rest of the server processes' plumbing (spawning, the sockets' handshake, the codec's
# pickler subclass, reference counting: per connection or per object, not per call) and the
# GUI hosts.
COMPILED = [
    "aptio/_call/contract.py",
    "aptio/_call/context.py",
    "aptio/_call/target.py",
    "aptio/_call/call.py",
    "aptio/_call/waiters.py",
    "aptio/_call/retry.py",
    "aptio/_call/unretrieved.py",
    "aptio/_call/wait_watch.py",
    "aptio/_call/info.py",
    "aptio/_call/foreign.py",  # subclasses CallRecord: compiled with it
    "aptio/_threads/thread_table.py",
    "aptio/_threads/inbox.py",
    "aptio/_threads/ordering_311.py",
    "aptio/_threads/loops.py",
    "aptio/_threads/role.py",
    "aptio/_proxy/send.py",
    "aptio/_proxy/method_sender.py",
    "aptio/_proxy/proxy_core.py",  # the stub a proxy method reads; Proxy derives from it
    "aptio/_proxy/marshaling.py",
    "aptio/_proxy/stub.py",
    "aptio/_proxy/method_table.py",
    "aptio/_proxy/neutral_guard.py",
    "aptio/_apartments/base.py",
    "aptio/_apartments/sta.py",
    "aptio/_apartments/mta.py",
    "aptio/_apartments/neutral.py",
    "aptio/_apartments/loop_thread.py",
    "aptio/_admission/gate.py",
    "aptio/_admission/deadlock.py",
    "aptio/_remote/remote_apartment.py",  # subclasses Apartment: compiled with it
    "aptio/_remote/remote_stub.py",  # subclasses Stub: compiled with it
    # A call to another process: its request and reply pass through these on both ends.
    "aptio/_wire/framing.py",
    "aptio/_remote/connection.py",
    "aptio/_remote/payload.py",
    "aptio/_remote/socket_transport.py",
    "aptio/_remote/links.py",
]

# Hand-written C built beside the compiled group, with it or not at all (a pure-Python build
# has neither): the idle spin's poll, which must run without the interpreter lock
# (aptio/_threads/idle_spin.py says why). Its source counts as compiled: an edit after the
# build makes the whole build stale, as an edited .py of the group does.
NATIVE_HELPERS = {"aptio._threads._idle_spin": "aptio/_threads/idle_spin.c"}

# The compiled group's shared library, inside the package: aptio/_native__mypyc<suffix>.
GROUP = "aptio._native"
# The generated C, one directory per interpreter (builds for two Pythons may run at once).
_BUILD_DIR = f"build/mypyc-{sys.implementation.cache_tag}"


def _say(message: str) -> None:
    print(f"aptio: {message}", file=sys.stderr, flush=True)


def _digest_name() -> str:
    """The file beside the compiled modules that records the sources they were built from;
    one per interpreter, as the extension modules are."""
    return "_native__mypyc" + sysconfig.get_config_var("EXT_SUFFIX") + ".sources"


def _source_digests() -> dict[str, str]:
    return {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
            for path in [*COMPILED, *NATIVE_HELPERS.values()]}


def _compiler_works(name: str | None) -> str | None:
    """None when a C file including Python.h compiles here, else why not (one line)."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        return f"the Python headers are missing ({include}/Python.h; on Debian: python3-dev)"
    compiler: Any = new_compiler(compiler=name, force=True)
    customize_compiler(compiler)
    command = " ".join(getattr(compiler, "compiler_so", None) or ["the C compiler"])
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "probe.c"
        source.write_text("#include <Python.h>\nint aptio_probe(void) { return 0; }\n")
        try:
            compiler.compile([str(source)], output_dir=scratch, include_dirs=[include])
        except Exception:  # CompileError, or the compiler missing altogether
            return f"no working C compiler: `{command.split()[0]}` cannot compile a test file"
    return None


class BuildCompiledOrPure(build_ext):
    """Generates the C code with mypyc and builds it; on any failure removes what it built
    and leaves the package pure Python."""

    def finalize_options(self) -> None:
        # Only for a build: metadata and source listings finalize this command too, and need
        # no C code.
        if self.distribution.ext_modules and _BUILDS & set(self.distribution.commands):
            self.distribution.ext_modules = self._generate()
        super().finalize_options()

    def _generate(self) -> list[Extension]:
        global _failure
        if _failure is not None:
            return []
        if _generated:
            return _generated
        reason = _compiler_works(self.compiler)
        if reason is None:
            try:
                _generated.extend(_mypyc_extensions())
                return _generated
            except SystemExit:  # mypyc exits on a type error, having printed it
                reason = "mypyc found errors in the sources (above)"
            except Exception as exc:
                reason = _one_line(exc)
        _failure = reason
        _say(f"no C build ({reason}): installed as pure Python")
        return []

    def run(self) -> None:
        global _failure
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as exc:  # CompileError, LinkError, or the compiler vanishing
            _failure = _one_line(exc)
            self._remove_outputs()
            self.extensions = []
            self.distribution.ext_modules = []
            _say(f"the C build failed ({_failure}): installed as pure Python")
            return
        self._write_digests()
        _say("built the compiled call path (mypyc)")

    def _targets(self) -> list[Path]:
        """Every directory the extension modules land in (the build directory, and the
        source tree for an in-place or editable build)."""
        shared = Path(self.get_ext_fullpath(GROUP + "__mypyc")).parent
        targets = [shared]
        if self.inplace or getattr(self, "editable_mode", False):
            targets.append(ROOT / "aptio")
        return targets

    def _write_digests(self) -> None:
        text = json.dumps(_digests, indent=1, sort_keys=True) + "\n"
        for target in self._targets():
            if target.is_dir():
                (target / _digest_name()).write_text(text)
        if len(self._targets()) > 1:
            _remove_stale_modules()

    def _remove_outputs(self) -> None:
        for output in build_ext.get_outputs(self):
            Path(output).unlink(missing_ok=True)


def _remove_stale_modules() -> None:
    """In the source tree (an in-place or editable build): remove this interpreter's extension
    modules of modules no longer compiled, which would otherwise shadow their sources."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    keep = {ROOT / path.replace(".py", suffix) for path in COMPILED}
    keep.update(ROOT / (name.replace(".", "/") + suffix) for name in NATIVE_HELPERS)
    keep.add(ROOT / "aptio" / f"_native__mypyc{suffix}")
    for found in (ROOT / "aptio").rglob(f"*{suffix}"):
        if found not in keep:
            found.unlink()


_BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}
_generated: list[Extension] = []
_digests: dict[str, str] = {}
_failure: str | None = None


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1][:160] if lines else ''}".rstrip(": ")


def _mypyc_extensions() -> list[Extension]:
    from mypyc.build import mypycify

    # The sources as mypyc reads them (a source edited during the build must count as changed).
    _digests.update(_source_digests())

    # mypyc type-checks the sources for the interpreter it runs on: a `type: ignore` needed on
    # 3.11 only (an argument 3.12 added) must not fail the build on 3.12.
    extensions: list[Extension] = mypycify(
        ["--no-warn-unused-ignores", *COMPILED], opt_level=os.environ.get("APTIO_DEV_OPT", "3"),
        group_name=GROUP, target_dir=_BUILD_DIR)
    patched = _patch_runtime()
    for extension in extensions:
        extension.include_dirs.insert(0, patched)
        for source in extension.sources:
            _patch_generated(Path(source))
    extensions.extend(Extension(name, sources=[source]) for name, source in NATIVE_HELPERS.items())
    return extensions


def _patch_generated(source: Path) -> None:
    """Both patches of the generated C below, in one read and write of the group's file (the
    one with the deallocators; the modules' own small shims have none)."""
    text = source.read_text(encoding="utf-8")
    if "_dealloc(" not in text:
        return
    source.write_text(_patch_method_descriptor(_patch_weakrefs(text)), encoding="utf-8")


# A proxy method is a nested function of aptio/_proxy/method_sender.py, which mypyc makes an
# instance of a class of its own (binding like a function: its __get__ makes a bound method).
# CPython 3.12+ reads `proxy.method` on a specialized path, with no bound method made, only
# for descriptors whose type says it binds like a function (Py_TPFLAGS_METHOD_DESCRIPTOR) and
# cannot change (Py_TPFLAGS_IMMUTABLETYPE); a Python function's type says both. The patch
# sets both on that one class once it is made (mypyc still sets its __module__ before),
# which is true of it: calling it with the proxy first is what its bound method does.
_SENDER_TYPE = "CPyType_method_sender___method_make_method_obj"


def _patch_method_descriptor(text: str) -> str:
    made = re.compile(r"(if \(unlikely\(!" + _SENDER_TYPE + r"\)\)\s*goto fail;)")
    text, count = made.subn(
        r"\1\n    " + _SENDER_TYPE
        + "->tp_flags |= Py_TPFLAGS_METHOD_DESCRIPTOR | Py_TPFLAGS_IMMUTABLETYPE;", text)
    if count != 1:
        raise RuntimeError("this mypyc's proxy method class does not match the patch")
    return text


# mypyc (2.4) gives a compiled class that inherits a Python class (as Call inherits
# collections.abc.Coroutine) a weak-reference list on 3.11 but never clears it when an object
# dies: a weak reference outlives its object and crashes the process. On 3.12+ it gives such
# classes a managed __dict__ but no managed weak-reference list, so weakref.ref() fails where
# the pure-Python class allows it. The patch makes every compiled class that has a weak-
# reference list clear it on deallocation, as CPython's own classes do, and asks for the
# managed list beside the managed __dict__ (the object's pre-header holds both already).
_DEALLOC = re.compile(r"(CPy_TRASHCAN_BEGIN\(self, \w+_dealloc\)\n)")
_CLEAR_WEAKREFS = ("if (Py_TYPE(self)->tp_weaklistoffset != 0) "
                   "PyObject_ClearWeakRefs((PyObject *)self);\n")
_MANAGED_DICT = "| Py_TPFLAGS_MANAGED_DICT"


def _patch_weakrefs(text: str) -> str:
    text, deallocs = _DEALLOC.subn(r"\1" + _CLEAR_WEAKREFS, text)
    if deallocs == 0:
        raise RuntimeError("this mypyc's deallocators do not match the weak-reference patch")
    return text.replace(_MANAGED_DICT, _MANAGED_DICT + " | Py_TPFLAGS_MANAGED_WEAKREF")


# mypyc/mypyc#1214: where compiled code awaits something and an exception is thrown in (a
# cancelled Task), mypyc's runtime passes it on with the three-argument throw(), deprecated
# since Python 3.12: every cancelled await through a compiled module would warn (and fail under
# -W error). The patch passes the exception alone, as CPython itself does; the traceback
# travels on the exception (sys.exc_info() is derived from it since 3.11).
_THROW_OLD = "res = PyObject_CallFunctionObjArgs(_m, type, value, traceback, NULL);"
_THROW_NEW = ("res = value != Py_None ? PyObject_CallOneArg(_m, value)\n"
              "                : PyObject_CallFunctionObjArgs(_m, type, value, traceback, NULL);")


def _patch_runtime() -> str:
    """A directory with mypyc's misc_ops.c patched (see above), to be searched before
    mypyc's own runtime directory."""
    from mypyc.build import include_dir

    text = (Path(include_dir()) / "misc_ops.c").read_text(encoding="utf-8")
    if text.count(_THROW_OLD) != 1:
        raise RuntimeError("this mypyc's runtime does not match the mypyc#1214 patch")
    target = ROOT / _BUILD_DIR / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    (target / "misc_ops.c").write_text(text.replace(_THROW_OLD, _THROW_NEW), encoding="utf-8")
    return str(target)


def _placeholder() -> list[Extension]:
    """An extension for setuptools to see (so that it runs build_ext and tags the wheel for
    this platform); BuildCompiledOrPure replaces it with the real ones, or with none."""
    if os.environ.get("APTIO_PURE_PYTHON") == "1":
        _say("APTIO_PURE_PYTHON=1: installed as pure Python")
        return []
    return [Extension(GROUP + "__mypyc", sources=[])]


setup(ext_modules=_placeholder(), cmdclass={"build_ext": BuildCompiledOrPure})
