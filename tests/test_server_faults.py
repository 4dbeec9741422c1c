"""Servers at their edges: killed processes, rogue and unauthenticated peers, protocol
versions, size limits, classes a server cannot import, servers that fail to start. Each fails
with a specific error in bounded time; nothing hangs; nothing is unpickled from a stranger."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import aptio
from aptio._wire import handshake
from aptio._wire.framing import frame
from aptio._wire.messages import PROTOCOL_VERSION

from remote_classes import Client, FreeService, Service, rogue_payload

pytestmark = pytest.mark.timeout(120)

#: A bound for "in bounded time", far above what any of these takes (a hang is the failure).
BOUND = 30.0


def _reaped(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


@pytest.mark.asyncio
async def test_a_server_killed_mid_call_fails_every_pending_and_later_call(
    main: aptio.Apartment,
) -> None:
    server = await aptio.start_server("doomed")
    service = await server.create(Service)
    free = await server.create(FreeService)
    pending = service.hang("forever")
    await service.wait_started()
    also = free.hang("forever too")
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    for call in (pending, also):
        with pytest.raises(aptio.DisconnectedError, match="server 'doomed'"):
            async with asyncio.timeout(BOUND):
                await call
    with pytest.raises(aptio.DisconnectedError, match="server 'doomed'"):
        await service.inc()
    # is_alive turns False once this process hears of the death (its control connection
    # closing, or the exit reaped): a moment after the calls' own connections fail.
    async with asyncio.timeout(BOUND):
        while server.is_alive:
            await asyncio.sleep(0.01)
    local = await aptio.create(Client)  # the runtime keeps serving everything else
    assert (await local.where())[0] == os.getpid()
    await server.shutdown()
    assert _reaped(server.pid)


@pytest.mark.asyncio
async def test_a_server_killed_between_calls_fails_the_next(main: aptio.Apartment) -> None:
    server = await aptio.start_server("killed")
    service = await server.create(Service)
    assert await service.inc() == 1
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    with pytest.raises(aptio.DisconnectedError, match="server 'killed'"):
        async with asyncio.timeout(BOUND):
            while True:  # until this process has seen the death (its reaper, or the EOF)
                await service.inc()
    with pytest.raises(aptio.DisconnectedError):
        await server.start_sta()


_CLIENT = textwrap.dedent("""
    import asyncio, json, sys
    import aptio
    from remote_classes import Service

    async def main():
        data = json.loads(sys.stdin.readline())
        credentials = aptio.ServerCredentials(data["name"], data["address"], data["node"],
                                              bytes.fromhex(data["key"]))
        server = await aptio.connect_server(credentials)
        kept = [await server.create(Service) for _ in range(3)]
        hanging = kept[0].hang("client")
        await kept[0].wait_started()
        print("ready", flush=True)
        await asyncio.sleep(3600)

    aptio.run(main)
