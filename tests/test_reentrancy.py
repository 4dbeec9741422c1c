"""Reentrancy policies (COM: the STA modal loop; WinRT's ASTA) and deadlock detection."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

import aptio
from aptio import Reentrancy


class Journal:
    """An object that logs entries/exits and can park a call until released."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.parked = asyncio.Event()
        self.release = asyncio.Event()

    async def park(self, tag: str) -> None:
        self.log.append(f"enter {tag}")
        self.parked.set()
        await self.release.wait()
        self.log.append(f"exit {tag}")

    async def quick(self, tag: str) -> None:
        self.log.append(f"quick {tag}")

    # The test's own probes must not queue behind a parked call: they interleave.
    @aptio.with_reentrancy(Reentrancy.INTERLEAVE)
    async def wait_parked(self) -> None:
        await self.parked.wait()

    @aptio.with_reentrancy(Reentrancy.INTERLEAVE)
    def open(self) -> None:
        self.release.set()

    @aptio.with_reentrancy(Reentrancy.INTERLEAVE)
    def entries(self) -> list[str]:
        return list(self.log)

    async def call_back(self, other: Any, me: Any) -> str:
        return await other.forward(me)  # type: ignore[no-any-return]

    async def leaf(self) -> str:
        return "leaf"


@aptio.coclass(reentrancy=Reentrancy.INTERLEAVE)
class Interleaved(Journal):
    pass


@aptio.coclass(reentrancy=Reentrancy.CALL_CHAIN)
class Chained(Journal):
    @aptio.with_reentrancy(Reentrancy.INTERLEAVE)
    def peek(self) -> list[str]:
        return list(self.log)


@aptio.coclass(reentrancy=Reentrancy.NONE)
class Strict(Journal):
    pass


@aptio.coclass
class Forwarder:
    async def forward(self, target: Any) -> str:
        return await target.leaf()  # type: ignore[no-any-return]


