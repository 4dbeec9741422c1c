"""Which build of aptio runs: the call path compiled with mypyc, or the pure-Python sources.

Both are the same ``.py`` files. Where the install could compile C (see ``setup.py``), the
call path's modules also exist as extension modules beside their sources, all in one group
(``_native__mypyc``: compiled modules call each other directly, so they run together or not
at all), and Python's import system prefers an extension module to a source file of the same
name. The sources run instead, all of them, when:

- ``APTIO_PURE_PYTHON=1`` is set when aptio is imported;
- no compiled modules exist for this interpreter (the build fell back to pure Python, or it
  was a build for another Python);
- a compiled module's source changed after it was compiled (an editable install that was
  edited or updated since; reinstall to compile again). The build records a digest of every
  source it compiled, and the import compares them: running stale machine code in place of
  the source a developer just edited would be a silent lie.

This module is imported first, by ``aptio/__init__.py``, so the choice is made before any
module of the call path is imported. To run the sources where compiled modules exist, it puts
a finder in front of ``sys.meta_path`` that gives aptio's modules their ``.py`` files.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

__all__ = ["COMPILED", "DESCRIPTION", "WeaklyReferenced", "compiled_modules"]

_PACKAGE: Final = Path(__file__).resolve().parent
_SUFFIX: Final = str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
#: The shared library of the compiled group, and the record of the sources compiled into it
#: (written by setup.py, one of each per interpreter).
_LIBRARY: Final = _PACKAGE / f"_native__mypyc{_SUFFIX}"
_RECORD: Final = _PACKAGE / f"_native__mypyc{_SUFFIX}.sources"


def _read_record() -> dict[str, str] | None:
    try:
        record = json.loads(_RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _decide() -> tuple[bool, str, tuple[str, ...]]:
    """(compiled?, one line saying which build runs and why, the compiled modules' names)."""
    if os.environ.get("APTIO_PURE_PYTHON") == "1":
        return False, "pure Python (APTIO_PURE_PYTHON=1)", ()
    if not _LIBRARY.exists():
        return False, "pure Python (this installation has no compiled modules)", ()
    record = _read_record()
    if not record:
        return False, "pure Python (the compiled modules' record of their sources is missing)", ()
    for path, digest in record.items():
        try:
            actual = hashlib.sha256((_PACKAGE.parent / path).read_bytes()).hexdigest()
        except OSError:
            if not path.endswith(".py"):
                continue  # hand-written C an installation may leave out: only its build counts
            actual = ""
        if actual != digest:
            return False, (f"pure Python ({path} changed after it was compiled; reinstall "
                           "aptio to compile it again)"), ()
    names = tuple(sorted(path.removesuffix(".py").replace("/", ".") for path in record
                         if path.endswith(".py")))  # not the hand-written C beside them
    return True, f"compiled with mypyc ({len(names)} modules of the call path)", names


class _SourcesOnly(importlib.abc.MetaPathFinder):
    """Finds aptio's modules as ``.py`` files only, so that compiled modules beside them are
    not imported."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if path is None or not fullname.startswith("aptio."):
            return None
        for entry in path:
            finder = importlib.machinery.FileFinder(
                entry, (importlib.machinery.SourceFileLoader,
                        importlib.machinery.SOURCE_SUFFIXES))
            spec = finder.find_spec(fullname, target)
            if spec is not None and spec.loader is not None:
                return spec
        return None


COMPILED, DESCRIPTION, _modules = _decide()

if not COMPILED and _LIBRARY.exists() and not any(
        isinstance(finder, _SourcesOnly) for finder in sys.meta_path):
    sys.meta_path.insert(0, _SourcesOnly())


def compiled_modules() -> tuple[str, ...]:
    """The names of the modules running compiled (none in the pure-Python build)."""
    return _modules


class WeaklyReferenced:
    """The base of the compiled modules' classes whose instances are weakly referenced (the
    apartments, the calls).

    mypyc gives a compiled class a weak-reference list only when it inherits a Python class,
    which this one is: this module is never compiled. (The build patches mypyc's output so
    that such lists are cleared when an object dies, and exist on 3.12+ too.) In the
    pure-Python build it changes nothing: the subclass names ``__weakref__`` in its own
    ``__slots__``.
    """

    __slots__ = ()
