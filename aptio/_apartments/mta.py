"""The multithreaded apartment: a pool of worker threads (at most one MTA per process).

FREE objects live here. A call from outside runs on a pool thread; a call from an MTA thread
(a worker, or a plain thread, which is an implicit MTA member) runs directly on that thread.
Calls are not serialized (COM_SPEC D5): FREE objects synchronize themselves.

Coroutine methods called from another apartment run on the MTA's own event-loop thread (made on
first use), where they interleave at their awaits like tasks anywhere: they never hold a pool
worker, so the pool cannot starve while they wait on calls that need it. An MTA thread with no
loop that calls a coroutine method directly runs it to completion on a private loop (COM_SPEC
D5: in the MTA "asynchronous calls are converted to synchronous").

Starvation guard: a pool worker blocked in ``call.result()`` does not count against the worker
limit, so work it waits for can still get a thread (as the CLR's pool injects threads).

Wake-up protocol (lock-free under the GIL): a poster appends the call, then pops one idle worker
and releases its lock. A worker about to sleep appends itself to ``_idle`` and re-checks the
queue; if work arrived, it takes itself back out of ``_idle`` -- unless a poster already popped
it, in which case a release is on its way and it consumes it. No wake-up is lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import os
import threading
from typing import Any

from .._call.context import set_thread_apartment, thread_apartment
from .._call.contract import CallRecord, Releasable
from .._sync.event import Event
from .._threads.inbox import Item, fail_all
from .._threads.loops import close_thread_private_loop
from .._values.enums import ApartmentKind
from .._values.errors import DisconnectedError
from .base import Apartment, Owner, ReleaseItem
from .loop_thread import LoopThread

__all__ = ["MTA", "default_workers"]


def default_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


class _Worker:
    __slots__ = ("stop", "thread", "wake")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()
        self.stop = False
        self.thread: threading.Thread | None = None


class MTA(Apartment):
    """The multithreaded apartment: a thread pool; FREE objects live here."""

    __slots__ = ("_active", "_all_exited", "_blocked", "_idle", "_loop_thread", "_max_workers",
                 "_queue", "_spawn_lock", "_workers")

    def __init__(self, owner: Owner, max_workers: int | None) -> None:
        super().__init__(owner, ApartmentKind.MTA, "MTA", "mta")
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"mta_workers must be at least 1, not {max_workers}")
        self._max_workers = max_workers or default_workers()
        #: Sync calls (and releases) for the pool workers, FIFO.
        self._queue: collections.deque[Item] = collections.deque()
        self._idle: list[_Worker] = []
        self._workers: list[_Worker] = []
        self._spawn_lock = threading.Lock()
        self._active = 0  # workers alive; changed under _spawn_lock
        self._blocked = 0  # workers blocked in call.result(); changed under _spawn_lock
        self._loop_thread: LoopThread | None = None
        self._all_exited = Event()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def _is_current(self) -> bool:
        apartment = thread_apartment()
        return apartment is None or apartment is self

    def _run_here(self, call: CallRecord[Any]) -> None:
        call._deliver_inline()

    def _post(self, call: CallRecord[Any]) -> None:
        if call._is_async:
            self._post_async(call)
        else:
            self._post_to_pool(call)

    def _release(self, holder: Releasable) -> None:
        """An object of the MTA is dropped on an MTA thread (COM marshals the last Release
        home): here on a pool worker or a plain thread (an implicit member), else by a worker."""
        here = thread_apartment()
        if here is None or here is self or self._closing:
            holder.take_object()
        else:
            self._post_to_pool(ReleaseItem(holder.take_object()))

    def _post_to_pool(self, item: Item) -> None:
        self._queue.append(item)
        self._wake_worker()
        if self._closing:
            self._fail_queued()

    def _post_async(self, call: CallRecord[Any]) -> None:
        loop_thread = self.loop_thread()
        if loop_thread is None:
            call._fail_undelivered()
        else:
            loop_thread.inbox.post(call)

    def loop_thread(self) -> LoopThread | None:
        """The MTA's event-loop thread (coroutine methods run there), started on first use;
        None once shutdown began."""
        loop_thread = self._loop_thread
        if loop_thread is None:
            with self._spawn_lock:
                # Under the lock that _begin_shutdown reads _loop_thread with: a loop thread is
                # never made after shutdown began, so every one made is drained and joined.
                if self._closing:
                    return None
                loop_thread = self._loop_thread
                if loop_thread is None:
                    loop_thread = LoopThread(self, "MTA loop", self._owner.use_uvloop,
                                             self._loop_exited)
                    self._loop_thread = loop_thread
                    loop_thread.start()
        return loop_thread

    def _queued_calls(self) -> list[CallRecord[Any]]:
        loop_thread = self._loop_thread
        queued = [item for item in list(self._queue) if isinstance(item, CallRecord)]
        return queued + self._calls_waiting_in(
            loop_thread.inbox if loop_thread is not None else None) + self._held_calls()

    def _requeue_held(self, calls: list[CallRecord[Any]]) -> None:
        """Released calls go back ahead of later ones: sync calls to the front of the pool's
        queue (workers take them in that order and run them in parallel, as ever), coroutine
        calls to the front of the MTA loop's inbox."""
        to_pool = [call for call in calls if not call._is_async]
        to_loop = [call for call in calls if call._is_async]
        if to_pool:
            self._queue.extendleft(reversed(to_pool))
            for _ in to_pool:
                self._wake_worker()
            if self._closing:
                self._fail_queued()
        if to_loop:
            loop_thread = self._loop_thread
            assert loop_thread is not None  # a coroutine call reached it
            loop_thread.inbox.post_first(to_loop)  # a closed inbox fails them

    def _wake_worker(self) -> None:
        """Wake an idle worker for a queued item, or start one."""
        try:
            worker = self._idle.pop()
        except IndexError:
            self._maybe_spawn()
        else:
            try:
                worker.wake.release()
            except RuntimeError:  # a stopping worker, released already
                pass

    def _blocking(self, blocked: bool) -> None:
        """A pool worker starts (True) or stops (False) blocking in ``call.result()``."""
        if threading.current_thread() is (self._loop_thread and self._loop_thread.thread):
            return  # the MTA's loop thread is not a pool worker
        with self._spawn_lock:
            self._blocked += 1 if blocked else -1
        if blocked and self._queue and not self._idle:
            self._maybe_spawn()

    def _maybe_spawn(self) -> None:
        with self._spawn_lock:
            if self._active - self._blocked >= self._max_workers or self._closing:
                return
            self._active += 1
            worker = _Worker()
            self._workers.append(worker)
        thread = threading.Thread(target=self._work, args=(worker,),
                                  name=f"aptio MTA worker {len(self._workers)}", daemon=True)
        worker.thread = thread
        thread.start()

    def _work(self, worker: _Worker) -> None:
        set_thread_apartment(self)
        queue = self._queue
        idle = self._idle
        try:
            while not worker.stop:
                try:
                    item = queue.popleft()
                except IndexError:
                    idle.append(worker)
                    if queue:
                        try:
                            idle.remove(worker)
                        except ValueError:
                            worker.wake.acquire()  # popped by a poster: its release is coming
                        continue
                    worker.wake.acquire()
                    continue
                item._deliver()  # a call fails instead if shutdown began
        finally:
            close_thread_private_loop()
            set_thread_apartment(None)
            with self._spawn_lock:
                self._active -= 1
                last = self._active == 0
            if last and self._closing:
                self._all_exited.set()

    def _fail_queued(self) -> None:
        fail_all(self._queue)

    def _stop_workers(self) -> None:
        with self._spawn_lock:
            workers = list(self._workers)
            none_alive = self._active == 0
        for worker in workers:
            worker.stop = True
            try:
                worker.wake.release()
            except RuntimeError:  # awake already: it sees ``stop`` before sleeping again
                pass
        if none_alive:
            self._all_exited.set()

    async def shutdown(self, timeout: float | None = None) -> None:
        first = self._begin_shutdown(timeout)
        if thread_apartment() is self:
            return  # from an MTA thread: it cannot wait for itself; the runtime joins the pool
        try:
            await asyncio.wait_for(self._all_exited.wait(), timeout)
        except TimeoutError:
            pass
        if first or not self._all_exited.is_set():
            self._fail_overrunning(timeout)
        self._join_exited()
        loop_thread = self._loop_thread
        if loop_thread is not None:
            await loop_thread.stopped.wait()
            loop_thread.join()
        self._owner.forget(self)

    def _begin_shutdown(self, timeout: float | None) -> bool:
        with self._spawn_lock:
            if self._closing:
                return False
            self._closing = True
            loop_thread = self._loop_thread
        self._fail_held_calls()
        self._fail_queued()
        self._stop_workers()
        if loop_thread is not None:
            try:
                loop_thread.loop.call_soon_threadsafe(self._spawn_drain, timeout,
                                                      context=contextvars.Context())
            except RuntimeError:
                pass
        return True

    def _spawn_drain(self, timeout: float | None) -> None:
        assert self._loop_thread is not None
        self._loop_thread.loop.create_task(self._drain_and_stop(timeout))

    async def _drain_and_stop(self, timeout: float | None) -> None:
        try:
            await self._drain(timeout)
        finally:
            assert self._loop_thread is not None
            self._loop_thread.stop()

    def _fail_overrunning(self, timeout: float | None) -> None:
        for call in self._executing_calls():
            call._disconnect(DisconnectedError(
                f"{call._method}() was still running when the MTA shut down (drain timeout "
                f"{timeout} s)"
            ))

    def _join_exited(self) -> None:
        # Once every worker has left its loop, each is only unwinding: join them all. Otherwise
        # (a sync method overran the timeout) join the ones that are gone and leave the rest.
        all_exited = self._all_exited.is_set()
        current = threading.current_thread()
        for worker in list(self._workers):
            thread = worker.thread
            if thread is None or thread is current:
                continue
            if all_exited or not thread.is_alive():
                thread.join()
