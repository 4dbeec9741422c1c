"""Helpers for tests that run a real Tk window: an Xvfb server, a line-oriented subprocess
driver, xdotool clicks, process CPU time, and an X screenshot written as PNG (no ImageMagick).
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import shutil
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def require_tools(*tools: str) -> None:
    """Skip the calling test, with the reason, when a program it needs is missing."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install xvfb xdotool x11-apps)")


@contextlib.contextmanager
def xvfb(width: int = 800, height: int = 600, timeout: float = 15.0) -> Iterator[str]:
    """A private Xvfb server for the block; yields its DISPLAY (``:N``). The server picks a
    free display number itself (``-displayfd``), so parallel runs cannot collide."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{width}x{height}x24",
         "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + timeout
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_end], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError(f"Xvfb did not report its display within {timeout} s")
            chunk = os.read(read_end, 64)
            if not chunk:
                raise RuntimeError(f"Xvfb exited early with code {process.wait()}")
            number += chunk
        yield f":{number.decode().strip()}"
    finally:
        os.close(read_end)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LineProcess:
    """A subprocess whose stdout lines are collected by a thread; the test waits for the line
    it needs (with a timeout) instead of sleeping."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            args, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.stderr = ""
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def expect(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        """The first line so far, or the next one to come, that satisfies ``predicate``."""
        for line in self.lines:
            if predicate(line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(0.0, left))
            except queue.Empty:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; last lines: "
                    f"{self.lines[-10:]}; stderr: {self.stderr[-2000:]}"
                ) from None
            if line is None:
                self.process.wait(timeout=5)
                raise AssertionError(
                    f"the process exited ({self.process.returncode}) before {what}; "
                    f"last lines: {self.lines[-10:]}; stderr: {self.stderr[-2000:]}"
                )
            self.lines.append(line)
            if predicate(line):
                return line

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """Kill the process if it still runs, and close its pipes."""
        process = self.process
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:  # unflushed input for a process that is gone
                    pass


def click(display: str, x: int, y: int) -> None:
    """A real mouse click at screen coordinates, as a user makes it."""
    subprocess.run(
        ["xdotool", "mousemove", "--sync", str(x), str(y), "click", "1"],
        env={**os.environ, "DISPLAY": display}, check=True, timeout=10,
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def capture_screen(display: str) -> bytes:
    """The whole X screen as an XWD image (fast; convert it later with :func:`xwd_to_png`)."""
    return subprocess.run(
        ["xwd", "-root", "-silent"], env={**os.environ, "DISPLAY": display},
        capture_output=True, check=True, timeout=20,
    ).stdout


def xwd_to_png(dump: bytes, path: Path) -> tuple[int, int]:
    """Write an XWD image as a PNG; returns (width, height).

    Handles xwd's ZPixmap TrueColor output at 24/32 bits per pixel, which is what Xvfb gives.
    """
    header = struct.unpack(">25I", dump[:100])
    header_size, _version, pixmap_format, _depth, width, height = header[:6]
    byte_order, bits_per_pixel, bytes_per_line = header[7], header[11], header[12]
    red_mask, green_mask, blue_mask = header[14:17]
    colormap_entries = header[19]
    if pixmap_format != 2 or bits_per_pixel not in (24, 32):
        raise ValueError(f"unsupported xwd image: format {pixmap_format}, {bits_per_pixel} bpp")
    data = dump[header_size + 12 * colormap_entries:]
    step = bits_per_pixel // 8
    order = "little" if byte_order == 0 else "big"

    def shift(mask: int) -> int:
        return (mask & -mask).bit_length() - 1

    shifts = [(mask, shift(mask)) for mask in (red_mask, green_mask, blue_mask)]
    rows = bytearray()
    for y in range(height):
        line = data[y * bytes_per_line:(y * bytes_per_line) + width * step]
        rows.append(0)  # PNG filter type 0 for this row
        for x in range(0, width * step, step):
            pixel = int.from_bytes(line[x:x + step], order)
            rows.extend(((pixel & mask) >> bits) & 0xFF for mask, bits in shifts)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(bytes(rows), 6))
           + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return width, height
