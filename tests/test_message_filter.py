"""Message filters (COM: IMessageFilter): the target STA's verdict on incoming calls and the
calling STA's retry policy for rejected ones."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import aptio
from aptio import CallType, ServerCall


@aptio.coclass
class Service:
    def __init__(self) -> None:
        self.runs = 0

    def work(self) -> str:
        self.runs += 1
        return "done"

    def count(self) -> int:
        return self.runs


class Verdicts(aptio.MessageFilter):
    """Answers from a script, then ISHANDLED; records what it saw."""

    def __init__(self, *script: ServerCall) -> None:
        self.script = list(script)
        self.seen: list[tuple[str, CallType]] = []

    def handle_incoming_call(self, info: aptio.CallInfo) -> ServerCall:
        self.seen.append((info.method, info.call_type))
        return self.script.pop(0) if self.script else ServerCall.ISHANDLED


class Retry(aptio.MessageFilter):
    def __init__(self, *delays: float | None) -> None:
        self.delays = list(delays)
        self.asked: list[tuple[float, ServerCall]] = []

    def retry_rejected_call(
        self, info: aptio.CallInfo, elapsed: float, verdict: ServerCall
    ) -> float | None:
        self.asked.append((elapsed, verdict))
        return self.delays.pop(0) if self.delays else None


@pytest.mark.asyncio
async def test_a_rejection_with_no_caller_filter_fails_at_once(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta("busy")
    service = await sta.create(Service)
    target_filter = Verdicts(ServerCall.REJECTED)
    assert sta.set_message_filter(target_filter) is None
    with pytest.raises(aptio.CallRejectedError, match=r"REJECTED by the message filter of 'busy'"):
        await service.work()
    assert await service.count() == 0  # it never ran
    assert target_filter.seen[0] == ("work", CallType.TOPLEVEL)


@pytest.mark.asyncio
async def test_the_callers_filter_retries_until_handled(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    service = await sta.create(Service)
    sta.set_message_filter(Verdicts(ServerCall.RETRYLATER, ServerCall.RETRYLATER))
    retry = Retry(0.0, 0.001)
    previous = main.set_message_filter(retry)
    assert previous is None
    assert await service.work() == "done"
    assert [verdict for _, verdict in retry.asked] == [ServerCall.RETRYLATER] * 2
    assert retry.asked[0][0] <= retry.asked[1][0]  # elapsed grows
    assert await service.count() == 1  # ran exactly once


@pytest.mark.asyncio
async def test_the_caller_gives_up_on_none_or_a_negative_delay(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    service = await sta.create(Service)
    sta.set_message_filter(Verdicts(*[ServerCall.REJECTED] * 3))
    main.set_message_filter(Retry(0.0, None))
    with pytest.raises(aptio.CallRejectedError):
        await service.work()
    main.set_message_filter(Retry(-1.0))
    with pytest.raises(aptio.CallRejectedError):
        await service.work()
    assert await service.count() == 0


@pytest.mark.asyncio
async def test_a_plain_thread_caller_gives_up_at_once(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    service = await sta.create(Service)
    sta.set_message_filter(Verdicts(ServerCall.RETRYLATER))

    def blocking() -> None:
        with pytest.raises(aptio.CallRejectedError):
            service.work().result(timeout=30)

    await asyncio.to_thread(blocking)


@pytest.mark.asyncio
async def test_a_filter_that_raises_fails_the_call_and_the_apartment_keeps_serving(
    main: aptio.Apartment,
) -> None:
    class Broken(aptio.MessageFilter):
        def __init__(self) -> None:
            self.calls = 0

        def handle_incoming_call(self, info: aptio.CallInfo) -> ServerCall:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("filter bug")
            return ServerCall.ISHANDLED

    sta = await aptio.start_sta()
    service = await sta.create(Service)
    sta.set_message_filter(Broken())
    with pytest.raises(aptio.AptioError, match=r"raised RuntimeError") as info:
        await service.work()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert await service.work() == "done"


@pytest.mark.asyncio
async def test_a_filter_answering_nonsense_fails_the_call(main: aptio.Apartment) -> None:
    class Nonsense(aptio.MessageFilter):
        def handle_incoming_call(self, info: aptio.CallInfo) -> ServerCall:
            return "yes"  # type: ignore[return-value]

    sta = await aptio.start_sta()
    service = await sta.create(Service)
    sta.set_message_filter(Nonsense())
    with pytest.raises(aptio.AptioError, match=r"must return an aptio.ServerCall"):
        await service.work()
    sta.set_message_filter(None)
    assert await service.work() == "done"


@pytest.mark.asyncio
async def test_retry_delay_must_be_a_number(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    service = await sta.create(Service)
    sta.set_message_filter(Verdicts(ServerCall.RETRYLATER))
    main.set_message_filter(Retry("soon"))  # type: ignore[arg-type]
    with pytest.raises(aptio.AptioError, match=r"seconds \(a number\) or None"):
        await service.work()


@pytest.mark.asyncio
async def test_only_stas_take_filters(main: aptio.Apartment) -> None:
    with pytest.raises(aptio.AptioError, match=r"only STAs have message filters"):
        aptio.mta().set_message_filter(aptio.MessageFilter())
    with pytest.raises(TypeError, match=r"subclass aptio.MessageFilter"):
        main.set_message_filter(object())  # type: ignore[arg-type]
    first = aptio.MessageFilter()
    assert main.set_message_filter(first) is None
    assert main.message_filter is first
    assert main.set_message_filter(None) is first


@pytest.mark.asyncio
async def test_same_apartment_calls_are_not_filtered(main: aptio.Apartment) -> None:
    service = await aptio.create(Service)
    rejecting = Verdicts(*[ServerCall.REJECTED] * 10)
    main.set_message_filter(rejecting)
    assert await service.work() == "done"
    assert rejecting.seen == []


@pytest.mark.asyncio
async def test_the_filter_sees_nested_and_callpending_call_types(main: aptio.Apartment) -> None:
    a = await aptio.start_sta("A")
    b = await aptio.start_sta("B")

    @aptio.coclass
    class Caller:
        async def around(self, peer: Any, me: Any) -> str:
            return await peer.back(me)  # type: ignore[no-any-return]

        def ping(self) -> str:
            return "pong"

    @aptio.coclass
    class Peer:
        def __init__(self) -> None:
            self.release = threading.Event()

        async def back(self, caller: Any) -> str:
            return await caller.ping()  # type: ignore[no-any-return]

    caller = await a.create(Caller)
    peer = await b.create(Peer)
    seen = Verdicts()
    a.set_message_filter(seen)
    assert await caller.around(peer, caller) == "pong"
    assert ("ping", CallType.NESTED) in seen.seen
    assert ("around", CallType.TOPLEVEL) in seen.seen


@pytest.mark.asyncio
async def test_rejected_calls_in_gather_are_retried_by_the_callers_filter(
    main: aptio.Apartment,
) -> None:
    sta = await aptio.start_sta()
    service = await sta.create(Service)
    sta.set_message_filter(Verdicts(*[ServerCall.RETRYLATER] * 4))
    main.set_message_filter(Retry(0.0, 0.0, 0.0, 0.0))
    assert await asyncio.gather(service.work(), service.work()) == ["done", "done"]
    assert await service.count() == 2
    sta.set_message_filter(Verdicts(ServerCall.REJECTED))
    main.set_message_filter(None)
    results = await asyncio.gather(service.work(), service.work(), return_exceptions=True)
    assert isinstance(results[0], aptio.CallRejectedError)
    assert results[1] == "done"
