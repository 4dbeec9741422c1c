"""A connection whose loop is gone: a frame sent to it closes it, so the calls waiting on it
fail instead of waiting for a flush that will never run."""

from __future__ import annotations

import asyncio
import threading

import pytest

import aptio
from aptio._remote.connection import Connection

pytestmark = pytest.mark.timeout(30)


def test_sending_on_a_connection_whose_loop_closed_closes_it() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    ended: list[BaseException | None] = []
    other_thread = threading.get_ident() + 1  # the connection's loop thread: not this one
    connection = Connection(loop, other_thread, 1024, "calls to nowhere",
                            lambda payload: None, ended.append)
    connection.send(b"a request")
    assert connection.closed
    assert len(ended) == 1 and isinstance(ended[0], aptio.DisconnectedError)
    assert "event loop is closed" in str(ended[0])
    connection.send(b"another")  # closed already: dropped, and no second report
    assert len(ended) == 1