@pytest.mark.asyncio
async def test_interleave_lets_other_chains_in_at_awaits(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    obj = await sta.create(Interleaved)
    first = obj.park("a")
    await obj.wait_parked()
    await obj.quick("b")  # runs while "a" is suspended
    await obj.open()
    await first
    assert await obj.entries() == ["enter a", "quick b", "exit a"]


@pytest.mark.asyncio
async def test_call_chain_holds_other_chains_until_the_call_ends(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    obj = await sta.create(Chained)
    first = obj.park("a")
    await obj.wait_parked()
    second = obj.quick("b")  # another chain: queued at the gate
    assert await obj.peek() == ["enter a"]  # an INTERLEAVE method is let in meanwhile
    assert not second.done()
    await obj.open()
    await first
    await second
    assert await obj.entries() == ["enter a", "exit a", "quick b"]


@pytest.mark.asyncio
async def test_call_chain_lets_its_own_chain_back_in(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    other = await aptio.start_sta()
    obj = await sta.create(Chained)
    forwarder = await other.create(Forwarder)
    assert await obj.call_back(forwarder, obj) == "leaf"


@pytest.mark.asyncio
async def test_none_raises_deadlock_on_a_same_chain_reentry(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    other = await aptio.start_sta()
    obj = await sta.create(Strict)
    forwarder = await other.create(Forwarder)
    with pytest.raises(aptio.DeadlockError, match=r"re-entered Strict .*policy is NONE"):
        await obj.call_back(forwarder, obj)
    assert await obj.leaf() == "leaf"  # the object is usable afterwards


@pytest.mark.asyncio
async def test_none_serializes_other_chains(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    obj = await sta.create(Strict)
    first = obj.park("a")
    await obj.wait_parked()
    second = obj.quick("b")
    third = obj.quick("c")
    assert not second.done()
    await obj.open()
    await asyncio.gather(first, second, third)
    assert await obj.entries() == ["enter a", "exit a", "quick b", "quick c"]


def test_with_reentrancy_checks_its_input() -> None:
    with pytest.raises(TypeError, match=r"aptio\.Reentrancy"):
        aptio.with_reentrancy("none")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decorates methods"):
        aptio.with_reentrancy(Reentrancy.NONE)(Interleaved)
    with pytest.raises(TypeError, match=r"must be an aptio\.Reentrancy"):
        aptio.coclass(reentrancy="none")  # type: ignore[call-overload]


@pytest.mark.asyncio
async def test_a_reentrancy_policy_on_a_non_coclass_is_a_type_error(
    main: aptio.Apartment,
) -> None:
    class Plain:
        @aptio.with_reentrancy(Reentrancy.NONE)
        def work(self) -> None:
            pass  # pragma: no cover

    with pytest.raises(TypeError, match=r"not a coclass"):
        await aptio.create(Plain)


@aptio.coclass(reentrancy=Reentrancy.CALL_CHAIN)
class Party:
    """Holds its gate while it calls the other party: two of these in two chains deadlock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def hold_then_call(self, other: Any) -> str:
        self.entered.set()
        await self.go.wait()
        return await other.reply(self.name)  # type: ignore[no-any-return]

    async def reply(self, caller: str) -> str:
        return f"{self.name} answered {caller}"

    @aptio.with_reentrancy(Reentrancy.INTERLEAVE)
    async def wait_entered(self) -> None:
        await self.entered.wait()

    @aptio.with_reentrancy(Reentrancy.INTERLEAVE)
    def start(self) -> None:
        self.go.set()


@pytest.mark.asyncio
async def test_a_cycle_between_two_chains_raises_deadlock_in_one_waiter(
    main: aptio.Apartment,
) -> None:
    left_sta = await aptio.start_sta("left")
    right_sta = await aptio.start_sta("right")
    left = await left_sta.create(Party, "L")
    right = await right_sta.create(Party, "R")
    first = left.hold_then_call(right)  # chain 1 holds L, will wait for R
    second = right.hold_then_call(left)  # chain 2 holds R, will wait for L
    await left.wait_entered()
    await right.wait_entered()
    await left.start()
    await right.start()
    results = await asyncio.gather(first, second, return_exceptions=True)
    errors = [r for r in results if isinstance(r, aptio.DeadlockError)]
    answers = [r for r in results if isinstance(r, str)]
    assert len(errors) == 1
    assert len(answers) == 1
    message = str(errors[0])
    assert "Party.reply()" in message
    assert "Party.hold_then_call()" in message
    assert "'left'" in message
    assert "'right'" in message


@pytest.mark.asyncio
async def test_queued_calls_that_form_no_cycle_never_raise(main: aptio.Apartment) -> None:
    sta = await aptio.start_sta()
    other = await aptio.start_sta()
    a = await sta.create(Party, "A")
    b = await other.create(Party, "B")
    await a.start()
    await b.start()
    # Many chains pile up at both gates, but nobody holds one gate while waiting on the other
    # in a cycle: everything must complete, with no DeadlockError.
    calls = [a.reply(str(i)) for i in range(50)] + [b.reply(str(i)) for i in range(50)]
    calls += [a.hold_then_call(b) for _ in range(10)]
    results = await asyncio.gather(*calls)
    assert len(results) == 110


@pytest.mark.asyncio
async def test_blocking_waits_on_mta_threads_join_the_deadlock_graph(
    main: aptio.Apartment,
) -> None:
    @aptio.coclass(aptio.ThreadingModel.FREE, reentrancy=Reentrancy.NONE)
    class Ledger:
        def post(self, bank: Any) -> str:
            return bank.confirm(self_proxy[0]).result(timeout=30)  # type: ignore[no-any-return]

        def audit(self) -> str:
            return "audited"

    @aptio.coclass
    class Bank:
        async def confirm(self, ledger: Any) -> str:
            return await ledger.audit()  # type: ignore[no-any-return]

    sta = await aptio.start_sta()
    ledger = await aptio.create(Ledger)
    self_proxy = [ledger]
    bank = await sta.create(Bank)
    with pytest.raises(aptio.DeadlockError, match=r"re-entered \S*Ledger in 'MTA'"):
        await ledger.post(bank)
    self_proxy.clear()  # the class's methods hold this list: the proxy would outlive the test


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(4))
async def test_random_call_graphs_with_random_policies(main: aptio.Apartment, seed: int) -> None:
    """Every call resolves exactly once (a result, DeadlockError, or cancellation) in bounded
    time; objects that are all INTERLEAVE never see DeadlockError."""
    rng = random.Random(seed)
    stas = [await aptio.start_sta() for _ in range(4)]
    policies = [Reentrancy.INTERLEAVE, Reentrancy.CALL_CHAIN, Reentrancy.NONE]
    classes = {policy: aptio.coclass(reentrancy=policy)(type(f"Node_{policy.name}", (_Node,),
                                                            {})) for policy in policies}
    nodes: list[Any] = []
    gated = False
    for index in range(8):
        policy = rng.choice(policies)
        gated = gated or policy is not Reentrancy.INTERLEAVE
        if index % 4 == 3:
            free = aptio.coclass(aptio.ThreadingModel.FREE, reentrancy=policy)(
                type(f"Free_{policy.name}", (_Node,), {}))
            nodes.append(await aptio.create(free))
        else:
            nodes.append(await stas[index % 4].create(classes[policy]))
    calls = []
    for _ in range(120):
        path = [rng.randrange(len(nodes)) for _ in range(rng.randrange(1, 5))]
        call = nodes[path[0]].walk([nodes[i] for i in path[1:]])
        if rng.random() < 0.1:
            call.cancel()
        calls.append(call)
    async with asyncio.timeout(30):
        results = await asyncio.gather(*calls, return_exceptions=True)
    kinds = {type(r).__name__ for r in results}
    assert kinds <= {"int", "DeadlockError", "CancelledError"}, kinds
    assert len(results) == 120


class _Node:
    async def walk(self, rest: list[Any]) -> int:
        await asyncio.sleep(0)
        if not rest:
            return 1
        head, *tail = rest
        return 1 + await head.walk(tail)  # type: ignore[no-any-return]


@pytest.mark.asyncio
async def test_all_interleave_graphs_never_deadlock(main: aptio.Apartment) -> None:
    rng = random.Random(99)
    stas = [await aptio.start_sta() for _ in range(3)]
    node_cls = aptio.coclass(type("Open", (_Node,), {}))
    nodes = [await sta.create(node_cls) for sta in stas for _ in range(2)]
    calls = [nodes[rng.randrange(6)].walk([nodes[rng.randrange(6)] for _ in range(3)])
             for _ in range(200)]
    assert await asyncio.gather(*calls) == [4] * 200


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(3))
async def test_deadlock_error_only_for_a_real_cycle_one_chain_at_a_time(
    main: aptio.Apartment, seed: int
) -> None:
    """With one chain at a time no cross-chain cycle can exist, so the exact oracle is: a
    walk fails with DeadlockError iff it re-enters a NONE object it is already inside."""
    rng = random.Random(seed)
    stas = [await aptio.start_sta() for _ in range(3)]
    policies = [rng.choice(list(Reentrancy)) for _ in range(6)]
    nodes: list[Any] = []
    for index, policy in enumerate(policies):
        cls = aptio.coclass(reentrancy=policy)(type(f"N{index}", (_Node,), {}))
        nodes.append(await stas[index % 3].create(cls))
    for _ in range(150):
        path = [rng.randrange(6) for _ in range(rng.randrange(1, 5))]
        strict_reentry = any(
            policies[node] is Reentrancy.NONE and node in path[:position]
            for position, node in enumerate(path)
        )
        call = nodes[path[0]].walk([nodes[i] for i in path[1:]])
        if strict_reentry:
            with pytest.raises(aptio.DeadlockError, match="policy is NONE"):
                await call
        else:
            assert await call == len(path)


@pytest.mark.asyncio
@pytest.mark.parametrize("policy", [Reentrancy.CALL_CHAIN, Reentrancy.NONE])
async def test_a_fan_out_of_one_chain_takes_turns(
    main: aptio.Apartment, policy: Reentrancy
) -> None:
    """Siblings of one chain (gather) are not nested in each other: they queue, one at a time,
    and NONE does not mistake them for a re-entry."""
    sta = await aptio.start_sta()

    @aptio.coclass(reentrancy=policy)
    class Exclusive:
        def __init__(self) -> None:
            self.inside = 0
            self.most = 0

        async def step(self) -> None:
            self.inside += 1
            self.most = max(self.most, self.inside)
            await asyncio.sleep(0)
            self.inside -= 1

        @aptio.with_reentrancy(Reentrancy.INTERLEAVE)
        def most_inside(self) -> int:
            return self.most

    @aptio.coclass
    class FanOut:
        async def run(self, target: Any) -> None:
            await asyncio.gather(*(target.step() for _ in range(20)))

    exclusive = await sta.create(Exclusive)
    fan = await (await aptio.start_sta()).create(FanOut)
    await fan.run(exclusive)
    assert await exclusive.most_inside() == 1
