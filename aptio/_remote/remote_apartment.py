"""An apartment of another process, as this process sees it: calls posted here are sent there.

A :class:`RemoteApartment` implements the apartment contract by sending: ``_post`` encodes the
call (in the caller's thread, so an argument that does not pickle fails the call before
anything is sent) and hands it to the caller link of the calling thread's loop; the reply
finishes the call. Nothing of it runs in this process.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from .._apartments.base import Apartment, Owner
from .._call.context import thread_state
from .._call.contract import CallRecord, Releasable
from .._proxy.proxy import Proxy
from .._values.enums import ApartmentKind
from .._values.errors import AptioError, DisconnectedError, NotPicklableError, ProtocolError
from .._values.statistics import ApartmentStatistics
from .._wire.messages import ApartmentRef, ObjectRef
from .links import CallerLink
from .remote_stub import RemoteStub

__all__ = ["PeerView", "RemoteApartment"]

T = TypeVar("T")


class PeerView(Protocol):
    """What a remote apartment needs from the process it stands for."""

    name: str

    def gone_error(self, what: str) -> BaseException | None: ...

    def caller_link(self, apartment_id: str) -> CallerLink: ...

    def links_to(self, apartment_id: str) -> list[CallerLink]: ...

    def release(self, stub: RemoteStub) -> None: ...

    def cancel(self, call_id: int) -> None: ...

    def stub_of(self, ref: ObjectRef) -> RemoteStub | None: ...

    async def control_call(self, method: str, *args: Any) -> Any: ...


class RemoteApartment(Apartment):
    """An apartment of another process (see the module docstring)."""

    _remote = True

    __slots__ = ("_peer", "_ref")

    def __init__(self, owner: Owner, peer: PeerView, ref: ApartmentRef) -> None:
        super().__init__(owner, ApartmentKind(ref.kind), f"{ref.name} of {peer.name}",
                         f"{ref.node}/{ref.apartment_id}")
        self._peer = peer
        self._ref = ref

    @property
    def ref(self) -> ApartmentRef:
        return self._ref

    def __repr__(self) -> str:
        state = " closed" if self._closing else ""
        return f"<aptio.Apartment {self._kind.name} {self._name!r} (remote){state}>"

    # ------------------------------------------------------------------ the call contract

    def _is_current(self) -> bool:
        return False

    def _run_here(self, call: CallRecord[Any]) -> None:
        self._post(call)  # nothing runs here: an agile object's call goes there too

    def _post(self, call: CallRecord[Any]) -> None:
        target = call._target
        if not isinstance(target, ObjectRef):
            call._finish(None, AptioError(f"{call.describe()}: no object in another process"))
            return
        try:
            self._caller_link().request(call, target.object_id, self._peer.stub_of(target))
        except (NotPicklableError, ProtocolError, DisconnectedError) as failure:
            call._finish(None, failure)

    def _caller_link(self) -> CallerLink:
        """The link the calling thread's calls here take: the peer's choice for this thread,
        kept in the thread's state while the peer is there, the connection open and the thread
        in the apartment it was in (the peer picks by that apartment's loop; a thread of the
        MTA's pool and its loop thread are different threads, so that choice is fixed too)."""
        state = thread_state()
        here = state.apartment
        cached = state.caller_links.get(self)
        if cached is not None:
            apartment, link = cached
            if apartment is here and _usable(link):
                return link  # type: ignore[no-any-return]
        link = self._peer.caller_link(self._ref.apartment_id)
        links = state.caller_links
        for key, (_, old) in list(links.items()):  # a miss: forget links closed since
            if not _usable(old):
                del links[key]
        links[self] = (here, link)
        return link

    def _cancel_elsewhere(self, call: CallRecord[Any]) -> None:
        for link in self._peer.links_to(self._ref.apartment_id):
            call_id = link.ids.get(call)
            if call_id is not None:
                # On the control connection: the call's own thread there may be busy in it.
                self._peer.cancel(call_id)
                return

    def _marshal_result(self, value: Any) -> Any:
        raise AssertionError("no call runs in a remote apartment here")

    def _run_blocking(self, coro: Coroutine[Any, Any, None]) -> None:
        coro.close()
        raise AssertionError("no call runs in a remote apartment here")

    def _release(self, holder: Releasable) -> None:
        if isinstance(holder, RemoteStub):
            self._peer.release(holder)
        holder.take_object()

    # ------------------------------------------------------------------ public API

    async def create_there(self, cls: type[T], args: tuple[Any, ...],
                           kwargs: dict[str, Any]) -> Proxy[T]:
        """Create ``cls(*args, **kwargs)`` in this apartment of the other process (its
        threading model decides, there, where it lives): ``create`` comes here."""
        proxy: Proxy[T] = await self._peer.control_call(
            "create", self._ref.apartment_id, cls, args, kwargs)
        return proxy

    async def shutdown(self, timeout: float | None = None) -> None:
        """Shut this apartment of the other process down (its objects' calls then fail)."""
        if self._closing:
            return
        self._closing = True
        if self._peer.gone_error("shutdown") is None:
            await self._peer.control_call("shutdown_apartment", self._ref.apartment_id, timeout)

    def set_message_filter(self, message_filter: Any) -> Any:
        raise AptioError(
            f"{self._name!r} lives in another process: install its message filter from code "
            "running there (aptio.current_apartment().set_message_filter(...))"
        )

    def statistics(self) -> ApartmentStatistics:
        """What this process knows: calls sent there and not answered yet."""
        waiting = sum(len(link.pending) for link in self._peer.links_to(self._ref.apartment_id))
        return ApartmentStatistics(name=self._name, kind=self._kind, closed=self._closing,
                                   queued=waiting, running=0, awaiting=0,
                                   has_message_filter=False)


def _usable(link: CallerLink) -> bool:
    """A kept link still carries calls: its peer is there and its connection open."""
    connection = link.connection
    return not link.peer_gone and connection is not None and not connection.closed
