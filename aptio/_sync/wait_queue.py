"""The wait queue under every primitive: parked coroutines and threads, and the claim protocol.

Every aptio primitive is a policy (what "free" means, who is served next, what passing something
on means) over one :class:`WaitQueue`.  The queue owns the waiters, the mutex that guards them,
the protocol by which a waiter and whoever wakes it agree on what was handed over, and parking
itself, for a coroutine (with a timeout and cancellation) and for a thread (with a timeout).

A :class:`Waiter` is one parked coroutine (a *loop waiter*, resolved through an
``asyncio.Future`` of its own event loop) or one parked thread (a *thread waiter*, blocked on a
``threading.Lock`` it acquired once).  Waking does not care which: on the waiter's loop thread
the future is resolved at once; from any other thread ``loop.call_soon_threadsafe`` resolves it
(this writes the loop's self-pipe, so an idle loop wakes at once, not at its next timer); a
thread waiter's lock is released.

The claim protocol.  A waiter's ``state`` moves only along these edges::

    PENDING --waker--> HANDED --waiter--> CLAIMED      (the waiter has what it was handed)
       |                  `----waker----> ABANDONED    (undeliverable: the waker took it back)
       `--waiter, or waker skipping it--> CANCELLED    (it left empty-handed)

Invariants, each kept by the code that carries its number below:

1. ``state`` is read-modify-written only while ``mutex`` is held, and the mutex guards O(1)
   bookkeeping only: nobody blocks, awaits or wakes anyone while holding it.  The one thing that
   can run on a thread already inside a critical section, a garbage collection destroying a task
   parked here, never blocks on the mutex.
2. A queued waiter is in ``waiters`` exactly while it is PENDING.
3. Whatever a waker hands over (a permit, the lock, a notification, the event, a wake-up) has
   exactly one owner.  The waiter (giving up or settling) and the waker (whose wake-up could not
   be delivered because the waiter's loop is closed) both claim it by a test-and-set out of
   HANDED under the mutex, so exactly one of them wins: a waiter that wins while giving up
   passes it on; a waker that wins hands it to the next waiter.  Neither loses nor duplicates it.
4. A PENDING loop waiter whose future is already done is leaving (its task was cancelled or its
   timeout fired: nothing else resolves a PENDING waiter's future) and will take nothing: a
   waker may skip it, marking it CANCELLED, which is what the waiter would have done.
5. ``waiting_queues()`` holds every live queue that has a waiter, parked or blocked natively,
   and no other: a queue joins when its first waiter arrives and leaves with its last (under its
   mutex), so the uncontended paths never touch it.  It holds them weakly: listing a queue
   keeps neither it nor the tasks parked in it alive.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from asyncio.events import _get_running_loop
from collections.abc import Callable
from typing import Any, Final, Literal, TypeAlias

from .._threads.role import thread_role
from .._values.errors import WouldBlock, WrongApartmentError
from .park_hook import park_hook

__all__ = ["WouldBlock"]

PENDING: Final = 0  # queued, nothing handed yet
HANDED: Final = 1  # popped by a waker: something now belongs to the waiter, unclaimed
CLAIMED: Final = 2  # the waiter took what it was handed (to keep it or to pass it on)
CANCELLED: Final = 3  # left empty-handed: timed out, cancelled, or skipped as leaving
ABANDONED: Final = 4  # handed but undeliverable (its loop is closed): the waker took it back

#: Who holds or waits on a primitive: the coroutine's Task, or the plain thread.
Holder: TypeAlias = "asyncio.Task[Any] | threading.Thread"
OwnerKind: TypeAlias = Literal["task", "thread"]


# Invariant 5: weak references to the queues that have waiters (see waiting_queues()).  set.add
# and set.discard are atomic, so this needs no lock of its own.
_waiting: set[weakref.ref[WaitQueue]] = set()


class Waiter:
    """One parked coroutine (``fut`` set) or thread (``tlock`` set), and who it is."""

    __slots__ = ("fut", "loop", "state", "tlock", "who")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        fut: asyncio.Future[None] | None,
        tlock: threading.Lock | None,
        who: Holder | None,
    ) -> None:
        self.state: int = PENDING
        self.loop = loop
        self.fut = fut
        self.tlock = tlock
        self.who = who

    def wake(self) -> bool:
        """Deliver the wake-up; False when it never can be (the waiter's loop is closed).

        Called after the state moved to HANDED, never while holding a queue's mutex.
        """
        tlock = self.tlock
        if tlock is not None:
            tlock.release()
            return True
        loop = self.loop
        fut = self.fut
        assert loop is not None
        assert fut is not None
        if _get_running_loop() is loop:
            if not fut.done():
                fut.set_result(None)
            return True
        try:
            loop.call_soon_threadsafe(_resolve, fut)
        except RuntimeError:  # the loop is closed: nobody will ever run this waiter
            return False
        return True


def loop_waiter() -> Waiter:
    """A waiter for the running coroutine."""
    loop = asyncio.get_running_loop()
    return Waiter(loop, loop.create_future(), None, asyncio.current_task(loop))


def thread_waiter(thread: threading.Thread) -> Waiter:
    """A waiter for the calling thread, ``thread`` (from :func:`blocking_thread`)."""
    tlock = threading.Lock()
    tlock.acquire()
    return Waiter(None, None, tlock, thread)


def current_holder() -> Holder:
    """The running Task, else the calling thread (for calls that may come from either)."""
    loop = _get_running_loop()
    task = None if loop is None else asyncio.current_task(loop)
    return threading.current_thread() if task is None else task


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class WaitQueue:
    """The waiters of one primitive, the mutex that guards them, and the claim protocol.

    Methods marked "mutex held" are the primitive's to call inside ``with queue.mutex:``, next
    to its own bookkeeping; the others take the mutex themselves.
    """

    __slots__ = ("__weakref__", "_ref", "blocked", "mutex", "primitive", "waiters")

    def __init__(self, primitive: object) -> None:
        self.mutex = threading.Lock()  # invariant 1
        #: Parked waiters in FIFO order: exactly the PENDING ones (invariant 2).  A primitive
        #: may read it without the mutex as a hint, and decides under the mutex.
        self.waiters: collections.deque[Waiter] = collections.deque()
        #: Threads blocked natively on the primitive's own lock (the unfair Lock's threads):
        #: not parked here, but counted and listed with the waiters.
        self.blocked: list[Holder] = []
        self.primitive = weakref.ref(primitive)
        self._ref: weakref.ref[WaitQueue] | None = None  # this queue's entry in _waiting

    def __len__(self) -> int:
        return len(self.waiters) + len(self.blocked)

    # -- the queue (mutex held) ---------------------------------------------------------------

    def append(self, w: Waiter, front: bool = False) -> None:
        """Queue ``w`` (PENDING: invariant 2) last, or first with ``front`` (mutex held)."""
        if not self.waiters and not self.blocked:
            self._note_waiting()
        if front:
            self.waiters.appendleft(w)
        else:
            self.waiters.append(w)

    def pop_live(self) -> Waiter | None:
        """The oldest waiter that is not leaving, now HANDED; None if there is none (mutex
        held).  What the caller hands over belongs to it from this moment (invariant 3)."""
        waiters = self.waiters
        if not waiters:
            return None
        live = None
        while waiters:
            w = waiters.popleft()
            fut = w.fut
            if fut is not None and fut.done():  # invariant 4: it is leaving, skip it
                w.state = CANCELLED
                continue
            w.state = HANDED  # out of the queue, out of PENDING: invariant 2
            live = w
            break
        if not waiters and not self.blocked:
            _waiting.discard(self._ref)  # invariant 5
        return live

    def drain(self) -> list[Waiter]:
        """Every waiter, each now HANDED, in FIFO order; the queue is left empty (mutex held)."""
        woken = list(self.waiters)
        self.waiters.clear()  # invariant 2
        for w in woken:
            w.state = HANDED
        self._note_empty()
        return woken

    def _note_waiting(self) -> None:
        ref = self._ref
        if ref is None:  # the first wait ever: the entry is made once, dropped when we die
            ref = self._ref = weakref.ref(self, _waiting.discard)
        _waiting.add(ref)  # invariant 5

    def _note_empty(self) -> None:
        if not self.waiters and not self.blocked:
            _waiting.discard(self._ref)  # invariant 5 (a None _ref: never listed, a no-op)

    # -- threads blocked natively -------------------------------------------------------------

    def enter_blocked(self, who: Holder) -> None:
        """``who`` is about to block natively on the primitive's own lock."""
        with self.mutex:
            if not self.waiters and not self.blocked:
                self._note_waiting()
            self.blocked.append(who)

    def exit_blocked(self, who: Holder) -> None:
        """``who`` stopped blocking (it got the lock, timed out or was interrupted)."""
        with self.mutex:
            self.blocked.remove(who)
            self._note_empty()

    # -- the claim protocol -------------------------------------------------------------------

    def leave(self, w: Waiter) -> bool:
        """The waiter's side: ``w`` stops waiting; True if it now owns what it was handed.

        Out of the queue if still in it; HANDED becomes CLAIMED, so no waker can take it back
        afterwards (invariant 3), whether ``w`` keeps it or passes it on.
        """
        with self.mutex:
            state = w.state
            if state == PENDING:
                self.waiters.remove(w)  # invariant 2
                self._note_empty()
                w.state = CANCELLED
                return False
            if state == HANDED:
                w.state = CLAIMED
                return True
        return False  # CANCELLED (skipped as leaving) or ABANDONED (its loop closed)

    def _leave_and_pass_on(self, w: Waiter, pass_on: Callable[[], None] | None) -> None:
        if self.leave(w) and pass_on is not None:
            pass_on()

    def _leave_destroyed(self, w: Waiter, pass_on: Callable[[], None] | None) -> None:
        """:meth:`_leave_and_pass_on` for a task being destroyed unfinished (GeneratorExit: its
        loop closed under it), without ever blocking on the mutex.

        Such a task is destroyed by a garbage collection, which runs wherever an allocation
        (or, on 3.12+, the next check of the interpreter's eval breaker) happens to trigger it:
        possibly on a thread inside a critical section of this very queue.  Blocking on the
        mutex would deadlock that thread (invariant 1), so when the mutex is busy a helper
        thread leaves once it is free.
        """
        if self.mutex.acquire(False):
            # Free: this thread is not inside a critical section (it is busy collecting), so
            # taking the mutex again can only wait for other threads' O(1) bookkeeping.
            self.mutex.release()
            self._leave_and_pass_on(w, pass_on)
            return
        try:
            threading.Thread(
                target=self._leave_and_pass_on,
                args=(w, pass_on),
                name="aptio-wait-queue-leave",
                daemon=True,
            ).start()
        except RuntimeError:  # no new threads at interpreter shutdown: nobody is left to serve
            pass

    def deliver(self, w: Waiter) -> bool:
        """The waker's side, after :meth:`pop_live` (mutex not held): wake ``w``.

        False when the wake-up could not be delivered (``w``'s loop is closed) and the waker
        took back what it handed: it owns it again and must serve the next waiter.  True when
        delivered, or when ``w`` claimed it first (invariant 3).
        """
        if w.wake():
            return True
        with self.mutex:
            if w.state == HANDED:
                w.state = ABANDONED
                return False
        return True

    # -- parking ------------------------------------------------------------------------------

    async def park(
        self, w: Waiter, timeout: float | None, pass_on: Callable[[], None] | None
    ) -> bool:
        """Park the running coroutine as the loop waiter ``w`` (already queued) until it is
        woken or ``timeout`` passes; True if it was handed something.

        A timeout resolves the future rather than cancelling the task, so the claim in
        :meth:`leave` alone decides whether the waiter was handed something just then (it keeps
        it) or not (it leaves).  Leaving by an exception (CancelledError, or GeneratorExit from
        a task destroyed with its closed loop), a waiter that was handed something just then
        passes it on with ``pass_on`` (invariant 3) and re-raises.
        """
        fut = w.fut
        assert fut is not None
        assert w.loop is not None
        watch = park_hook.on_park  # a call recording notes the wait
        ended = watch(self.primitive(), False) if watch is not None else None
        handle = None if timeout is None else w.loop.call_later(max(timeout, 0.0), _resolve, fut)
        try:
            await fut
        except GeneratorExit:
            self._leave_destroyed(w, pass_on)
            raise
        except BaseException:
            self._leave_and_pass_on(w, pass_on)
            # Gone for good: the frames the error's traceback keeps (this one, the
            # primitive's) hold ``w``, which must not hold its Task (whose context holds the
            # running call, which holds the error: a cycle only a garbage collection frees).
            w.who = None
            raise
        finally:
            if handle is not None:
                handle.cancel()
            if ended is not None:
                ended()
        return self.leave(w)

    def park_thread(
        self, w: Waiter, timeout: float | None, pass_on: Callable[[], None] | None
    ) -> bool:
        """Block the calling thread as the thread waiter ``w`` (already queued) until it is
        woken or ``timeout`` passes; True if it was handed something.  Interrupted while
        blocked (KeyboardInterrupt), it passes on what it was handed, as :meth:`park` does."""
        tlock = w.tlock
        assert tlock is not None
        watch = park_hook.on_park if timeout is None or timeout > 0 else None
        ended = watch(self.primitive(), True) if watch is not None else None
        try:
            if timeout is None:
                tlock.acquire()
            elif timeout > 0:
                tlock.acquire(True, timeout)
        except BaseException:
            self._leave_and_pass_on(w, pass_on)
            raise
        finally:
            if ended is not None:
                ended()
        return self.leave(w)

    # -- diagnostics --------------------------------------------------------------------------

    def who_waits(self) -> list[Holder | None]:
        """The Tasks and threads waiting now, oldest parked first, then the blocked ones."""
        with self.mutex:
            return [w.who for w in self.waiters] + self.blocked


def waiting_queues() -> list[WaitQueue]:
    """A snapshot of the queues that have waiters (invariant 5)."""
    return [queue for ref in _waiting.copy() if (queue := ref()) is not None]


def blocking_thread(primitive: object, method: str, instead: str) -> threading.Thread:
    """The calling thread, which may block; WrongApartmentError on an STA thread, where a
    blocking wait would stall every object of the apartment."""
    thread = thread_role.blocking_thread
    if thread is None:
        raise WrongApartmentError(
            f"{type(primitive).__name__}.{method}() would block an STA thread and stall every "
            f"object in its apartment; use {instead} instead"
        )
    return thread


def check_timeout(timeout: float | None) -> None:
    """Validate a blocking ``timeout`` the way ``threading.Lock.acquire`` does."""
    if timeout is None:
        return
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number or None")
    if timeout > threading.TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")


def type_name(obj: object) -> str:
    """``module.QualName`` of ``obj``'s type, for reprs."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
