"""Whether a process still runs, read from Linux ``/proc`` (for tests that wait for one to end)."""

from __future__ import annotations


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
