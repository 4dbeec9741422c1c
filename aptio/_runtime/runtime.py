"""The runtime: the apartments of one aptio session in this process (COM: one main STA, at most
one MTA, one NA, STAs started on demand), creation by the matrix, and shutdown of them all."""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any, TypeVar, cast

from .._apartments.base import Apartment, Owner
from .._apartments.mta import MTA
from .._apartments.neutral import NeutralApartment
from .._apartments.sta import STA
from .._call.context import set_implicit_mta, thread_apartment
from .._marshal.shared import clear_tables
from .._proxy.proxy import Proxy
from .._remote.node import Node
from .._remote.remote_apartment import RemoteApartment
from .._sync.event import Event
from .._threads.idle_spin import idle_waiter, validate_idle_spin
from .._threads.loops import loop_factory
from .._values.declarations import ServerClass, server_class_of, spec_of
from .._values.errors import DisconnectedError
from .._values.placement import Placement, placement
from .debug_mode import debug_enabled_by_environment
from .servers import Servers, qualified_name
from .session import (
    CLIENT_NAME,
    Session,
    joined_session,
    new_session,
    remove_session_directory,
)

__all__ = ["Runtime"]

T = TypeVar("T")


class Runtime(Owner):
    """The apartments of one aptio session in this process."""

    def __init__(self, *, use_uvloop: bool | None, mta_workers: int | None,
                 shutdown_timeout: float | None, debug: bool | None = None) -> None:
        loop_factory(use_uvloop)  # fail early if uvloop was asked for and is missing
        self.use_uvloop = use_uvloop
        self.mta_workers = mta_workers
        self.shutdown_timeout = shutdown_timeout
        self.debug = debug_enabled_by_environment() if debug is None else debug
        self._lock = threading.Lock()
        self.main: STA | None = None
        self.neutral = NeutralApartment(self)
        self._mta: MTA | None = None
        self._host: STA | None = None
        self._host_ready: Event | None = None
        self._stas: list[STA] = []
        self._names = itertools.count(1)
        self._closing = False
        self._session: Session | None = joined_session()
        self._node: Node | None = None
        self._servers: Servers | None = None

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

    async def start_sta(self, name: str | None, use_uvloop: bool | None,
                        idle_spin: float = 0.0) -> STA:
        waiter = idle_waiter(validate_idle_spin(idle_spin))
        with self._lock:
            self._check_open()
            label = name if name is not None else f"STA-{next(self._names)}"
        sta = await STA.spawn(self, label, self.use_uvloop if use_uvloop is None else use_uvloop,
                              waiter)
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
                ready = self._host_ready = Event()
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

    def apartment_by_id(self, apartment_id: str) -> Apartment | None:
        """A running apartment of this process by id (for calls from other processes)."""
        if apartment_id == "main":
            return self.main
        if apartment_id == "mta":
            return None if self._closing else self.mta()
        if apartment_id == "na":
            return self.neutral
        with self._lock:
            return next((sta for sta in self._stas if sta.apartment_id == apartment_id), None)

    # ------------------------------------------------------------------ other processes

    def node(self) -> Node:
        """This process as one of a session of processes (made on first need)."""
        with self._lock:
            node = self._node
            if node is None:
                self._check_open()
                session = self._session
                if session is None:
                    session = self._session = new_session()
                node = Node(self, session.name, session.key, session.directory,
                            session.max_message_size, self.use_uvloop, self.apartment_by_id)
                self._node = node
            return node

    def existing_node(self) -> Node | None:
        """This process's node if it has one (None: it never talked to another process)."""
        return self._node

    @property
    def session(self) -> Session:
        self.node()
        assert self._session is not None
        return self._session

    def join(self, key: bytes, directory: str) -> None:
        """Join the session of a server reached by its credentials (before this process began
        one of its own); a process belongs to one session."""
        with self._lock:
            if self._session is None and self._node is None:
                self._session = Session(key, directory, CLIENT_NAME, False)
                return
        if self.session.key != key:
            raise DisconnectedError(
                "these credentials belong to another session: a process belongs to one "
                "session (its own servers', or the first one it connected to)")

    def servers(self) -> Servers:
        node = self.node()
        with self._lock:
            if self._servers is None:
                assert self._session is not None
                self._servers = Servers(node, self._session, self.use_uvloop)
            return self._servers

    def serves(self, registration: ServerClass, cls: type) -> bool:
        """True if this process is the server ``cls``'s instances live in."""
        session = self._session
        if session is None or session.root:
            return False
        if registration.single_use:
            return session.serves == qualified_name(cls)
        return session.name == registration.name

    def forget(self, apartment: Apartment) -> None:
        with self._lock:
            if isinstance(apartment, STA) and apartment in self._stas:
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
        if creator._remote:  # an apartment of another process (no ABC isinstance: hot path)
            there: Proxy[T] = await cast(RemoteApartment, creator).create_there(cls, args,
                                                                                kwargs)
            return there
        registration = server_class_of(cls)
        if registration is not None and not self.serves(registration, cls):
            server = await self.servers().for_class(registration, cls)
            served: Proxy[T] = await server.create(cls, *args, **kwargs)
            return served
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
            assert isinstance(apartment, Apartment)
            return apartment
        return await self.host_sta()

    # ------------------------------------------------------------------ shutdown

    async def shutdown_all(self, timeout: float | None) -> None:
        """Stop every apartment: other STAs (the host too) in parallel, then the MTA, then the
        main STA. Threads are joined; nothing is left pending."""
        with self._lock:
            servers = self._servers
        if servers is not None:  # first: their calls into this process's objects end
            await servers.shutdown_all(timeout)
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
        node = self._node
        if node is not None:
            await asyncio.to_thread(node.close)
            if self._session is not None and self._session.root:
                remove_session_directory(self._session)
        set_implicit_mta(None)
        clear_tables()  # tokens and table entries of this runtime's apartments
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            raise errors[0]


def _on_sta_thread() -> bool:
    apartment = thread_apartment()
    return apartment is not None and apartment.kind.is_sta
