"""Deterministic helpers for testing code that uses aptio: no sleeps to synchronize."""

from __future__ import annotations

import threading
from typing import Any

from ._apartments.base import Apartment
from ._call.call import Call
from ._proxy.send import send

__all__ = ["apartment_barrier", "live_apartment_threads"]


def _noop() -> None:
    return None


async def apartment_barrier(apartment: Apartment) -> None:
    """Return once every call sent to ``apartment`` from here before this one has started.

    It sends a no-op call through the same queue and awaits it: the queue is FIFO, so when it
    runs, everything queued before it has been taken. (On an STA, a started coroutine call may
    still be suspended at an ``await``.)
    """
    call: Call[Any] = send(apartment, None, "apartment_barrier", _noop, False, (), {}, None, None)
    await call


def live_apartment_threads() -> list[threading.Thread]:
    """The threads aptio started that are still alive (STA loops and MTA workers)."""
    return [t for t in threading.enumerate() if t.name.startswith("aptio ")]
