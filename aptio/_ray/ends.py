"""The two ends of a channel (see :mod:`aptio._ray.channel`): the caller end, which makes the
Ray calls, and the actor end, inside an aptio server's actor, which answers them."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from .._values.errors import DisconnectedError
from .batches import unpack_answer
from .channel import Channel, ChannelHost, Record
from .mailbox import GONE, NOTHING, OK, Answer, Mailbox

__all__ = ["ActorEnd", "CallerEnd"]


class CallerEnd(Channel):
    """The end that calls the actor: each batch it sends is an exchange, and it keeps one
    exchange waiting for the actor's records (see the module docstring)."""

    def __init__(self, host: ChannelHost, channel_id: str, peer_node: str, label: str,
                 exchange: Callable[[str, int, list[Record]], Any],
                 run_soon: Callable[[Callable[[], None]], None]) -> None:
        super().__init__(host, channel_id, peer_node, 1, label)
        self._exchange = exchange  # (channel id, seq, records) -> an ObjectRef
        self._run_soon = run_soon  # runs a function on a thread of ours, soon
        self._seq_out = itertools.count()
        self._outstanding = 0
        #: When an exchange last came back (the actor releases a waiting one every keepalive).
        self.last_heard = time.monotonic()

    def start(self) -> None:
        """Put the first exchange in wait at the actor."""
        with self._lock:
            self._outstanding += 1
        self._submit(NOTHING, [])

    def send(self, conn_id: int, data: bytes | None) -> None:
        with self._lock:
            if self.error is not None:
                return
            seq = next(self._seq_out)
            self._outstanding += 1
        self._submit(seq, [(conn_id, data)])

    def _submit(self, seq: int, records: list[Record]) -> None:
        try:
            ref = self._exchange(self.channel_id, seq, records)
        except Exception as error:  # Ray is shut down, or the handle is unusable
            self.fail(DisconnectedError(f"Ray refused the call ({error})"))
            return
        ref._on_completed(self._completed)

    def _completed(self, result: Any) -> None:
        """An exchange came back (on a thread of Ray's)."""
        self.last_heard = time.monotonic()
        with self._lock:
            self._outstanding -= 1
            renew = self._outstanding == 0 and self.error is None
            if renew:
                self._outstanding += 1
        if isinstance(result, BaseException):
            self.fail(DisconnectedError(_describe_ray_error(result)))
            return
        try:
            seq, payload = unpack_answer(result, OK)
        except Exception as error:  # not an answer of ours: nothing more can be trusted
            self.fail(DisconnectedError(f"{self.label}: an unreadable answer ({error})"))
            return
        if isinstance(payload, str):
            self.fail(DisconnectedError(payload))
            return
        self.received(seq, payload)
        if renew:  # never from Ray's own callback thread: it may not submit from there
            self._run_soon(lambda: self._submit(NOTHING, []))


def _describe_ray_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"its Ray actor is unreachable ({type(error).__name__}: {first[:300]})"


class ActorEnd(Channel):
    """The actor's end: batches arrive as exchanges (on the actor's event loop), and records
    for the caller wait in a mailbox until an exchange takes them."""

    def __init__(self, host: ChannelHost, channel_id: str, peer_node: str, label: str,
                 loop: asyncio.AbstractEventLoop, keepalive: float) -> None:
        super().__init__(host, channel_id, peer_node, 2, label)
        self._box: Mailbox[Record] = Mailbox(loop, keepalive)
        self.last_heard = time.monotonic()

    def send(self, conn_id: int, data: bytes | None) -> None:
        if self.error is None:
            self._box.put([(conn_id, data)])

    async def exchange(self, seq: int, records: list[Record]) -> Answer[Record]:
        """One exchange from the caller end (on the actor's loop)."""
        self.last_heard = time.monotonic()
        if seq != NOTHING:
            self.received(seq, records)
        if self.error is not None:
            return GONE, NOTHING, f"{self.label}: {self.error}"
        return await self._box.take()

    def fail(self, error: BaseException) -> None:
        super().fail(error)
        self._box.close(f"{self.label}: {error}")
