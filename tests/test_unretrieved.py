"""An exception from a call nobody retrieves is reported once, as asyncio reports a Future's
"exception was never retrieved": through the caller's loop exception handler, or the aptio
logger where the caller has no loop; never for a call whose error was retrieved, nor for a
cancelled one."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Any

import pytest

import aptio
from aptio.testing import apartment_barrier

# These tests leave errors unretrieved on purpose, to see them reported.
pytestmark = pytest.mark.aptio(allow_leaks=["errors"])


class Oops(Exception):
    pass


@aptio.coclass
class Failing:
    def __init__(self) -> None:
        self.gate = aptio.Event()

    def fail(self, tag: str) -> None:
        raise Oops(tag)

    async def fail_later(self, tag: str) -> None:
        await self.gate.wait()
        raise Oops(tag)

    def open(self) -> None:
        self.gate.set()

    def ok(self) -> int:
        return 1


Reports = list[dict[str, Any]]


def _collect(loop: asyncio.AbstractEventLoop) -> Reports:
    reports: Reports = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reports.append(context)

    loop.set_exception_handler(handler)
    return reports


async def _settle(sta: aptio.Apartment) -> None:
    """Free what is garbage and let a report posted to this loop arrive."""
    await apartment_barrier(sta)
    gc.collect()
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _oops(reports: Reports) -> list[str]:
    return [str(r["exception"]) for r in reports if isinstance(r.get("exception"), Oops)]


@pytest.mark.asyncio
async def test_an_unretrieved_error_is_reported_exactly_once(main: aptio.Apartment) -> None:
    reports = _collect(asyncio.get_running_loop())
    sta = await aptio.start_sta()
    failing = await sta.create(Failing)
    call = failing.fail("lost")
    await apartment_barrier(sta)
    assert call.done()
    del call
    await _settle(sta)
    assert _oops(reports) == ["lost"]
    report = next(r for r in reports if isinstance(r.get("exception"), Oops))
    assert "Failing.fail()" in report["message"]
    assert "exception was never retrieved" in report["message"]
    await _settle(sta)
    assert _oops(reports) == ["lost"]  # once


@pytest.mark.asyncio
@pytest.mark.parametrize("retrieve", ["await", "exception", "gather"])
async def test_a_retrieved_error_is_not_reported(main: aptio.Apartment, retrieve: str) -> None:
    reports = _collect(asyncio.get_running_loop())
    sta = await aptio.start_sta()
    failing = await sta.create(Failing)
    call = failing.fail(retrieve)
    if retrieve == "await":
        with pytest.raises(Oops):
            await call
    elif retrieve == "exception":
        await apartment_barrier(sta)  # the call ran before the barrier's call
        assert isinstance(call.exception(), Oops)
    else:
        (error,) = await asyncio.gather(call, return_exceptions=True)
        assert isinstance(error, Oops)
    del call
    await _settle(sta)
    assert _oops(reports) == []


@pytest.mark.asyncio
async def test_a_cancelled_call_is_not_reported(main: aptio.Apartment) -> None:
    reports = _collect(asyncio.get_running_loop())
    sta = await aptio.start_sta()
    for _ in range(50):  # the cancel races the failure: never a report either way
        failing = await sta.create(Failing)
        call = failing.fail_later("cancelled")
        call.cancel()
        await failing.open()
        del call
    await _settle(sta)
    assert _oops(reports) == []


@pytest.mark.asyncio
async def test_successful_calls_report_nothing(main: aptio.Apartment) -> None:
    reports = _collect(asyncio.get_running_loop())
    sta = await aptio.start_sta()
    failing = await sta.create(Failing)
    for _ in range(100):
        failing.ok()  # never awaited, never failing
    await _settle(sta)
    assert reports == []


def test_a_caller_with_no_loop_reports_to_the_aptio_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        sta = await aptio.start_sta()
        failing = await sta.create(Failing)

        def plain_thread() -> None:
            call = failing.fail("from a thread")
            with pytest.raises(Oops):  # a sibling, retrieved: not reported
                failing.fail("retrieved").result()
            while not call.done():
                failing.ok().result()
            del call
            gc.collect()

        await asyncio.to_thread(plain_thread)

    with caplog.at_level(logging.ERROR, logger="aptio"):
        aptio.run(body)
    records = [r for r in caplog.records if r.name == "aptio"]
    assert len(records) == 1
    assert "exception was never retrieved" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert str(records[0].exc_info[1]) == "from a thread"


def test_errors_of_calls_failed_at_shutdown_are_reported_when_nobody_awaits_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Queued calls failed by their apartment's shutdown are errors too (DisconnectedError);
    dropped unawaited, they are reported like any other."""
    kept: list[Callable[[], Any]] = []

    async def body() -> None:
        sta = await aptio.start_sta()
        failing = await sta.create(Failing)
        blocker = failing.fail_later("never")  # still running when the apartment stops
        await apartment_barrier(sta)
        await sta.shutdown(timeout=0)
        kept.append(lambda: blocker)

    with caplog.at_level(logging.ERROR, logger="aptio"):
        aptio.run(body)
        kept.clear()
        gc.collect()
    messages = [r.getMessage() for r in caplog.records if r.name == "aptio"]
    assert len(messages) == 1 and "Failing.fail_later()" in messages[0]
