"""Starting a server process, and reaping it.

The child is a fresh interpreter (``python -m aptio._server_main``: spawn semantics, never a
fork of a process that has threads). It reads its configuration, the session's secret key
among it, as one JSON line on its standard input: never on its command line, never in a file.
Standard input then stays open: its end of file tells the child that its parent is gone. The
child reports readiness on a pipe of its own; its standard output is the parent's; its
standard error is forwarded to the parent's and its tail kept, for the error of a server that
fails to start. A thread per child waits for it, so no exited child is left a zombie.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final

from .._values.errors import ServerStartError

__all__ = ["ServerProcess", "live_server_processes", "main_module_config"]

_STDERR_TAIL: Final = 64 * 1024

#: Every server process this process started, until it is reaped (for leak checks in tests).
_started: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


def live_server_processes() -> list[ServerProcess]:
    """The server processes this process started that have not exited yet."""
    return [process for process in list(_started) if not process.exited.is_set()]


def main_module_config() -> dict[str, Any]:
    """How the child finds the parent's ``__main__`` (classes defined in a script), as
    multiprocessing's spawn does: a script's path, unless it is a package's ``__main__``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if name is not None:
        return {"main_name": name} if not name.endswith(".__main__") else {}
    path = getattr(main, "__file__", None)
    if path and os.path.exists(path):
        return {"main_path": os.path.abspath(path)}
    return {}


class ServerProcess:
    """One child process running an aptio server."""

    def __init__(self, name: str, config: dict[str, Any], python: str | None,
                 env: dict[str, str] | None, on_exit: Callable[[int], None]) -> None:
        self.name = name
        ready_read, ready_write = os.pipe()
        config = dict(config, ready_fd=ready_write)
        try:
            self.popen = subprocess.Popen(
                [python or sys.executable, "-m", "aptio._server_main"],
                stdin=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(ready_write,),
                env=env, close_fds=True)
        except BaseException:
            os.close(ready_read)
            os.close(ready_write)
            raise
        os.close(ready_write)
        self._ready = os.fdopen(ready_read, "rb")
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_size = 0
        self.exited = threading.Event()
        #: Set once the child's stderr reached its end (all of it is in the tail by then).
        self._stderr_ended = threading.Event()
        self.returncode: int | None = None
        self._on_exit = on_exit
        _started.add(self)
        threading.Thread(target=self._forward_stderr, name=f"aptio {name} stderr",
                         daemon=True).start()
        threading.Thread(target=self._reap, name=f"aptio {name} reaper", daemon=True).start()
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(json.dumps(config).encode() + b"\n")
            self.popen.stdin.flush()
        except OSError:  # it exited at once: ``ready`` reports it, with its stderr
            self.close_stdin()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _forward_stderr(self) -> None:
        stream = self.popen.stderr
        assert stream is not None
        try:
            for line in iter(stream.readline, b""):
                self._tail.append(line)
                self._tail_size += len(line)
                while self._tail_size > _STDERR_TAIL and len(self._tail) > 1:
                    self._tail_size -= len(self._tail.popleft())
                try:
                    sys.stderr.write(line.decode(errors="replace"))
                    sys.stderr.flush()
                except (OSError, ValueError):  # the parent's stderr is closed
                    pass
        finally:
            stream.close()
            self._stderr_ended.set()

    def _reap(self) -> None:
        self.returncode = self.popen.wait()
        self.exited.set()
        self._on_exit(self.returncode)

    def stderr_text(self) -> str:
        return b"".join(self._tail).decode(errors="replace")

    def _ended(self, timeout: float) -> None:
        """Wait (a bounded time) until the child has exited and its last stderr line is in
        the tail: a child's exit can be seen before the stderr thread has read its output."""
        if self.exited.wait(timeout):
            self._stderr_ended.wait(timeout)

    async def ready(self, timeout: float) -> dict[str, Any]:
        """The child's ready message; ServerStartError if it exits or stays silent."""

        def read() -> bytes:
            with self._ready:
                return self._ready.readline()

        try:
            async with asyncio.timeout(timeout):
                line = await asyncio.to_thread(read)
        except TimeoutError:
            self.kill()
            await asyncio.to_thread(self._ended, 5.0)
            raise ServerStartError(
                f"server {self.name!r} did not start within {timeout} s (start_timeout); its "
                f"stderr:\n{self.stderr_text()}") from None
        if not line:
            await asyncio.to_thread(self._ended, 10.0)
            raise ServerStartError(
                f"server {self.name!r} exited before it was ready (exit code "
                f"{self.returncode}); its stderr:\n{self.stderr_text() or '(empty)'}")
        message: dict[str, Any] = json.loads(line)
        return message

    def close_stdin(self) -> None:
        """Tell the child its parent is done with it (it then shuts down)."""
        stdin = self.popen.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except OSError:
                pass

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                self.popen.kill()
            except ProcessLookupError:
                pass
        self.close_stdin()
