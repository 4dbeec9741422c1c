"""Benchmark calls into other processes (aptio servers) against their floor, in one run.

    python -m aptio bench processes [--quick] [--repeat N] [--loops asyncio,uvloop] [--json P]

Rows (median of ``--repeat`` rounds, each measuring everything once, interleaved):

* floor: a raw ``multiprocessing.connection`` pipe ping-pong between two processes, sending the
  same pickled payload an aptio call sends (its request tuple) and getting a small reply;
* reference: the same ping-pong between two event loops of the row's kind (a bare protocol on
  a Unix socket in each process, no aptio): what waiting in a loop instead of in ``recv``
  costs before any framework work, the floor for anything loop-driven;
* aptio: a call from an STA to an object in a server's STA, sequential (await each) and
  pipelined (send a batch, then await them all);
* the reason servers exist: pure-Python CPU-bound calls spread over 2 server processes against
  the same calls to 2 FREE objects in the MTA (threads taking turns on the interpreter lock);
* peers when installed: Pyro5 (a proxy call over TCP loopback) and a Ray actor.

Targets: sequential at most 1.5x the floor; pipelined at least 5x cheaper than sequential;
CPU-bound work at least 1.7x faster in 2 servers than in the MTA (on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import os
import pickle
import socket
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import aptio
from aptio._threads.loops import loop_factory

ns = time.perf_counter_ns


@dataclass(frozen=True)
class Sizes:
    repeat: int = 5
    seq: int = 2000
    batch: int = 500
    batches: int = 8
    cpu_jobs: int = 16
    cpu_size: int = 40_000
    peer_seq: int = 300


QUICK = Sizes(repeat=1, seq=50, batch=20, batches=2, cpu_jobs=4, cpu_size=2_000, peer_seq=20)


@aptio.coclass
class Target:
    def ping(self) -> int:
        return 1


@aptio.coclass
class Driver:
    """Lives in an STA of this process; times calls to a proxy from there."""

    async def sequential(self, target: Any, n: int) -> int:
        t0 = ns()
        for _ in range(n):
            await target.ping()
        return ns() - t0

    async def pipelined(self, target: Any, batch: int, batches: int) -> int:
        t0 = ns()
        for _ in range(batches):
            calls = [target.ping() for _ in range(batch)]
            for call in calls:
                await call
        return ns() - t0


@aptio.coclass(aptio.ThreadingModel.FREE)
class Cruncher:
    """Pure-Python CPU work (it holds the interpreter lock throughout)."""

    def primes(self, start: int, stop: int) -> int:
        found = 0
        for n in range(max(start, 2), stop):
            divisor = 2
            while divisor * divisor <= n:
                if n % divisor == 0:
                    break
                divisor += 1
            else:
                found += 1
        return found


# ------------------------------------------------------------------------------- the floor


#: What an aptio call of ``ping()`` puts on the wire (its request's fields), and the reply's.
PAYLOAD = (1, "ping", (), {}, 123456789, ())
REPLY = (0, 1, "")


def _echo(connection: multiprocessing.connection.Connection) -> None:
    while True:
        message = connection.recv()
        if message is None:
            return
        connection.send(REPLY)


class Floor:
    """The other end of the pipe: a spawned process answering each message."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_echo, args=(theirs,), daemon=True)
        self.process.start()
        theirs.close()

    def sequential(self, n: int) -> int:
        send, recv = self.connection.send, self.connection.recv
        t0 = ns()
        for _ in range(n):
            send(PAYLOAD)
            recv()
        return ns() - t0

    def close(self) -> None:
        self.connection.send(None)
        self.process.join()
        self.connection.close()


_FRAME = struct.Struct(">I")


