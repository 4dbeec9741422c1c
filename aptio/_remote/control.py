"""The control object every server exports (object 0, in its main STA): what other processes
ask of the server itself (create an object, start an STA, shut an apartment or the server
down, answer a ping). Its hooks come from the runtime that hosts it."""

from __future__ import annotations

import abc
import os
from typing import Any

from .._apartments.base import Apartment
from .._proxy.proxy import Proxy
from .._values.declarations import coclass
from .._values.errors import DisconnectedError
from .._wire.messages import ApartmentRef

__all__ = ["ControlHooks", "NodeControl"]


class ControlHooks(abc.ABC):
    """What the control object needs from the runtime hosting the server."""

    @abc.abstractmethod
    def apartment(self, apartment_id: str) -> Apartment | None:
        """A running apartment of this process, by id."""

    @abc.abstractmethod
    async def start_sta(self, name: str | None) -> Apartment:
        """Start an STA here."""

    @abc.abstractmethod
    def stop(self, timeout: float | None) -> None:
        """Shut the server down soon (after this call has answered)."""

    @abc.abstractmethod
    def reference(self, apartment: Apartment) -> ApartmentRef:
        """How other processes name ``apartment``."""

    @abc.abstractmethod
    def trace_start(self, limit: int) -> None:
        """Record this process's calls (for the client's recording)."""

    @abc.abstractmethod
    async def trace_collect(self) -> Any:
        """Stop recording and hand over what was recorded (None if nothing was)."""


@coclass
class NodeControl:
    """Object 0 of a server (see the module docstring)."""

    def __init__(self, hooks: ControlHooks) -> None:
        self._hooks = hooks

    def _apartment(self, apartment_id: str) -> Apartment:
        apartment = self._hooks.apartment(apartment_id)
        if apartment is None or apartment.is_closed:
            raise DisconnectedError(
                f"apartment {apartment_id!r} of this server is shut down; start another")
        return apartment

    async def create(self, apartment_id: str, cls: type, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Proxy[Any]:
        """Create ``cls(*args, **kwargs)`` as if from a thread of the apartment: its
        threading model decides where it lives, here."""
        return await self._apartment(apartment_id).create(cls, *args, **kwargs)

    async def start_sta(self, name: str | None) -> ApartmentRef:
        return self._hooks.reference(await self._hooks.start_sta(name))

    def apartment_ref(self, apartment_id: str) -> ApartmentRef:
        return self._hooks.reference(self._apartment(apartment_id))

    async def shutdown_apartment(self, apartment_id: str, timeout: float | None) -> None:
        apartment = self._hooks.apartment(apartment_id)
        if apartment is not None:
            await apartment.shutdown(timeout)

    def shutdown(self, timeout: float | None) -> int:
        """Shut the server down once this call has answered; returns its pid."""
        self._hooks.stop(timeout)
        return os.getpid()

    def ping(self) -> int:
        return os.getpid()

    def trace_start(self, limit: int) -> None:
        """Record this server's calls until ``trace_collect`` (a client's recording)."""
        self._hooks.trace_start(limit)

    async def trace_collect(self) -> Any:
        """The server's recording (and its own servers'), with its clock's reading now."""
        return await self._hooks.trace_collect()
