"""A TCP chat server: the room lives in its own STA, every session calls it through a proxy.

The room's state (members, history) is touched only on the room's thread, so it needs no lock,
and the room calls each session back through a proxy to deliver messages. The network side
runs on the main STA's event loop (``asyncio.start_server``), one ``Session`` object per
connection. Protocol: one line per message, UTF-8; the first line is the nickname; ``/quit``
leaves.

Run it: python examples/chat_server.py
  starts the server on 127.0.0.1 (a free port), connects three real clients, lets them talk,
  prints the transcript and exits.
Or:     python examples/chat_server.py --serve [--port N]
  serves until stdin closes (tests/test_examples_more.py connects its own clients this way).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from typing import Any

import aptio


@aptio.coclass  # APARTMENT: lives in the "room" STA that creates it
class Room:
    def __init__(self) -> None:
        self.members: dict[str, Any] = {}  # nickname -> Session proxy
        self.history: list[str] = []

    async def join(self, name: str, session: Any) -> str:
        if name in self.members:
            return f"* the nickname {name} is taken"
        self.members[name] = session
        await self._broadcast(f"* {name} joined ({len(self.members)} here)")
        return "ok"

    async def say(self, name: str, text: str) -> None:
        await self._broadcast(f"<{name}> {text}")

    async def leave(self, name: str) -> None:
        if self.members.pop(name, None) is not None:
            await self._broadcast(f"* {name} left")

    async def _broadcast(self, line: str) -> None:
        self.history.append(line)
        # Deliveries go out in parallel, each a call into the session's apartment; a session
        # whose connection failed is dropped rather than stopping the others.
        sessions = list(self.members.items())
        results = await asyncio.gather(*(session.deliver(line) for _, session in sessions),
                                       return_exceptions=True)
        for (name, _), result in zip(sessions, results, strict=True):
            if isinstance(result, Exception):
                self.members.pop(name, None)

    def thread(self) -> str:
        return threading.current_thread().name

    def transcript(self) -> list[str]:
        return list(self.history)


@aptio.coclass  # lives in the main STA, next to its connection
class Session:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def deliver(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()


async def handle_connection(room: Any, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
    session = await aptio.create(Session, writer)  # a proxy the room can call back through
    name = ""
    try:
        name = (await reader.readline()).decode().strip()
        answer = await room.join(name, session)  # the session crosses as a proxy
        if answer != "ok":
            writer.write(answer.encode() + b"\n")
            name = ""
            return
        while line := (await reader.readline()).decode():
            text = line.strip()
            if text == "/quit":
                break
            if text:
                await room.say(name, text)
    finally:
        if name:
            await room.leave(name)
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def start(port: int = 0) -> tuple[asyncio.Server, Any]:
    """Start the room STA and the TCP server; returns the server and the room's proxy."""
    room_sta = await aptio.start_sta("room")
    room = await room_sta.create(Room)
    server = await asyncio.start_server(
        lambda reader, writer: handle_connection(room, reader, writer), "127.0.0.1", port)
    return server, room


class Client:
    """A real TCP client: it connects, sends lines and collects what the server sends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received: list[str] = []
        self._new = asyncio.Condition()

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(self.name.encode() + b"\n")
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self.reader.readline():
            async with self._new:
                self.received.append(line.decode().rstrip("\n"))
                self._new.notify_all()

    async def wait_for(self, line: str) -> None:
        async with self._new:
            await asyncio.wait_for(self._new.wait_for(lambda: line in self.received), 10)

    async def send(self, text: str) -> None:
        self.writer.write(text.encode() + b"\n")
        await self.writer.drain()

    async def close(self) -> None:
        await self.send("/quit")
        await self._reading  # the server closes the connection after /quit
        self.writer.close()
        await self.writer.wait_closed()


async def demo() -> None:
    server, room = await start()
    port = server.sockets[0].getsockname()[1]
    print(f"chat server on 127.0.0.1:{port}; the room lives on thread {await room.thread()!r}")
    async with server:
        clients = [Client(name) for name in ("ada", "grace", "linus")]
        for client in clients:  # one at a time, so the join order is fixed
            await client.connect(port)
            await clients[0].wait_for(f"* {client.name} joined ({clients.index(client) + 1} here)")
        script = [("ada", "hello, everyone"), ("grace", "hi ada"), ("linus", "hello from linus")]
        for name, text in script:
            sender = next(c for c in clients if c.name == name)
            await sender.send(text)
            for client in clients:
                await client.wait_for(f"<{name}> {text}")
        for client in reversed(clients):
            await client.close()
            for other in clients[: clients.index(client)]:
                await other.wait_for(f"* {client.name} left")
        print("transcript kept by the room:")
        for line in await room.transcript():
            print("  " + line)
        ada = clients[0].received
        print(f"ada received {len(ada)} lines; the last: {ada[-1]!r}")


async def serve(port: int) -> None:
    server, room = await start(port)
    print(f"listening 127.0.0.1 {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        # Serve until stdin closes: read it on a plain thread, off the event loop.
        await asyncio.to_thread(sys.stdin.read)
    print("stopped; transcript:", *await room.transcript(), sep="\n  ", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="aptio chat server example")
    parser.add_argument("--serve", action="store_true", help="serve until stdin closes")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    aptio.run(serve(args.port) if args.serve else demo())