class _Framed(asyncio.Protocol):
    """Length-prefixed pickles on a socket, each complete one handed to ``on_message``."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            (size,) = _FRAME.unpack_from(buffer)
            if len(buffer) < 4 + size:
                return
            message = pickle.loads(buffer[4:4 + size])
            del buffer[:4 + size]
            self.on_message(message)

    def send(self, message: object) -> None:
        data = pickle.dumps(message)
        assert self.transport is not None
        self.transport.write(_FRAME.pack(len(data)) + data)

    def on_message(self, message: object) -> None:
        raise NotImplementedError


def _loop_echo(path: str, kind: str) -> None:
    """The loop reference's other process: answers each message on a loop of ``kind``."""

    class Echo(_Framed):
        def on_message(self, message: object) -> None:
            self.send(REPLY)

        def connection_lost(self, exc: Exception | None) -> None:
            done.set_result(None)

    loop = loop_factory(kind == "uvloop")()
    done = loop.create_future()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    loop.run_until_complete(loop.connect_accepted_socket(Echo, sock))
    loop.run_until_complete(done)
    loop.close()


class LoopFloor:
    """The loop reference: a spawned process with a loop of ``kind`` answering each message;
    ``sequential`` runs a loop of the same kind on the calling thread."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        directory = tempfile.mkdtemp(prefix="aptio-bench-")
        path = os.path.join(directory, "echo")
        listener = socket.socket(socket.AF_UNIX)
        try:
            listener.bind(path)
            listener.listen(1)
            self.process = multiprocessing.get_context("spawn").Process(
                target=_loop_echo, args=(path, kind), daemon=True)
            self.process.start()
            listener.settimeout(60)  # a child that never connects fails the run
            self.sock, _ = listener.accept()
        finally:  # connected or not, the listener and its directory go
            listener.close()
            if os.path.exists(path):
                os.unlink(path)
            os.rmdir(directory)

    def sequential(self, n: int) -> int:
        loop = loop_factory(self.kind == "uvloop")()
        try:
            # A bound, not a margin: a ping-pong that stalls fails the run instead of hanging.
            return loop.run_until_complete(asyncio.wait_for(self._sequential(n), 300))
        finally:
            loop.close()

    async def _sequential(self, n: int) -> int:
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[object] = asyncio.Queue()

        class Caller(_Framed):
            def on_message(self, message: object) -> None:
                replies.put_nowait(message)

        transport, caller = await loop.connect_accepted_socket(Caller, self.sock.dup())
        try:
            t0 = ns()
            for _ in range(n):
                caller.send(PAYLOAD)
                await replies.get()
            return ns() - t0
        finally:
            transport.close()

    def close(self) -> None:
        self.sock.close()  # the other end sees the connection end and exits
        self.process.join()


# ------------------------------------------------------------------------------- the peers


def _pyro_server(connection: multiprocessing.connection.Connection) -> None:
    import Pyro5.api

    @Pyro5.api.expose
    class PyroTarget:
        def ping(self) -> int:
            return 1

    daemon = Pyro5.api.Daemon(host="127.0.0.1")
    connection.send(str(daemon.register(PyroTarget)))
    daemon.requestLoop()


class PyroPeer:
    """A Pyro5 proxy call of ``ping()`` (TCP loopback) into a spawned process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self.process = context.Process(target=_pyro_server, args=(theirs,), daemon=True)
        self.process.start()
        import Pyro5.api

        self.uri = ours.recv()
        self.proxy_class = Pyro5.api.Proxy

    def sequential(self, n: int) -> int:
        with self.proxy_class(self.uri) as proxy:
            proxy.ping()  # connects
            t0 = ns()
            for _ in range(n):
                proxy.ping()
            return ns() - t0

    def close(self) -> None:
        self.process.terminate()
        self.process.join()


class RayPeer:
    """A call to a local Ray actor (``ray.get(actor.ping.remote())``)."""

    def __init__(self) -> None:
        import ray

        # A Ray instance of its own ("local"): it would otherwise join any cluster running
        # on the machine, whose size it cannot set.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)

        @ray.remote
        class RayTarget:
            def ping(self) -> int:
                return 1

        self.ray = ray
        self.actor = RayTarget.remote()  # type: ignore[attr-defined]

    def sequential(self, n: int) -> int:
        get, ping = self.ray.get, self.actor.ping
        get(ping.remote())
        t0 = ns()
        for _ in range(n):
            get(ping.remote())
        return ns() - t0

    def close(self) -> None:
        self.ray.shutdown()