""")


@pytest.mark.asyncio
async def test_a_client_killed_mid_call_releases_its_objects(main: aptio.Apartment) -> None:
    async with await aptio.start_server("shared") as server:
        keeper = await server.create(Service)
        await keeper.collect_garbage(False)  # its release must need no collection
        base = await keeper.live_count()
        credentials = server.credentials()
        assert "key hidden" in repr(credentials) and credentials.key.hex() not in repr(credentials)
        tests = str(Path(__file__).parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests, *sys.path]))
        child = subprocess.Popen([sys.executable, "-c", _CLIENT], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, env=env)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps({"name": credentials.name, "address": credentials.address,
                                      "node": credentials.node,
                                      "key": credentials.key.hex()}).encode() + b"\n")
        child.stdin.flush()
        line = await asyncio.to_thread(child.stdout.readline)
        assert line == b"ready\n"
        assert await keeper.live_count() == base + 3
        child.kill()
        await asyncio.to_thread(child.wait)
        child.stdin.close()
        child.stdout.close()
        async with asyncio.timeout(BOUND):
            while await keeper.live_count() != base:  # released as its connections closed
                await server.ping()
        assert await keeper.inc() == 1  # and the server serves on


@pytest.mark.asyncio
async def test_a_rogue_peer_without_the_key_is_never_read(
    main: aptio.Apartment, tmp_path: Path,
) -> None:
    async with await aptio.start_server("guarded") as server:
        service = await server.create(Service)
        target = tmp_path / "pwned"
        payload = rogue_payload(str(target))
        loop = asyncio.get_running_loop()
        for attempt in ("raw pickle", "forged answer", "frame after a bad answer"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, server.address)
            greeting = await loop.sock_recv(sock, handshake.HELLO_SIZE)
            assert greeting.startswith(b"APTIO")
            if attempt == "raw pickle":
                data = frame(payload, 1 << 20)
            else:
                wrong_key = bytes(handshake.KEY_SIZE)
                data, _ = handshake.answer_hello(wrong_key, greeting)
                if attempt == "frame after a bad answer":
                    data += frame(b"\x02" + bytes(8) + payload, 1 << 20)
            await loop.sock_sendall(sock, data)
            reply = b""
            try:
                while chunk := await loop.sock_recv(sock, 4096):  # until the server hangs up
                    reply += chunk
            except ConnectionResetError:  # it closed with our bytes unread: never looked at
                pass
            sock.close()
            if attempt != "raw pickle":
                assert reply[:1] == bytes([handshake.AUTH_FAILED])
        assert not target.exists()
        assert await service.inc() == 1  # still serving


def test_a_wrong_key_and_an_unknown_version_are_refused_with_protocol_error() -> None:
    key = handshake.new_key()
    greeting, nonce = handshake.hello()
    answer, expected = handshake.answer_hello(key, greeting)
    confirm, status = handshake.check_answer(key, nonce, answer)
    assert status == handshake.ACCEPTED
    handshake.check_confirm(expected, confirm)  # the right key: accepted both ways
    _, status = handshake.check_answer(handshake.new_key(), nonce, answer)
    assert status == handshake.AUTH_FAILED
    refused, _ = handshake.check_answer(handshake.new_key(), nonce, answer)
    with pytest.raises(aptio.ProtocolError, match="refused this process's key"):
        handshake.check_confirm(expected, refused)
    newer = greeting[:6] + struct.pack(">H", PROTOCOL_VERSION + 1) + greeting[8:]
    with pytest.raises(aptio.ProtocolError,
                       match=f"speaks aptio protocol version {PROTOCOL_VERSION + 1}"):
        handshake.answer_hello(key, newer)
    old_answer = answer[:6] + struct.pack(">H", 0) + answer[8:]
    confirm, status = handshake.check_answer(key, nonce, old_answer)
    assert status == handshake.BAD_VERSION
    with pytest.raises(aptio.ProtocolError,
                       match=f"refused protocol version {PROTOCOL_VERSION}"):
        handshake.check_confirm(expected, confirm)
    with pytest.raises(aptio.ProtocolError, match="not an aptio process"):
        handshake.answer_hello(key, b"HTTP/1.1" + bytes(32))


@pytest.mark.asyncio
async def test_messages_over_the_size_limit_fail_their_call(main: aptio.Apartment) -> None:
    async with await aptio.start_server("small", max_message_size=4096) as server:
        service = await server.create(Service)
        with pytest.raises(aptio.ProtocolError, match="over the limit of 4096 bytes"):
            await service.big(100_000)  # the reply: the server refuses to send it
        assert len(await service.big(100)) == 100
        with pytest.raises(aptio.ProtocolError, match="over the limit"):
            await service.record(b"y" * 1_000_000)  # refused here, before it is sent
        assert await service.get_log() == []


@pytest.mark.asyncio
async def test_a_class_the_server_cannot_import_is_named_in_the_error(
    main: aptio.Apartment, tmp_path: Path,
) -> None:
    async with await aptio.start_server("importer") as server:
        (tmp_path / "only_here.py").write_text(textwrap.dedent("""
            import aptio

            @aptio.coclass
            class OnlyHere:
                def hello(self):
                    return "hello"
        """))
        sys.path.insert(0, str(tmp_path))  # after the server started: it cannot see it
        try:
            import only_here
        finally:
            sys.path.remove(str(tmp_path))
        with pytest.raises(aptio.UnreadableValueError, match="No module named 'only_here'"):
            await server.create(only_here.OnlyHere)

        class Local:  # not even pickleable here: refused before anything is sent
            pass

        with pytest.raises(aptio.NotPicklableError, match="argument 2"):
            await server.create(Local)


@pytest.mark.asyncio
async def test_a_server_that_fails_to_start_reports_its_stderr(
    main: aptio.Apartment, tmp_path: Path,
) -> None:
    fake = tmp_path / "python"  # an interpreter that fails before aptio could say ready
    fake.write_text("#!/bin/sh\necho 'Fatal: broken on purpose' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(aptio.ServerStartError, match=r"(?s)exited before it was ready \(exit code "
                                                     r"3\).*Fatal: broken on purpose"):
        await aptio.start_server("broken", python=str(fake))
    with pytest.raises(aptio.ServerStartError, match="exited before it was ready"):
        await aptio.start_server("not python", python="/bin/sh")


@pytest.mark.asyncio
async def test_a_failed_start_reports_stderr_written_after_the_process_exited(
    main: aptio.Apartment, tmp_path: Path,
) -> None:
    """The exit can be seen before the last of stderr is read (a loaded machine made that
    happen): the error waits for stderr's end. Here a child of the failing interpreter keeps
    stderr open and writes its line only after that interpreter exited (it closes every other
    descriptor it inherited, the readiness pipe among them, so nothing else waits for it)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash (to close inherited descriptors above 9)")
    fake = tmp_path / "python"
    closes = " ".join(f"{fd}>&-" for fd in range(3, 256))
    fake.write_text(f"#!{bash}\n"
                    f"(exec {closes}; sleep 0.5; echo 'Fatal: written late' >&2) &\n"
                    "exit 3\n")
    fake.chmod(0o755)
    with pytest.raises(aptio.ServerStartError, match=r"(?s)exited before it was ready \(exit code "
                                                     r"3\).*Fatal: written late"):
        await aptio.start_server("late", python=str(fake))


