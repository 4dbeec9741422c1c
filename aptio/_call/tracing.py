"""The call recorder as the call path sees it: the hook through which a recording
(:mod:`aptio._trace`) hears of every call sent in this process, and of the calls that cross to
and from other processes.

While a recording runs, ``process_state.tracer`` holds it and ``process_state.context_marked``
is true: the send path reads the tracer only inside its ``context_marked`` branch, so with no
recording the call path pays nothing for it (see :func:`aptio._call.context.set_tracer`).
"""

from __future__ import annotations

from typing import Any, Protocol

from .contract import CallRecord

__all__ = ["CallTracer"]


class CallTracer(Protocol):
    """What the call path tells a recording. Every method runs on the thread named, before
    the call can run, so the recording sees each call from its start."""

    def sent(self, call: CallRecord[Any]) -> None:
        """``call`` was made by ``send`` (on the caller's thread, before it is routed)."""

    def arrived(self, call: CallRecord[Any], node: str, wire_id: int) -> None:
        """``call`` arrived from the process ``node`` as its call ``wire_id`` (on the thread
        that read the request, before it is delivered)."""

    def left(self, call: CallRecord[Any], node: str, wire_id: int) -> None:
        """``call`` goes to another process as this process's (``node``) call ``wire_id``
        (on the sending thread, before the request leaves)."""
