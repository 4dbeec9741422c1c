"""The Ray actor an aptio server on Ray lives in.

The actor is an async actor: Ray runs its methods as coroutines on an event loop of its own.
That loop only moves bytes (``exchange``, :mod:`aptio._ray.network`); the aptio runtime runs
on threads of its own (a main STA thread running ``aptio.run``, STAs, the MTA, the node's I/O
thread), as in a server process, so a busy apartment never stops the others' calls, nor the
cancels and reference counting that travel on the control connection.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import secrets
import sys
import threading
from collections.abc import Callable
from typing import Any

import ray

from .._runtime.entry import run
from .._runtime.runtime import Runtime
from .._runtime.server_process import load_main, serve
from .._runtime.session import Session, join_session
from . import transit  # noqa: F401 (a proxy pickled by Ray in a server travels too)
from .batches import pack_answer
from .channel import GONE, NOTHING
from .network import RayNetwork, install

__all__ = ["ServerActor", "import_class"]


class ServerActor:
    """See the module docstring. Made a Ray actor class by :mod:`aptio._ray.start`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._ready = threading.Event()
        self._info: dict[str, Any] = {}
        self._failure: str | None = None
        self._network: RayNetwork | None = None
        self._stop: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._main, name="aptio main STA", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        config = self._config
        try:
            for entry in reversed(config["sys_path"]):
                if entry not in sys.path and os.path.isdir(entry):
                    sys.path.insert(0, entry)
            load_main(config)
            if config.get("imports"):
                import_class(config["imports"])
            join_session(Session(secrets.token_bytes(32), "", config["name"], False,
                                 config["max_message_size"], config.get("serves")))
            run(serve(bool(config.get("single_use")), self._announce, config.get("trace")),
                use_uvloop=config.get("use_uvloop"))
        except BaseException as error:  # reported by ``ready``; the thread ends here
            self._failure = f"{type(error).__name__}: {error}"
        finally:
            self._ready.set()

    def _announce(self, runtime: Runtime, stop_soon: Callable[[], None]) -> None:
        config = self._config
        node = runtime.node()
        self._network = install(node, config["keepalive"], config["address"])
        self._stop = stop_soon
        context = ray.get_runtime_context()
        self._info = {"node": node.node_id, "address": node.address, "pid": os.getpid(),
                      "ray_node": context.get_node_id()}
        self._ready.set()

    async def ready(self) -> dict[str, Any]:
        """The server's node id and address (or why it did not start)."""
        if self._failure is not None:
            return {"failure": self._failure}
        return self._info

    async def exchange(self, batch: bytes) -> bytes:
        """One exchange of a channel (see :mod:`aptio._ray.channel`)."""
        network = self._network
        if network is None:
            return pack_answer(GONE, NOTHING, "the server is not serving")
        return await network.exchange(batch)

    async def wait_stopped(self) -> str:
        """Return once the server's runtime stopped, then end the actor."""
        await asyncio.to_thread(self._thread.join)
        ray.actor.exit_actor()
        return "stopped"  # not reached: exit_actor raises


def import_class(name: str) -> type:
    """The class named ``module:qualname``, imported here; :class:`ImportError` saying how to
    make it importable on the cluster when it is not."""
    module_name, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as error:
        raise ImportError(
            f"this Ray worker cannot import class {qualname!r} from module {module_name!r} "
            f"({type(error).__name__}: {error}): a class registered with @aptio.ray.server "
            "must be importable on the cluster: in a module on the worker's sys.path, or "
            "shipped with the server's runtime_env (working_dir or py_modules)") from None
    if not isinstance(found, type):
        raise ImportError(f"{name} is {type(found).__qualname__}, not a class")
    return found
