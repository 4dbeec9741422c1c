"""Message filters: an STA that turns calls away while it is busy, and callers that retry.

COM's IMessageFilter lets an STA decide in two roles. As the *callee*, ``handle_incoming_call`` sees
every call arriving from another apartment before it runs, and answers ISHANDLED (run it),
RETRYLATER (busy, try again) or REJECTED (cannot take it). As the *caller*, its
``retry_rejected_call`` decides what happens when another apartment turned one of its calls
away: wait that many seconds and retry, or give up (the call raises CallRejectedError). A caller
with no filter gives up at once.

Run it: python examples/message_filter.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aptio
from aptio import ServerCall


class BusyFilter(aptio.MessageFilter):
    """The printer STA's filter: RETRYLATER while a job prints; REJECTED for a method the
    apartment never takes from outside."""

    def __init__(self) -> None:
        self.busy = False
        self.turned_away = 0

    def handle_incoming_call(self, info: aptio.CallInfo) -> ServerCall:
        if info.method == "format_disk":
            return ServerCall.REJECTED
        if self.busy and info.method != "finish_job":
            self.turned_away += 1
            return ServerCall.RETRYLATER
        return ServerCall.ISHANDLED


class PatientFilter(aptio.MessageFilter):
    """The office STA's filter, as a caller: retry every 20 ms for up to 5 s, then give up
    (a GUI would show COM's "server busy" dialog at that point)."""

    def __init__(self) -> None:
        self.retries = 0

    def retry_rejected_call(self, info: aptio.CallInfo, elapsed: float,
                            verdict: ServerCall) -> float | None:
        if verdict is ServerCall.REJECTED or elapsed > 5.0:
            return None  # rejected outright, or waited long enough: give up
        self.retries += 1
        return 0.02


@aptio.coclass  # lives in the printer STA
class Printer:
    def __init__(self, message_filter: BusyFilter) -> None:
        self.filter = message_filter
        self.printed: list[str] = []

    def start_job(self) -> None:
        self.filter.busy = True  # the filter runs on this same thread: no lock needed

    def finish_job(self) -> None:
        self.filter.busy = False

    def print_page(self, text: str) -> str:
        self.printed.append(text)
        return f"printed {text!r}"

    def format_disk(self) -> None:  # pragma: no cover - the filter never lets it run
        raise AssertionError("not reached")


@aptio.coclass  # lives in the office STA, whose filter retries
class Clerk:
    async def print_when_possible(self, printer: Any, text: str) -> tuple[str, float]:
        started = time.perf_counter()
        result: str = await printer.print_page(text)
        return result, time.perf_counter() - started

    async def try_format(self, printer: Any) -> str:
        try:
            await printer.format_disk()
        except aptio.CallRejectedError as error:
            return f"CallRejectedError: {error}"
        return "formatted"  # pragma: no cover


async def main() -> None:
    printer_sta = await aptio.start_sta("printer")
    busy = BusyFilter()
    printer_sta.set_message_filter(busy)
    printer = await printer_sta.create(Printer, busy)

    office = await aptio.start_sta("office")
    patient = PatientFilter()
    office.set_message_filter(patient)
    clerk = await office.create(Clerk)

    await printer.start_job()
    print("1. The printer is busy. The main STA (no filter) calls it and gives up at once:")
    try:
        await printer.print_page("from main")
    except aptio.CallRejectedError as error:
        print(f"   CallRejectedError: {error}")

    print("2. The clerk's STA has a filter that retries; the job finishes 200 ms later:")
    attempt = asyncio.ensure_future(clerk.print_when_possible(printer, "from the clerk"))
    await asyncio.sleep(0.2)
    await printer.finish_job()  # the printer's filter lets this one through while busy
    result, waited = await attempt
    print(f"   {result} after about {round(waited, 1)} s; the printer turned calls away "
          f"{busy.turned_away} times, the clerk's filter retried {patient.retries} times")

    print("3. A method the printer always rejects: the clerk's filter does not retry it:")
    print(f"   {await clerk.try_format(printer)}")


if __name__ == "__main__":
    aptio.run(main)
