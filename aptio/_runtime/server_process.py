"""The server process's side: read the session from standard input, run an aptio runtime,
export the control object, say ready, and serve until told to stop (or the parent is gone)."""

from __future__ import annotations

import asyncio
import json
import os
import runpy
import sys
import threading
import types
from collections.abc import Callable
from typing import IO, Any

from .._apartments.base import Apartment
from .._call.context import running_call
from .._proxy.stub import stub_for
from .._remote.control import ControlHooks, NodeControl
from .._remote.exports import CONTROL_OBJECT_ID
from .._wire.messages import ApartmentRef
from .entry import get_runtime, run
from .recording import begin_server_recording, collect_server_recording
from .runtime import Runtime
from .session import Session, join_session

__all__ = ["load_main", "main", "serve"]


class _Hooks(ControlHooks):
    def __init__(self, runtime: Runtime, stop: asyncio.Event) -> None:
        self._runtime = runtime
        self._stop = stop
        self._loop = asyncio.get_running_loop()

    def apartment(self, apartment_id: str) -> Apartment | None:
        return self._runtime.apartment_by_id(apartment_id)

    async def start_sta(self, name: str | None) -> Apartment:
        return await self._runtime.start_sta(name, None)

    def stop(self, timeout: float | None) -> None:
        self._runtime.shutdown_timeout = timeout
        self._loop.call_soon_threadsafe(self._stop.set)  # after the call's reply is queued

    def reference(self, apartment: Apartment) -> ApartmentRef:
        return self._runtime.node().apartment_ref(apartment)

    def trace_start(self, limit: int) -> None:
        begin_server_recording(limit, self._runtime.session.name, self._runtime.node().node_id)

    async def trace_collect(self) -> Any:
        return await collect_server_recording(self._runtime, running_call())


def _watch_parent(fd: int, on_gone: Callable[[], None]) -> None:
    """Block on standard input until its end: the parent closed it, or died. (The raw file
    descriptor: a daemon thread blocked in a buffered reader would hold its lock while the
    interpreter finalizes.)"""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
    on_gone()


async def serve(single_use: bool,
                announce: Callable[[Runtime, Callable[[], None]], None],
                trace_limit: int | None = None) -> None:
    """Serve as a server of the session this process joined, in the runtime ``aptio.run``
    started: export the control object, call ``announce(runtime, stop_soon)`` (say ready;
    ``stop_soon`` ends the serving from any thread), and serve until stopped. ``trace_limit``:
    the client records calls, so this server records too, from its start, in a ring of that
    many records."""
    runtime = get_runtime()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    node = runtime.node()
    assert runtime.main is not None
    control = NodeControl(_Hooks(runtime, stop))
    node.exports.pin(CONTROL_OBJECT_ID, stub_for(control, runtime.main))

    def stop_soon() -> None:
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:  # already stopped
            pass

    if trace_limit:  # the client records: so does this server, from its start
        begin_server_recording(trace_limit, runtime.session.name, node.node_id)
    if single_use:
        node.exports.on_empty = stop_soon
    announce(runtime, stop_soon)
    await stop.wait()


async def _serve(config: dict[str, Any], ready: IO[bytes]) -> None:
    def announce(runtime: Runtime, stop_soon: Callable[[], None]) -> None:
        node = runtime.node()
        address = node.listen()
        threading.Thread(target=_watch_parent, args=(sys.stdin.fileno(), stop_soon),
                         name="aptio parent watch", daemon=True).start()
        ready.write(json.dumps({"node": node.node_id, "address": address,
                                "pid": os.getpid()}).encode() + b"\n")
        ready.close()

    await serve(bool(config.get("single_use")), announce, config.get("trace"))


def load_main(config: dict[str, Any]) -> None:
    """The parent's ``__main__`` (its classes must unpickle here), loaded as multiprocessing's
    spawn does: as ``__mp_main__``, so that its ``if __name__ == "__main__":`` block stays out."""
    path = config.get("main_path")
    name = config.get("main_name")
    if name is not None:
        module = __import__(name, fromlist=["*"])
    elif path is not None:
        module = types.ModuleType("__mp_main__")
        sys.modules["__mp_main__"] = module
        module.__dict__.update(runpy.run_path(path, run_name="__mp_main__"))
    else:
        return
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module


def main() -> None:
    """``python -m aptio._server_main``: serve one session's calls until told to stop."""
    config: dict[str, Any] = json.loads(sys.stdin.buffer.readline())
    ready = os.fdopen(config["ready_fd"], "wb")
    os.chdir(config["cwd"])
    sys.path[:] = [entry for entry in config["sys_path"]]
    load_main(config)
    join_session(Session(bytes.fromhex(config["key"]), config["directory"], config["name"],
                         False, config["max_message_size"], config.get("serves")))
    run(_serve(config, ready), use_uvloop=config.get("use_uvloop"))
