"""Each thread's state (``aptio._call.context``): made at a thread's first lookup, gone when the
thread ends, never found by a later thread that reuses the id."""

from __future__ import annotations

import threading

import pytest

import aptio
from aptio._call.context import executing_sync_calls, running_call, thread_state, thread_states


def _fresh_then_dirty(seen: list[int], errors: list[str]) -> None:
    state = thread_state()
    if state.next_mark != 0.0 or state.apartment is not None or any(state.sync_calls):
        errors.append("a new thread found state left by another thread")
    if thread_state() is not state:
        errors.append("a thread's state changed between two lookups")
    state.next_mark = 123.0  # what a later thread with this id must not see
    seen.append(threading.get_ident())


def test_a_threads_state_goes_when_it_ends_and_a_reused_id_starts_fresh() -> None:
    seen: list[int] = []
    errors: list[str] = []
    for _ in range(200):  # one at a time: the OS reuses ids of joined threads
        thread = threading.Thread(target=_fresh_then_dirty, args=(seen, errors))
        thread.start()
        thread.join()
    assert errors == []
    assert len(seen) == 200
    assert not set(seen) & set(thread_states), "ended threads' states were kept"


def test_threads_running_at_once_each_have_their_own_state() -> None:
    barrier = threading.Barrier(8)
    states: list[object] = []

    def body() -> None:
        states.append(thread_state())
        barrier.wait(timeout=30)  # all eight are alive at once

    threads = [threading.Thread(target=body) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len({id(state) for state in states}) == 8


@aptio.coclass(aptio.ThreadingModel.FREE)
class _Reporter:
    def sees_itself_executing(self) -> bool:
        return running_call() in executing_sync_calls()


@pytest.mark.asyncio
async def test_a_sync_call_is_seen_executing_while_it_runs_and_not_after(
        aptio_main: aptio.Apartment) -> None:
    reporter = await aptio.create(_Reporter)
    assert await reporter.sees_itself_executing()
    assert running_call() is None
    assert executing_sync_calls() == []
