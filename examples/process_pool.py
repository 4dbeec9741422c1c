"""Pure-Python work on every core: objects in two server processes (COM's local server).

The MTA runs calls to FREE objects on a pool of threads, but pure-Python code holds the
interpreter lock, so those threads take turns on one core. Objects created in servers, other
processes with runtimes of their own, run in parallel; their proxies work as any other, and
values cross by value (pickle).

Run it: python examples/process_pool.py [jobs]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aptio


@aptio.coclass(aptio.ThreadingModel.FREE)
class PrimeCounter:
    """Counts primes the slow way: pure Python, no I/O, holding the interpreter lock."""

    def count(self, start: int, stop: int) -> int:
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

    def pid(self) -> int:
        return os.getpid()


def chunks(jobs: int, size: int) -> list[tuple[int, int]]:
    return [(i * size, (i + 1) * size) for i in range(jobs)]


async def spread(counters: list[aptio.Proxy[PrimeCounter]], work: list[tuple[int, int]]) -> int:
    """Hand the chunks out round-robin, all at once, and add up the answers."""
    calls = [counters[i % len(counters)].count(start, stop)
             for i, (start, stop) in enumerate(work)]
    return sum(await asyncio.gather(*calls))


async def main(jobs: int = 8, size: int = 20_000) -> None:
    work = chunks(jobs, size)

    in_mta = [await aptio.create(PrimeCounter) for _ in range(2)]  # FREE: the MTA's threads
    started = time.perf_counter()
    expected = await spread(in_mta, work)
    mta_time = time.perf_counter() - started
    print(f"2 FREE objects in the MTA:   {expected} primes in {mta_time:.2f} s")

    servers = [await aptio.start_server(f"worker-{i}") for i in range(2)]
    try:
        in_servers = [await server.create(PrimeCounter) for server in servers]
        pids = {await counter.pid() for counter in in_servers}
        print(f"2 servers: processes {sorted(pids)} (this one is {os.getpid()})")
        started = time.perf_counter()
        found = await spread(in_servers, work)
        server_time = time.perf_counter() - started
        assert found == expected
        print(f"2 objects in 2 server processes: {found} primes in {server_time:.2f} s "
              f"({mta_time / server_time:.1f}x the MTA's speed)")
    finally:
        for server in servers:
            await server.shutdown()  # the runtime would do it on the way out, too


if __name__ == "__main__":  # a server loads this script too (for PrimeCounter): not this part
    aptio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
