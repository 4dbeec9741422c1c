"""What the concept examples print, and the chat server with clients of the test's own."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.timeout(40)


def _run(name: str) -> str:
    completed = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=ROOT,
                               capture_output=True, text=True, timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_creation_matrix_example_prints_com_s_matrix() -> None:
    rows = {cells[0]: cells[1:] for cells in map(_cells, _run("creation_matrix.py").splitlines())
            if len(cells) == 6}
    assert rows["creator \\ model"] == ["SINGLE", "APARTMENT", "FREE", "BOTH", "NEUTRAL"]
    assert rows["main STA"] == ["main STA", "main STA", "MTA", "main STA", "NA on MainThread"]
    assert rows["other STA"] == ["main STA", "other STA", "MTA", "other STA",
                                 "NA on aptio other STA"]
    assert rows["MTA"][:4] == ["main STA", "host STA", "MTA", "MTA"]
    assert rows["NA on an STA thread"] == ["main STA", "main STA", "MTA", "NA on MainThread",
                                           "NA on MainThread"]
    na_mta = rows["NA on an MTA thread"]
    assert na_mta[:3] == ["main STA", "host STA", "MTA"]
    assert na_mta[3].startswith("NA on aptio MTA") and na_mta[4].startswith("NA on aptio MTA")


def test_pipeline_example_keeps_the_window_and_loses_nothing() -> None:
    out = _run("pipeline.py")
    assert "records written: 400 of 400" in out
    assert "most records in flight at once: 16 (window 16)" in out
    assert "written on: aptio writer" in out
    assert "checksum matches a sequential run: True" in out


def test_chat_server_example_tells_the_conversation() -> None:
    out = _run("chat_server.py")
    assert "the room lives on thread 'aptio room'" in out
    transcript = [line.strip() for line in out.split("transcript kept by the room:\n")[1]
                  .splitlines() if line.startswith("  ")]
    assert transcript == [
        "* ada joined (1 here)", "* grace joined (2 here)", "* linus joined (3 here)",
        "<ada> hello, everyone", "<grace> hi ada", "<linus> hello from linus",
        "* linus left", "* grace left", "* ada left",
    ]


def test_reentrancy_example_shows_each_policy() -> None:
    out = _run("reentrancy.py")
    assert "InterleavingAccount  -> 70 (the deposit was lost)" in out
    assert "CallChainAccount     -> 120 (correct)" in out
    assert "StrictAccount        -> 120 (correct)" in out
    second = out.split("2. ")[1]
    assert "CallChainAccount     -> 70" in second
    assert "StrictAccount        DeadlockError:" in second


def test_message_filter_example_rejects_retries_and_gives_up() -> None:
    out = _run("message_filter.py")
    first, second, third = out.split("\n2. ")[0], out.split("\n2. ")[1], out.split("\n3. ")[1]
    assert "CallRejectedError: print_page() was answered RETRYLATER" in first
    assert "printed 'from the clerk'" in second
    assert "CallRejectedError: format_disk() was answered REJECTED" in third


class _LineClient:
    """A blocking TCP client with a line reader and a timeout on every read."""

    def __init__(self, port: int, name: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("r", encoding="utf-8", newline="\n")
        self.send(name)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def read_until(self, wanted: str) -> list[str]:
        lines = []
        while True:
            line = self.file.readline()
            assert line, f"connection closed before {wanted!r}; got {lines}"
            lines.append(line.rstrip("\n"))
            if lines[-1] == wanted:
                return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_chat_server_serves_clients_of_the_test_s_own() -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "chat_server.py"), "--serve"], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    clients: list[_LineClient] = []
    out = err = ""
    try:
        assert server.stdout is not None and server.stdin is not None
        first = server.stdout.readline().split()
        assert first[:2] == ["listening", "127.0.0.1"], first
        port = int(first[2])
        one = _LineClient(port, "one")
        clients.append(one)
        assert one.read_until("* one joined (1 here)") == ["* one joined (1 here)"]
        two = _LineClient(port, "two")
        clients.append(two)
        one.read_until("* two joined (2 here)")
        two.read_until("* two joined (2 here)")
        taken = _LineClient(port, "one")
        clients.append(taken)
        assert taken.read_until("* the nickname one is taken")
        one.send("ping from one")
        assert two.read_until("<one> ping from one") == ["<one> ping from one"]
        one.read_until("<one> ping from one")
        two.send("/quit")
        assert one.read_until("* two left") == ["* two left"]
    finally:
        for client in clients:
            client.close()
        try:
            out, err = server.communicate(timeout=20)  # closing its stdin stops the server
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert "<one> ping from one" in out and "* two left" in out