@pytest.mark.asyncio
async def test_a_peer_that_hangs_up_before_a_connection_opens_is_a_disconnect(
    tmp_path: Path,
) -> None:
    """A server killed while a new connection to it is being set up closes it mid-handshake or
    mid-setup: the call then fails with DisconnectedError (named for the server by the caller's
    link), not ProtocolError, which is kept for peers that break the protocol."""
    from aptio._remote.sockets import SocketSetup, dial_socket

    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.close()
    setup = SocketSetup(loop, ours, 4096)
    try:
        with pytest.raises(aptio.DisconnectedError, match="closed the connection during setup"):
            await setup.receive()
    finally:
        setup.abort()

    path = str(tmp_path / "hangs-up")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    listener.setblocking(False)

    async def accept_and_hang_up() -> None:
        accepted, _ = await loop.sock_accept(listener)
        accepted.close()

    hanging_up = asyncio.ensure_future(accept_and_hang_up())
    try:
        with pytest.raises(aptio.DisconnectedError, match="during the handshake"):
            await dial_socket(loop, path, bytes(32), 4096)
        await hanging_up
    finally:
        listener.close()


def test_servers_leave_no_process_socket_or_directory_behind() -> None:
    seen: dict[str, Any] = {}

    async def body() -> None:
        server = await aptio.start_server("tidy")
        service = await server.create(Service)
        await service.inc()
        seen["pid"] = server.pid
        seen["address"] = server.address
        seen["directory"] = os.path.dirname(server.address)
        assert oct(os.stat(seen["directory"]).st_mode & 0o777) == "0o700"
        del service
        gc.collect()

    aptio.run(body)
    assert _reaped(seen["pid"])
    assert not os.path.exists(seen["address"])
    assert not os.path.exists(seen["directory"])
