"""An event loop served on its own named thread, owned by an apartment (an STA, or the MTA's
loop for coroutine methods).

The loop and its inbox are made on the creating thread, before the loop thread starts, so work
can be posted at once (it runs as soon as the loop does). Lifecycle, as in a blocking portal:
the thread binds itself to the apartment, signals ``started``, serves until ``stop()``, then
cancels what is left on the loop, closes it, unbinds, tells its owner (``on_exit``) and
signals ``stopped``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from .._call.context import set_thread_apartment
from .._call.contract import ApartmentContract
from .._sync.event import Event
from .._threads.inbox import IdleWaiter, Inbox, install_loop_inbox
from .._threads.loops import EAGER_TASKS, finish_loop, loop_factory
from .._threads.ordering_311 import OrderedInbox

__all__ = ["LoopThread", "apartment_inbox"]


def apartment_inbox(loop: asyncio.AbstractEventLoop, thread_id: int | None) -> Inbox:
    """The inbox for an apartment's loop (3.11: one that also keeps calls in order behind
    Tasks that have not taken their first step)."""
    if EAGER_TASKS:
        return Inbox(loop, thread_id)
    return OrderedInbox(loop, thread_id)  # 3.11


class LoopThread:
    """One event loop on one dedicated thread, serving ``apartment``."""

    __slots__ = ("_on_exit", "_stop", "apartment", "inbox", "loop", "started", "stopped",
                 "thread")

    def __init__(self, apartment: ApartmentContract, name: str, use_uvloop: bool | None,
                 on_exit: Callable[[], None], idle_waiter: IdleWaiter | None = None) -> None:
        self.apartment = apartment
        self.loop = loop_factory(use_uvloop)()
        self.inbox = apartment_inbox(self.loop, 0)  # its thread id is set once it runs
        self.inbox.spin_when_idle(idle_waiter)
        self.started = Event()
        self.stopped = Event()
        self._on_exit = on_exit
        self._stop: asyncio.Future[None] | None = None
        self.thread = threading.Thread(target=self._main, name=f"aptio {name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Stop serving (any thread): the loop unwinds and the thread exits."""
        try:
            self.loop.call_soon_threadsafe(self._set_stop)
        except RuntimeError:  # the loop is closed already
            pass

    def _set_stop(self) -> None:
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)

    def join(self) -> None:
        if self.thread is not threading.current_thread() and self.thread.ident is not None:
            self.thread.join()

    def _main(self) -> None:
        loop = self.loop
        try:
            asyncio.set_event_loop(loop)
            self.inbox.thread_id = threading.get_ident()
            install_loop_inbox(self.inbox)
            set_thread_apartment(self.apartment)
            loop.run_until_complete(self._serve())
            finish_loop(loop, "aptio apartment")
        finally:
            # Whatever ended the loop (a stop, or an error that escaped it), no call may be
            # left waiting on it: the owner fails what still runs and reports itself stopped.
            self._on_exit()
            self.inbox.close()
            set_thread_apartment(None)
            install_loop_inbox(None)
            asyncio.set_event_loop(None)
            loop.close()
            self.started.set()  # a loop that failed half-way still wakes its starter
            self.stopped.set()

    async def _serve(self) -> None:
        self._stop = asyncio.get_running_loop().create_future()
        self.started.set()
        await self._stop
