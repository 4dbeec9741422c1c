"""Event-loop factories: uvloop when installed (and wanted), asyncio otherwise."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["uvloop_available", "loop_factory", "running_loop", "thread_private_loop"]

_uvloop: Any
try:  # pragma: no cover - depends on the platform
    import uvloop as _uvloop
except ImportError:  # pragma: no cover
    _uvloop = None

running_loop = asyncio._get_running_loop  # the fast, non-raising lookup asyncio itself uses


def uvloop_available() -> bool:
    """True when uvloop can be imported on this interpreter."""
    return _uvloop is not None


def loop_factory(use_uvloop: bool | None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory for a new loop: uvloop if ``use_uvloop`` is true or None and it is installed."""
    if use_uvloop is None:
        use_uvloop = _uvloop is not None
    if use_uvloop:
        if _uvloop is None:
            raise RuntimeError(
                "use_uvloop=True but uvloop is not installed; install it or pass use_uvloop=False"
            )
        factory: Callable[[], asyncio.AbstractEventLoop] = _uvloop.new_event_loop
        return factory
    return asyncio.new_event_loop


class _PrivateLoops(threading.local):
    loop: asyncio.AbstractEventLoop | None = None


_private = _PrivateLoops()


def thread_private_loop(use_uvloop: bool | None) -> asyncio.AbstractEventLoop:
    """A loop owned by the calling non-STA thread, made on first use, for running coroutine
    methods to completion there (an MTA worker, or a plain thread calling a FREE or NEUTRAL
    object). Invariant: never running when this is called from outside it."""
    loop = _private.loop
    if loop is None or loop.is_closed():
        loop = loop_factory(use_uvloop)()
        _private.loop = loop
    return loop


def close_thread_private_loop() -> None:
    """Close the calling thread's private loop, if it made one (pool workers call this on exit)."""
    loop = _private.loop
    _private.loop = None
    if loop is not None and not loop.is_closed():
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
