"""Process state: the runtime, its apartments, and the entry points that start and stop it.

One runtime per process at a time (COM: one main STA, at most one MTA, one NA). ``aptio.run``
and ``aptio.main_sta()`` create it and, on the way out, shut every apartment down and clear it,
so a process may run aptio again afterwards (tests do, once per test).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Final, TypeVar

from . import _debug as debug_mode
from ._apartment import Apartment
from ._debug import debug_enabled_by_environment
from ._exceptions import ChangedModeError, DisconnectedError, NotInitializedError
from ._loops import loop_factory, running_loop
from ._marshal import clear_tables
from ._models import Placement, placement, spec_of
from ._mta import MTA
from ._neutral import NeutralApartment
from ._proxy import Proxy
from ._signal import OneShot
from ._sta import STA
from ._state import current_apartment, set_implicit_mta, thread_apartment
from ._transport import REFERENCE, transport_mode

__all__ = ["Runtime", "run", "main_sta", "start_sta", "mta", "create", "current_apartment",
           "get_runtime", "DEFAULT_SHUTDOWN_TIMEOUT"]

T = TypeVar("T")

#: How long running calls get to finish when ``aptio.run``/``main_sta`` shut everything down.
DEFAULT_SHUTDOWN_TIMEOUT: Final = 5.0

_NO_RUNTIME: Final = (
    "no aptio runtime is running; start one with aptio.run(main) or, inside a running event "
    "loop, `async with aptio.main_sta():`"
)


class Runtime:
    """The apartments of one aptio session in this process."""

    def __init__(self, *, use_uvloop: bool | None, mta_workers: int | None,
                 transport: str | None, shutdown_timeout: float | None,
                 debug: bool | None = None) -> None:
        loop_factory(use_uvloop)  # fail early if uvloop was asked for and is missing
        self.use_uvloop = use_uvloop
        self.mta_workers = mta_workers
        self.reference_transport = (transport or transport_mode()) == REFERENCE
        self.shutdown_timeout = shutdown_timeout
        self.debug = debug_enabled_by_environment() if debug is None else debug
        self._lock = threading.Lock()
        self.main: STA | None = None
        self.neutral = NeutralApartment(self)
        self._mta: MTA | None = None
        self._host: STA | None = None
        self._host_ready: OneShot | None = None
        self._stas: list[STA] = []
        self._names = itertools.count(1)
        self._closing = False

    # ------------------------------------------------------------------ apartments

    def mta(self) -> MTA:
        mta = self._mta
        if mta is None:
            with self._lock:
                self._check_open()
                mta = self._mta
                if mta is None:
                    mta = MTA(self, self.mta_workers)
                    self._mta = mta
                    set_implicit_mta(mta)
        return mta

    async def start_sta(self, name: str | None, use_uvloop: bool | None) -> STA:
        with self._lock:
            self._check_open()
            label = name if name is not None else f"STA-{next(self._names)}"
        sta = await STA.spawn(self, label, self.use_uvloop if use_uvloop is None else use_uvloop)
        with self._lock:
            self._stas.append(sta)
            closing = self._closing
        if closing:  # the runtime began shutting down while this STA started
            await sta.shutdown()
            self._check_open()
        return sta

    async def host_sta(self) -> STA:
        """The host STA (COM_SPEC A3), started by the first creator that needs it."""
        with self._lock:
            ready = self._host_ready
            starter = ready is None
            if starter:
                ready = self._host_ready = OneShot()
        assert ready is not None
        if not starter:
            await ready.wait()
            if self._host is None:
                raise DisconnectedError("the host STA failed to start; see the first creator's "
                                        "error")
            return self._host
        try:
            host = await self.start_sta("host STA", None)
            self._host = host
        except BaseException:
            with self._lock:
                self._host_ready = None
            raise
        finally:
            ready.set()
        return host

    def apartments(self) -> list[Apartment]:
        """Every apartment of this runtime that exists right now (main STA first)."""
        with self._lock:
            found: list[Apartment] = [self.main] if self.main is not None else []
            found.extend(self._stas)
            if self._mta is not None:
                found.append(self._mta)
            found.append(self.neutral)
        return found

    def _forget(self, apartment: Apartment) -> None:
        with self._lock:
            if apartment in self._stas:
                self._stas.remove(apartment)

    def _check_open(self) -> None:
        if self._closing:
            raise DisconnectedError("the aptio runtime is shutting down; no new apartments")

    # ------------------------------------------------------------------ creation

    async def create_from(self, creator: Apartment, cls: type[T], args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> Proxy[T]:
        if not isinstance(cls, type):
            raise TypeError(
                f"aptio.create() needs a class, not {type(cls).__qualname__} {cls!r}"
            )
        model = spec_of(cls).model
        where = placement(model, creator.kind, _on_sta_thread())
        target = await self._resolve(where, creator)
        if target.is_closed:
            raise target._disconnected_error(f"{cls.__qualname__}.__init__")
        proxy: Proxy[T] = await target._construct(cls, args, kwargs)
        return proxy

    async def _resolve(self, where: Placement, creator: Apartment) -> Apartment:
        if where is Placement.SAME:
            return creator
        if where is Placement.MAIN_STA:
            assert self.main is not None
            return self.main
        if where is Placement.MTA:
            return self.mta()
        if where is Placement.NEUTRAL:
            return self.neutral
        if where is Placement.THREAD_STA:
            apartment = thread_apartment()
            assert apartment is not None
            return apartment
        return await self.host_sta()

    # ------------------------------------------------------------------ shutdown

    async def shutdown_all(self, timeout: float | None) -> None:
        """Stop every apartment: other STAs (the host too) in parallel, then the MTA, then the
        main STA. Threads are joined; nothing is left pending."""
        with self._lock:
            self._closing = True
            stas = list(self._stas)
        results = await asyncio.gather(*(sta.shutdown(timeout) for sta in stas),
                                       return_exceptions=True)
        if self._mta is not None:
            await self._mta.shutdown(timeout)
        await self.neutral.shutdown(timeout)
        if self.main is not None:
            await self.main.shutdown(timeout)
        set_implicit_mta(None)
        clear_tables()  # tokens and table entries of this runtime's apartments
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            raise errors[0]


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    runtime = _runtime
    if runtime is None:
        raise NotInitializedError(_NO_RUNTIME)
    return runtime


def _on_sta_thread() -> bool:
    apartment = thread_apartment()
    return apartment is not None and apartment.kind.is_sta


class main_sta:
    """Adopt the running event loop and its thread as the main STA for the ``async with``
    block; on exit every apartment is shut down (threads joined).

    With ``use_uvloop=None`` new STAs run the same kind of loop as the adopted one.

    For code that already runs a loop: pytest-asyncio tests, GUI loops, existing apps.
    """

    def __init__(self, *, mta_workers: int | None = None, use_uvloop: bool | None = None,
                 transport: str | None = None,
                 shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
                 debug: bool | None = None) -> None:
        self._options = {"use_uvloop": use_uvloop, "mta_workers": mta_workers,
                         "transport": transport, "shutdown_timeout": shutdown_timeout,
                         "debug": debug}
        self._runtime: Runtime | None = None

    async def __aenter__(self) -> Apartment:
        global _runtime
        loop = asyncio.get_running_loop()
        here = thread_apartment()
        if here is not None:
            raise ChangedModeError(
                f"this thread already belongs to {here.name!r}; a thread's apartment never "
                "changes: use `await aptio.start_sta()` for another STA"
            )
        with _runtime_lock:
            if _runtime is not None:
                main = _runtime.main
                where = main._thread.name if main is not None and main._thread else "?"
                raise ChangedModeError(
                    f"an aptio runtime is already running (main STA on thread {where!r}); "
                    "one process has one main STA: use `await aptio.start_sta()` here instead"
                )
            options = dict(self._options)
            if options["use_uvloop"] is None:
                # New STAs run the same kind of loop as the one adopted (uvloop or asyncio).
                options["use_uvloop"] = type(loop).__module__.startswith("uvloop")
            runtime = Runtime(**options)  # type: ignore[arg-type]
            runtime.main = STA.adopt(runtime, loop)
            _runtime = runtime
            if runtime.debug:
                debug_mode.enable()
        self._runtime = runtime
        return runtime.main

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _runtime
        runtime = self._runtime
        assert runtime is not None
        try:
            await runtime.shutdown_all(runtime.shutdown_timeout)
        finally:
            if runtime.debug:
                debug_mode.disable()
            with _runtime_lock:
                if _runtime is runtime:
                    _runtime = None


def run(
    main: Coroutine[Any, Any, T] | Callable[[], Awaitable[T]],
    *,
    use_uvloop: bool | None = None,
    mta_workers: int | None = None,
    transport: str | None = None,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    debug: bool | None = None,
) -> T:
    """Run ``main`` with the calling thread as the main STA; return its result.

    ``main`` is a coroutine or a coroutine function. The loop is uvloop when installed (unless
    ``use_uvloop=False``). On the way out every apartment is shut down and every thread joined.
    ``debug=True`` (or ``APTIO_DEBUG=1``) makes raw coclass instances refuse method use from
    outside their home apartment (WrongApartmentError), to catch leaked objects.
    """
    if running_loop() is not None or thread_apartment() is not None:
        if inspect.iscoroutine(main):
            main.close()  # never awaited: close it so no "never awaited" warning follows
        raise ChangedModeError(
            "aptio.run() cannot be called from a running event loop or an apartment thread; "
            "use `async with aptio.main_sta():` inside an existing loop"
        )

    async def body() -> T:
        async with main_sta(use_uvloop=use_uvloop, mta_workers=mta_workers,
                            transport=transport, shutdown_timeout=shutdown_timeout,
                            debug=debug):
            awaitable = main() if callable(main) else main
            return await awaitable

    with asyncio.Runner(loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(body())


async def start_sta(name: str | None = None, *, use_uvloop: bool | None = None) -> Apartment:
    """Start a new STA (an event loop on its own thread); returns once its loop runs."""
    return await get_runtime().start_sta(name, use_uvloop)


def mta() -> Apartment:
    """The process's MTA, created on first use."""
    return get_runtime().mta()


async def create(cls: type[T], *args: Any, **kwargs: Any) -> Proxy[T]:
    """Create ``cls(*args, **kwargs)`` where its threading model puts it (COM's
    CoCreateInstance) and return a proxy, also when it lands in the caller's own apartment."""
    runtime = get_runtime()
    creator = current_apartment()
    if creator is None:
        creator = runtime.mta()  # a thread in no apartment joins the MTA implicitly
    return await runtime.create_from(creator, cls, args, kwargs)