def _peers() -> dict[str, Any]:
    """The peers installed here (each one left out when its package is missing)."""
    import importlib.util

    peers: dict[str, Any] = {}
    if importlib.util.find_spec("Pyro5") is not None:
        peers["peer.pyro5"] = PyroPeer()
    if importlib.util.find_spec("ray") is not None:
        peers["peer.ray"] = RayPeer()
    return peers


# ------------------------------------------------------------------------------- the rounds


Results = dict[str, dict[str, list[float]]]


def _record(results: Results, loop: str, key: str, value: float) -> None:
    results.setdefault(loop, {}).setdefault(key, []).append(value)


async def _round(sizes: Sizes, loop: str, floor: Floor, loop_floor: LoopFloor,
                 peers: dict[str, Any], results: Results) -> None:
    server = await aptio.start_server("bench")
    try:
        target = await server.create(Target)
        caller = await aptio.start_sta("caller")
        driver = await caller.create(Driver)
        await driver.sequential(target, 100)  # warm up: connections made, code paths hot
        floor.sequential(100)
        _record(results, loop, "floor.seq", await asyncio.to_thread(floor.sequential, sizes.seq)
                / sizes.seq)
        _record(results, loop, "floor.loop", await asyncio.to_thread(loop_floor.sequential,
                                                                     sizes.seq) / sizes.seq)
        _record(results, loop, "process.seq", await driver.sequential(target, sizes.seq)
                / sizes.seq)
        for key, peer in peers.items():  # blocking clients: timed on a thread of their own
            _record(results, loop, key, await asyncio.to_thread(peer.sequential, sizes.peer_seq)
                    / sizes.peer_seq)
        calls = sizes.batch * sizes.batches
        _record(results, loop, "process.pipe",
                await driver.pipelined(target, sizes.batch, sizes.batches) / calls)
        await caller.shutdown()
    finally:
        await server.shutdown()


async def _cpu_round(sizes: Sizes, loop: str, results: Results) -> None:
    work = [(i * sizes.cpu_size, (i + 1) * sizes.cpu_size) for i in range(sizes.cpu_jobs)]

    async def spread(crunchers: list[Any]) -> int:
        t0 = ns()
        await asyncio.gather(*(crunchers[i % 2].primes(a, b) for i, (a, b) in enumerate(work)))
        return ns() - t0

    in_mta = [await aptio.create(Cruncher) for _ in range(2)]
    servers = [await aptio.start_server(f"cruncher-{i}") for i in range(2)]
    try:
        in_servers = [await server.create(Cruncher) for server in servers]
        await spread(in_servers)  # warm
        _record(results, loop, "cpu.mta", await spread(in_mta))
        _record(results, loop, "cpu.servers", await spread(in_servers))
    finally:
        for server in servers:
            await server.shutdown()


def run(sizes: Sizes, loops: list[str], progress: Any = None) -> Results:
    results: Results = {}
    floor = Floor()
    loop_floors = {loop: LoopFloor(loop) for loop in loops}
    peers = _peers()
    try:
        for r in range(sizes.repeat):
            for loop in loops:
                if progress is not None:
                    progress(f"processes: round {r + 1}/{sizes.repeat}, {loop}")

                async def body(loop: str = loop) -> None:
                    await _round(sizes, loop, floor, loop_floors[loop], peers, results)
                    await _cpu_round(sizes, loop, results)

                aptio.run(body, use_uvloop=loop == "uvloop")
    finally:
        floor.close()
        for loop_floor in loop_floors.values():
            loop_floor.close()
        for peer in peers.values():
            peer.close()
    return results


def _median(results: Results, loop: str, key: str) -> float | None:
    values = results.get(loop, {}).get(key)
    return statistics.median(values) if values else None


