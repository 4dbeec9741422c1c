"""A relay's host: the process behind a relay (see :mod:`aptio._ray.relay`), and the ends of
the channels its callers opened through it.

The host keeps one ``host`` call waiting at its relay at all times (renewed as each comes
back, at the latest every keepalive), which brings back the callers' batches; every record
the host sends a caller leaves in a ``host`` call of its own, batched per turn of the node's
I/O loop and numbered, so the relay applies them in order. Each caller's channel is a
:class:`RelayedEnd` here: the host plays the actor's part on it (it accepts the caller's
connections and opens its own with even ids), as an aptio server's actor does.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from .._values.errors import DisconnectedError
from .batches import Item, Record, pack_items, unpack_items
from .channel import Channel, ChannelHost
from .mailbox import NOTHING, OK

__all__ = ["RelayHost", "RelayedEnd"]


class RelayedEnd(Channel):
    """This process's end of a channel a caller opened through its relay."""

    def __init__(self, host: ChannelHost, relay: RelayHost, channel_id: str, peer_node: str,
                 label: str) -> None:
        super().__init__(host, channel_id, peer_node, 2, label)
        self._relay = relay

    def send(self, conn_id: int, data: bytes | None) -> None:
        if self.error is None:
            self._relay.push(self.channel_id, [(conn_id, data)])

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self._relay.push(self.channel_id, None)  # the caller's next exchange: GONE
        super().fail(error)


class RelayHost:
    """The host's side of its relay. ``on_items`` gets the callers' batches (on a thread of
    Ray's); ``on_fail`` hears once that the relay is gone."""

    def __init__(self, handle: Any, secret: str, run_soon: Callable[[Callable[[], None]], None],
                 on_items: Callable[[list[Item]], None],
                 on_fail: Callable[[BaseException], None]) -> None:
        self.handle = handle
        self._secret = secret
        self._run_soon = run_soon  # on the node's I/O loop: Ray's callback threads never submit
        self._on_items = on_items
        self._on_fail = on_fail
        self._lock = threading.Lock()
        self._outbox: list[Item] = []
        self._flush_due = False
        self._seq_out = itertools.count()
        self._outstanding = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        """Put the first poll in wait at the relay."""
        with self._lock:
            self._outstanding += 1
        self._run_soon(lambda: self._submit(NOTHING, []))

    def push(self, channel_id: str, records: list[Record] | None) -> None:
        """Records for a caller (None: its channel closes); any thread."""
        with self._lock:
            if self.error is not None:
                return
            outbox = self._outbox
            if outbox and records is not None and outbox[-1][0] == channel_id \
                    and outbox[-1][3] is not None:
                outbox[-1][3].extend(records)  # the same channel's: one item
            else:
                outbox.append((channel_id, "", NOTHING, list(records) if records else records))
            if self._flush_due:
                return
            self._flush_due = True
        self._run_soon(self._flush)

    def _flush(self) -> None:
        with self._lock:
            self._flush_due = False
            items, self._outbox = self._outbox, []
            if not items or self.error is not None:
                return
            seq = next(self._seq_out)
            self._outstanding += 1
        self._submit(seq, items)

    def _submit(self, seq: int, items: list[Item]) -> None:
        try:
            ref = self.handle.host.remote(pack_items(OK, seq, self._secret, items))
        except Exception as error:  # Ray is shut down here
            self.fail(DisconnectedError(f"Ray refused the call ({error})"))
            return
        ref._on_completed(self._completed)

    def _completed(self, result: Any) -> None:
        """A poll came back (on a thread of Ray's)."""
        with self._lock:
            self._outstanding -= 1
            renew = self._outstanding == 0 and self.error is None
            if renew:
                self._outstanding += 1
        if isinstance(result, BaseException):
            self.fail(DisconnectedError(f"this process's relay is gone ({type(result).__name__}"
                                        f": {str(result).strip()[:200]})"))
            return
        try:
            status, _, reason, items = unpack_items(result)
        except Exception as error:
            self.fail(DisconnectedError(f"an unreadable answer from the relay ({error})"))
            return
        if status != OK:
            self.fail(DisconnectedError(f"this process's relay refused it: {reason}"))
            return
        if items:
            self._on_items(items)
        if renew:
            self._run_soon(lambda: self._submit(NOTHING, []))

    def fail(self, error: BaseException) -> None:
        """The relay is gone (or this process closes): every channel through it fails."""
        with self._lock:
            if self.error is not None:
                return
            self.error = error
            self._outbox = []
        self._on_fail(error)
