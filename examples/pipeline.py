"""A pipeline of apartments with backpressure: parse in one STA, score in the MTA, write in
another STA, with at most WINDOW records in flight.

Each stage is an object in its own apartment and pushes each record on to the next stage
through a proxy. Backpressure is one ``aptio.BoundedSemaphore`` shared by two apartments: the
feeder (main STA) acquires a permit per record, and the writer (its own STA) releases it once
the record is written. aptio's primitives work from any loop and any thread, which an
``asyncio.Semaphore`` (bound to one loop) would not.

Run it: python examples/pipeline.py
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import Any

import aptio
from aptio import ThreadingModel

RECORDS = 400
WINDOW = 16


@aptio.coclass  # APARTMENT: lives in the STA that creates it (the parser STA)
class Parser:
    def __init__(self, scorer: Any, writer: Any) -> None:
        self.scorer = scorer  # proxies: the MTA scorer and the writer STA's object
        self.writer = writer

    async def push(self, line: str) -> None:
        number, text = line.split(":", 1)
        record = {"n": int(number), "text": text.strip()}
        record["score"] = await self.scorer.score(record["text"])  # runs on an MTA thread
        await self.writer.write(record)


@aptio.coclass(ThreadingModel.FREE)  # lives in the MTA: CPU work on pool threads, in parallel
class Scorer:
    def score(self, text: str) -> int:
        digest = text.encode()
        for _ in range(200):  # hashing releases the GIL, so MTA threads really overlap
            digest = hashlib.sha256(digest * 64).digest()
        return digest[0]


@aptio.coclass  # lives in the writer STA: one thread, so its state needs no lock
class Writer:
    def __init__(self, window: aptio.BoundedSemaphore) -> None:
        self.window = window
        self.written: list[int] = []
        self.total = 0
        self.threads: set[str] = set()

    def write(self, record: dict[str, Any]) -> None:
        self.written.append(record["n"])
        self.total += record["score"]
        self.threads.add(threading.current_thread().name)
        self.window.release()  # this record left the pipeline: let the feeder send another

    def summary(self) -> tuple[int, int, list[str]]:
        return len(self.written), self.total, sorted(self.threads)


async def main() -> None:
    window = aptio.BoundedSemaphore(WINDOW)
    parser_sta = await aptio.start_sta("parser")
    writer_sta = await aptio.start_sta("writer")
    writer = await writer_sta.create(Writer, window)
    scorer = await aptio.create(Scorer)
    parser = await parser_sta.create(Parser, scorer, writer)

    max_in_flight = 0
    calls = []
    for n in range(RECORDS):
        await window.acquire()  # blocks (asynchronously) while WINDOW records are in flight
        max_in_flight = max(max_in_flight, WINDOW - window.statistics().value)
        calls.append(parser.push(f"{n}: record number {n}"))  # eager: on its way already
    await asyncio.gather(*calls)

    count, total, threads = await writer.summary()
    print(f"records written: {count} of {RECORDS}, checksum {total}")
    print(f"most records in flight at once: {max_in_flight} (window {WINDOW})")
    print(f"written on: {', '.join(threads)}")
    expected = sum(Scorer().score(f"record number {n}") for n in range(RECORDS))
    print("checksum matches a sequential run:", total == expected)


if __name__ == "__main__":
    aptio.run(main)
