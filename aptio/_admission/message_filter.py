"""Message filters (COM: IMessageFilter): an STA's say over which incoming calls it takes, and
its say, as a caller, over retrying calls that other apartments rejected.

APTIO decisions (COM_SPEC F2 leaves them open): the filter covers every call that arrives from
another apartment of the process (same-apartment calls run inline and are not "incoming"); the
MTA cannot have a filter (COM_SPEC F1).
"""

from __future__ import annotations

from .._call.info import CallInfo
from .._values.enums import ServerCall
from .._values.errors import AptioError

__all__ = ["MessageFilter", "filter_verdict", "retry_delay"]


class MessageFilter:
    """Subclass and install with ``apartment.set_message_filter(filter)`` on an STA.

    The defaults accept every call and never retry a rejected one.
    """

    def handle_incoming_call(self, info: CallInfo) -> ServerCall:
        """Decide on a call arriving from another apartment, before it runs (on the STA's
        thread). ``info.call_type`` says whether it belongs to a chain this apartment waits on
        (NESTED), or arrives while it waits on another chain (TOPLEVEL_CALLPENDING)."""
        return ServerCall.ISHANDLED

    def retry_rejected_call(
        self, info: CallInfo, elapsed: float, verdict: ServerCall
    ) -> float | None:
        """As the caller: another apartment answered REJECTED or RETRYLATER ``elapsed`` seconds
        after the first attempt. Return the seconds to wait before retrying, or None (or a
        negative number) to give up with CallRejectedError."""
        return None


def filter_verdict(message_filter: MessageFilter, info: CallInfo) -> ServerCall:
    """Ask the filter; a filter that raises or answers nonsense fails the call, not the
    apartment (the AptioError says which filter and why)."""
    try:
        verdict = message_filter.handle_incoming_call(info)
    except Exception as error:
        raise AptioError(
            f"message filter {message_filter!r} raised {type(error).__name__} in "
            f"handle_incoming_call for {info.method}(); the call was not run. Fix the filter."
        ) from error
    if not isinstance(verdict, ServerCall):
        raise AptioError(
            f"message filter {message_filter!r} returned {verdict!r} from "
            f"handle_incoming_call for {info.method}(); it must return an aptio.ServerCall"
        )
    return verdict


def retry_delay(
    message_filter: MessageFilter | None, info: CallInfo, elapsed: float, verdict: ServerCall
) -> float | None:
    """The caller's decision: seconds to wait before the next attempt, or None to give up."""
    if message_filter is None:
        return None
    delay = message_filter.retry_rejected_call(info, elapsed, verdict)
    if delay is None:
        return None
    if not isinstance(delay, (int, float)) or isinstance(delay, bool):
        raise AptioError(
            f"message filter {message_filter!r} returned {delay!r} from retry_rejected_call; "
            "it must return seconds (a number) or None"
        )
    return None if delay < 0 else float(delay)