ROWS = [
    ("floor: pipe ping-pong, same payload", "floor.seq", "floor.seq", 1000.0),
    ("reference: loop-to-loop socket ping-pong", "floor.loop", "floor.seq", 1000.0),
    ("aptio STA->server STA sequential", "process.seq", "floor.seq", 1000.0),
    ("aptio STA->server STA pipelined", "process.pipe", "process.seq", 1000.0),
    ("peer: Pyro5 proxy call (TCP loopback)", "peer.pyro5", "floor.seq", 1000.0),
    ("peer: Ray local actor call", "peer.ray", "floor.seq", 1000.0),
    ("CPU-bound, 2 FREE objects in the MTA (ms)", "cpu.mta", "cpu.mta", 1e6),
    ("CPU-bound, 2 server processes (ms)", "cpu.servers", "cpu.mta", 1e6),
]


def render_markdown(results: Results, caption: str) -> str:
    """The run as the docs' ``processes`` block (see benchmarks/update_docs.py)."""
    loops = list(results)
    head = ["calls into another process"]
    for loop in loops:
        head += [f"{loop}", "ratio"]
    lines = ["| " + " | ".join(head) + " |",
             "|---" + "|---:" * (len(head) - 1) + "|"]
    for label, key, base, unit in ROWS:
        if not any(_median(results, loop, key) for loop in loops):
            continue  # a peer not installed for this run
        cells = [label.replace("->", "→").replace(" (ms)", "")]
        for loop in loops:
            value, reference = _median(results, loop, key), _median(results, loop, base)
            shown = "" if value is None else (
                f"{value / unit:.1f} ms" if unit == 1e6 else f"{value / unit:.1f} µs")
            ratio = f"{value / reference:.2f}x" if value and reference and key != base else ""
            cells += [shown, ratio]
        lines.append("| " + " | ".join(cells) + " |")
    body = [caption, "", *lines, "",
            "Ratios: the loop reference, sequential and peers ÷ the floor; pipelined ÷ "
            "sequential; two servers ÷ the MTA. Targets: sequential ≤ 1.5x the floor, "
            "pipelined ≤ 0.2x sequential, two servers ≤ 0.59x the MTA's time (1.7x faster)."]
    return "\n".join(["<!-- bench:processes:begin -->", *body,
                      "<!-- bench:processes:end -->", ""])


def render(results: Results) -> str:
    loops = list(results)
    lines = [f"{'calls into another process (median)':40}"
             + "".join(f"{loop + ' us':>13}{'ratio':>9}" for loop in loops)]
    for label, key, base, unit in ROWS:
        line = f"{label:40}"
        for loop in loops:
            value, reference = _median(results, loop, key), _median(results, loop, base)
            ratio = f"{value / reference:.2f}x" if value and reference and key != base else ""
            line += f"{value / unit:13.1f}{ratio:>9}" if value else f"{'-':>13}{'':>9}"
        lines.append(line)
    lines.append("ratio column: loop reference, sequential and peers / floor; pipelined / "
                 "sequential; servers / MTA; '-': not installed here")
    lines.append("")
    lines.append("targets: sequential <= 1.5x the floor; pipelined <= 0.2x sequential; "
                 "servers <= 0.59x the MTA's time (1.7x faster)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aptio bench processes")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--json")
    parser.add_argument("--markdown", metavar="PATH",
                        help="write the docs' processes table to this file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.repeat:
        sizes = Sizes(**{**sizes.__dict__, "repeat": args.repeat})
    loops = [loop for loop in args.loops.split(",") if loop]
    results = run(sizes, loops, lambda message: print(message, file=sys.stderr))
    print(render(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"results": results, "cpus": os.cpu_count()}, out, indent=1)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(render_markdown(results, caption(sizes)))
    return 0


def caption(sizes: Sizes) -> str:
    import platform

    return (f"CPython {platform.python_version()} on {os.cpu_count()} CPUs "
            f"({platform.machine()}), median of {sizes.repeat} rounds; {sizes.seq} sequential "
            f"calls, batches of {sizes.batch} pipelined, {sizes.cpu_jobs} CPU-bound jobs.")


if __name__ == "__main__":
    sys.exit(main())
