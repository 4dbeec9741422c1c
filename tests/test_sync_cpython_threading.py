"""CPython's own threading lock tests (Lib/test/lock_tests.py) run through aptio's blocking API.

Left out, each with its reason in the skip marker: repr checks (aptio's reprs follow asyncio's
format), ``_at_fork_reinit`` (a private threading hook), and ConditionTests.test_acquire (it
needs a re-entrant default lock and accepts a threading.Lock; aptio's Condition takes an
aptio.Lock, non-reentrant, like asyncio.Condition).
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from typing import Any

import pytest

import aptio._sync as sync

lock_tests = pytest.importorskip(
    "test.lock_tests", reason="this interpreter ships without CPython's 'test' package"
)

pytestmark = pytest.mark.timeout(30)


def _skip(reason: str) -> Callable[..., None]:
    @unittest.skip(reason)
    def test(self: object) -> None:
        pass

    return test


REPR = _skip("aptio's reprs follow asyncio's format, not threading's")
FORK = _skip("_at_fork_reinit is a private hook of threading's primitives")


class _AsThreadingLock:
    """threading.Lock's signature over aptio's blocking API."""

    def __init__(self, inner: sync.Lock | sync.Condition | None = None) -> None:
        self._inner = inner if inner is not None else sync.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            if timeout != -1:
                raise ValueError("can't specify a timeout for a non-blocking call")
            try:
                self._inner.acquire_nowait()
            except sync.WouldBlock:
                return False
            return True
        return self._inner.acquire_blocking(None if timeout == -1 else timeout)

    def release(self) -> None:
        self._inner.release()

    def locked(self) -> bool:
        return self._inner.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class _AsThreadingSemaphore:
    def __init__(self, value: int = 1, *, bounded: bool = False, fair: bool = True) -> None:
        cls = sync.BoundedSemaphore if bounded else sync.Semaphore
        self._inner = cls(value, fair=fair)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking:
            if timeout is not None:
                raise ValueError("can't specify timeout for non-blocking acquire")
            try:
                self._inner.acquire_nowait()
            except sync.WouldBlock:
                return False
            return True
        return self._inner.acquire_blocking(timeout)

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError("n must be one or more")
        for _ in range(n):
            self._inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class _AsThreadingEvent:
    def __init__(self) -> None:
        self._inner = sync.Event()

    def is_set(self) -> bool:
        return self._inner.is_set()

    def set(self) -> None:
        self._inner.set()

    def clear(self) -> None:
        self._inner.clear()

    def wait(self, timeout: float | None = None) -> bool:
        return self._inner.wait_blocking(timeout)


class _AsThreadingCondition(_AsThreadingLock):
    _inner: sync.Condition

    def __init__(self, lock: Any = None) -> None:
        super().__init__(sync.Condition(lock))

    def wait(self, timeout: float | None = None) -> bool:
        return self._inner.wait_blocking(timeout)

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        return self._inner.wait_for_blocking(predicate, timeout)

    def notify(self, n: int = 1) -> None:
        self._inner.notify(n)

    def notify_all(self) -> None:
        self._inner.notify_all()


class TestCPythonLock(lock_tests.LockTests):  # type: ignore[misc,name-defined]
    locktype = staticmethod(_AsThreadingLock)
    test_repr = REPR
    test_locked_repr = REPR
    test_at_fork_reinit = FORK


class TestCPythonUnfairLock(lock_tests.LockTests):  # type: ignore[misc,name-defined]
    locktype = staticmethod(lambda: _AsThreadingLock(sync.Lock(fair=False)))
    test_repr = REPR
    test_locked_repr = REPR
    test_at_fork_reinit = FORK


class TestCPythonEvent(lock_tests.EventTests):  # type: ignore[misc,name-defined]
    eventtype = staticmethod(_AsThreadingEvent)
    test_repr = REPR
    test_at_fork_reinit = FORK


class TestCPythonCondition(lock_tests.ConditionTests):  # type: ignore[misc,name-defined]
    condtype = staticmethod(_AsThreadingCondition)
    test_acquire = _skip(
        "needs a re-entrant default lock and a threading.Lock as the lock; "
        "aptio.Condition takes a non-reentrant aptio.Lock, like asyncio.Condition"
    )


class TestCPythonSemaphore(lock_tests.SemaphoreTests):  # type: ignore[misc,name-defined]
    semtype = staticmethod(_AsThreadingSemaphore)
    test_repr = REPR


class TestCPythonBoundedSemaphore(lock_tests.BoundedSemaphoreTests):  # type: ignore[misc,name-defined]
    semtype = staticmethod(lambda value=1: _AsThreadingSemaphore(value, bounded=True))
    test_repr = REPR


class TestCPythonUnfairSemaphore(lock_tests.SemaphoreTests):  # type: ignore[misc,name-defined]
    semtype = staticmethod(lambda value=1: _AsThreadingSemaphore(value, fair=False))
    test_repr = REPR
