"""A relay: how the other processes of a Ray cluster reach a process that Ray cannot call.

Ray calls actors, and nothing else: a driver, or the worker of a plain Ray task, can call an
aptio server's actor, but nobody can call them. Once such a process hands out references to
its own objects (a proxy pickled into a Ray task's arguments or Ray's object store, or passed
on between servers), the holders must reach it: it starts a *relay*, a small Ray actor of its
own (no CPU reserved; Ray ends it with the process that owns it), named after its node id.

To a caller, the relay is the process's actor: the caller's end of a channel makes its
exchanges there (``exchange``, the same bytes as an aptio server's actor takes; see
:mod:`aptio._ray.channel`). The process behind the relay (its *host*, see
:mod:`aptio._ray.relay_host`) keeps a long poll waiting at the relay too (``host``): each one
brings the relay the host's records for its callers and takes back what the callers sent.

Ordering. A caller's batches keep the numbers the caller gave them: the host's end of that
channel puts them in order. The host's own messages to the relay are numbered (Ray does not
keep the order of an async actor's calls), and the relay applies them in that order, so the
records for each caller reach its mailbox in the order the host sent them; the mailbox then
numbers its batches for the caller.

Faults. A caller not heard of for ``EXPIRY_KEEPALIVES`` keepalives is gone: its channel
closes, and the host hears of it (an item with no records). The host closing a channel (its
end failed) closes the caller's mailbox: the caller's next exchange answers GONE. The host's
death ends the relay with it (Ray's ownership), and the callers' exchanges fail then.

Only the host may poll: its messages carry a secret the relay was created with (Ray's token
authentication already keeps out everyone outside the cluster).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Final

from .batches import Item, Record, pack_answer, pack_items, unpack_batch, unpack_items
from .mailbox import GONE, NOTHING, Mailbox

__all__ = ["EXPIRY_KEEPALIVES", "Relay", "relay_name"]

#: A caller not heard of for this many keepalives is gone.
EXPIRY_KEEPALIVES: Final = 4
#: How many closed channels' reasons a relay remembers (for their callers' late exchanges).
_REMEMBERED: Final = 1000


def relay_name(node_id: str) -> str:
    """The Ray actor name of the relay of process ``node_id``."""
    return f"aptio-relay-{node_id}"


class Relay:
    """The relay's actor (see the module docstring; made a Ray actor class by the host)."""

    def __init__(self, host_node: str, secret: str, keepalive: float) -> None:
        self._host_node = host_node
        self._secret = secret
        self._keepalive = keepalive
        self._boxes: dict[str, Mailbox[Record]] = {}
        self._senders: dict[str, str] = {}
        self._heard: dict[str, float] = {}
        self._closed: dict[str, str] = {}
        self._to_host: Mailbox[Item] | None = None
        self._next_in = 0
        self._held: dict[int, list[Item]] = {}

    def _host_box(self) -> Mailbox[Item]:
        box = self._to_host
        if box is None:
            loop = asyncio.get_running_loop()
            box = self._to_host = Mailbox(loop, self._keepalive)
            loop.call_later(self._keepalive, self._expire)
        return box

    async def exchange(self, batch: bytes) -> bytes:
        """An exchange from a caller's end of a channel to the host."""
        try:
            channel_id, sender, node, seq, records = unpack_batch(batch)
        except Exception as error:
            return pack_answer(GONE, NOTHING, f"an unreadable exchange ({error})")
        if node != self._host_node:
            return pack_answer(GONE, NOTHING, f"this relay serves another process ({node} "
                                              "is gone)")
        to_host = self._host_box()
        box = self._boxes.get(channel_id)
        if box is None:
            closed = self._closed.get(channel_id)
            if closed is not None:
                return pack_answer(GONE, NOTHING, closed)
            box = self._boxes[channel_id] = Mailbox(asyncio.get_running_loop(),
                                                    self._keepalive)
            self._senders[channel_id] = sender
        self._heard[channel_id] = time.monotonic()
        if seq != NOTHING:
            to_host.put([(channel_id, sender, seq, records)])
        return pack_answer(*await box.take())

    async def host(self, message: bytes) -> bytes:
        """A long poll from the host: its records for callers in, theirs out."""
        try:
            _, seq, secret, items = unpack_items(message)
        except Exception as error:
            return pack_items(GONE, NOTHING, f"an unreadable message ({error})", [])
        if not hmac.compare_digest(secret.encode(), self._secret.encode()):
            return pack_items(GONE, NOTHING, "only this relay's own process may poll it", [])
        to_host = self._host_box()
        if seq != NOTHING:
            self._held[seq] = items
            while self._next_in in self._held:
                self._apply(self._held.pop(self._next_in))
                self._next_in += 1
        status, number, taken = await to_host.take()
        if isinstance(taken, str):
            return pack_items(status, number, taken, [])
        return pack_items(status, number, "", taken)

    def _apply(self, items: list[Item]) -> None:
        for channel_id, _, _, records in items:
            box = self._boxes.get(channel_id)
            if box is None:
                continue  # closed meanwhile
            if records is None:
                self._close(channel_id, "the process behind the relay closed the channel")
            else:
                box.put(records)

    def _close(self, channel_id: str, reason: str) -> None:
        box = self._boxes.pop(channel_id, None)
        self._senders.pop(channel_id, None)
        self._heard.pop(channel_id, None)
        self._closed[channel_id] = reason
        if len(self._closed) > _REMEMBERED:
            del self._closed[next(iter(self._closed))]
        if box is not None:
            box.close(reason)

    def _expire(self) -> None:
        """Close the channels whose callers fell silent, telling the host (periodically)."""
        limit = self._keepalive * EXPIRY_KEEPALIVES
        now = time.monotonic()
        silent = [channel_id for channel_id, heard in self._heard.items()
                  if now - heard > limit]
        for channel_id in silent:
            sender = self._senders.get(channel_id, "")
            self._close(channel_id, f"not heard from for {limit:g} s")
            if self._to_host is not None:
                self._to_host.put([(channel_id, sender, NOTHING, None)])
        asyncio.get_running_loop().call_later(self._keepalive, self._expire)
