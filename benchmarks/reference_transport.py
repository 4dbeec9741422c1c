"""The naive transport, kept for comparison: one ``run_coroutine_threadsafe`` (one Task, one
self-pipe write) per call, the method run inside that Task. aptio's own transport batches
calls in an inbox and wakes the target once per batch; the bench measures both in one run.

``use_reference_transport(sta)`` plugs it into an STA through the seam every STA posts
through (``_post_inbox``), so the rest of the call path is aptio's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aptio._apartments.sta import STA
from aptio._call.context import current_call_var, neutral_override
from aptio._call.contract import PENDING, RUNNING, CallRecord
from aptio._threads.inbox import Inbox, Item


class ReferenceInbox(Inbox):
    """Posts each call as its own ``run_coroutine_threadsafe`` Task."""

    __slots__ = ()

    def post(self, item: Item) -> None:
        if not isinstance(item, CallRecord):
            super().post(item)  # replies and releases take aptio's own path
            return
        coro = _run_in_task(item)
        try:
            asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            item._fail_undelivered()


async def _run_in_task(call: CallRecord[Any]) -> None:
    """The call, run inside the Task that ``run_coroutine_threadsafe`` made for it."""
    if call._state != PENDING:
        return
    apartment = call._apartment
    if apartment._closing:
        call._fail_undelivered()
        return
    if call._cancelled:
        call._finish(None, asyncio.CancelledError())
        return
    call._state = RUNNING
    task = asyncio.current_task()
    assert task is not None
    call._task = task
    call._is_async = True  # it runs inside a Task, registered in ``_running``
    apartment._running.add(call)
    # This Task's context was copied from the poster's thread: replace what must not leak.
    current_call_var.set(call)
    neutral_override.set(None)
    try:
        value = call._fn(*call._args, **call._kwargs)  # type: ignore[misc, arg-type]
        if asyncio.iscoroutine(value):
            value = await value
    except BaseException as error:
        call._finish(None, error)
    else:
        call._finish(apartment._marshal_result(value), None)


def use_reference_transport(sta: Any) -> None:
    """Make calls posted to ``sta`` (an aptio STA) take the naive transport."""
    assert isinstance(sta, STA), sta
    inbox = sta._inbox
    assert inbox is not None
    sta._post_inbox = ReferenceInbox(inbox.loop, inbox.thread_id)
