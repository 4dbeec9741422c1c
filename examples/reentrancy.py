"""Reentrancy: what may run in an STA object while one of its calls awaits an outgoing call.

COM's STA keeps pumping while it waits on an outgoing call, so other calls get in: the classic
bug is a read-modify-write that spans the wait and loses an update. asyncio behaves the same at
every ``await``. ``@aptio.coclass(reentrancy=...)`` chooses, per class:

* INTERLEAVE (default): any call may run at any ``await`` (asyncio-natural, COM's STA).
* CALL_CHAIN: one logical call at a time; only calls of the same causality chain (a callback
  from the callee) are let in, as in WinRT's ASTA.
* NONE: strict turns; a re-entry from the same chain raises DeadlockError instead of hanging.

Run it: python examples/reentrancy.py
"""

from __future__ import annotations

import asyncio
from typing import Any

import aptio
from aptio import Reentrancy


@aptio.coclass  # lives in the "bank" STA
class Auditor:
    """Approves withdrawals. It may call the account back (same causality chain)."""

    async def approve(self, account: Any, amount: int, check_back: bool) -> bool:
        await asyncio.sleep(0.05)  # a slow check: plenty of time for other calls to arrive
        if check_back:
            balance: int = await account.balance()  # a callback into the caller
            return balance >= amount
        return True


class Account:
    def __init__(self, auditor: Any) -> None:
        self.auditor = auditor
        self.money = 100

    async def withdraw(self, amount: int, check_back: bool = False) -> int:
        start = self.money  # read ...
        if not await self.auditor.approve(self, amount, check_back):  # ... wait ...
            return self.money
        self.money = start - amount  # ... write: a deposit that ran during the wait is lost
        return self.money

    def deposit(self, amount: int) -> int:
        self.money += amount
        return self.money

    def balance(self) -> int:
        return self.money


@aptio.coclass(reentrancy=Reentrancy.INTERLEAVE)
class InterleavingAccount(Account):
    pass


@aptio.coclass(reentrancy=Reentrancy.CALL_CHAIN)
class CallChainAccount(Account):
    pass


@aptio.coclass(reentrancy=Reentrancy.NONE)
class StrictAccount(Account):
    pass


async def withdraw_while_depositing(cls: type[Account], auditor: Any, teller: aptio.Apartment
                                    ) -> int:
    account: Any = await teller.create(cls, auditor)
    withdrawal = account.withdraw(30)  # sent first: it starts, then awaits the auditor
    deposit = account.deposit(50)  # sent second: does it run during that await?
    await asyncio.gather(withdrawal, deposit)
    final: int = await account.balance()
    return final


async def main() -> None:
    bank = await aptio.start_sta("bank")
    teller = await aptio.start_sta("teller")
    auditor = await bank.create(Auditor)

    print("1. withdraw 30 and deposit 50 on a balance of 100 (the right answer is 120):")
    for cls in (InterleavingAccount, CallChainAccount, StrictAccount):
        final = await withdraw_while_depositing(cls, auditor, teller)
        verdict = "correct" if final == 120 else "the deposit was lost"
        print(f"   {cls.__name__:<20} -> {final} ({verdict})")

    print("2. the auditor calls the account back during the withdrawal (same call chain):")
    for cls in (InterleavingAccount, CallChainAccount, StrictAccount):
        account: Any = await teller.create(cls, auditor)
        try:
            result = f"-> {await account.withdraw(30, check_back=True)}"
        except aptio.DeadlockError as error:
            result = f"DeadlockError: {error}"
        print(f"   {cls.__name__:<20} {result}")


if __name__ == "__main__":
    aptio.run(main)
