"""A one-shot signal that any thread can set and any loop or thread can wait for.

Used for the apartment lifecycle (started, stopped), not for user synchronization: that is
what :mod:`aptio._sync` provides.
"""

from __future__ import annotations

import asyncio
import threading

from ._loops import running_loop

__all__ = ["OneShot"]


class OneShot:
    """Set once, from any thread; waiters on any loop and blocked threads all wake.

    Invariant: after ``set()`` returns, every waiter registered before it has been woken and
    every later ``wait`` returns at once (``_flag`` is set before waiters are read).
    """

    __slots__ = ("_flag", "_lock", "_loop_waiters")

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._lock = threading.Lock()
        self._loop_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def is_set(self) -> bool:
        return self._flag.is_set()

    def set(self) -> None:
        with self._lock:
            if self._flag.is_set():
                return
            self._flag.set()
            waiters, self._loop_waiters = self._loop_waiters, []
        current = running_loop()
        for loop, fut in waiters:
            if loop is current:
                _wake(fut)
            else:
                try:
                    loop.call_soon_threadsafe(_wake, fut)
                except RuntimeError:  # that loop is closed: its waiter is gone with it
                    pass

    async def wait(self) -> None:
        if self._flag.is_set():
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._flag.is_set():
                return
            self._loop_waiters.append((loop, fut))
        try:
            await fut
        finally:
            if not fut.done():
                with self._lock:
                    if (loop, fut) in self._loop_waiters:
                        self._loop_waiters.remove((loop, fut))


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
