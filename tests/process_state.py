"""Whether a process still runs, read from Linux ``/proc`` (for tests that wait for one to end)."""

from __future__ import annotations

import asyncio

#: How often :func:`ended_within` looks.
POLL_INTERVAL = 0.01


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (exited, waiting to be reaped).

    The process can vanish between opening its ``stat`` file and reading it: the read then
    fails with ``ProcessLookupError`` rather than the open with ``FileNotFoundError``; both
    mean it has ended.
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


async def ended_within(pid: int, seconds: float) -> bool:
    """Wait, polling without blocking the loop, until ``pid`` no longer runs, for at most
    ``seconds``; True if it ended."""
    for _ in range(round(seconds / POLL_INTERVAL)):
        if not is_running(pid):
            return True
        await asyncio.sleep(POLL_INTERVAL)
    return not is_running(pid)
