"""The enumerations of the model: apartment kinds, threading models, reentrancy policies, call
types and message-filter verdicts (COM: APTTYPE, ThreadingModel, CALLTYPE, SERVERCALL)."""

from __future__ import annotations

import enum

__all__ = ["ApartmentKind", "CallType", "Reentrancy", "ServerCall", "ThreadingModel"]


class ApartmentKind(enum.Enum):
    """What kind of apartment an :class:`aptio.Apartment` is (COM: ``APTTYPE``)."""

    MAIN_STA = "main_sta"
    STA = "sta"
    MTA = "mta"
    NEUTRAL = "neutral"

    @property
    def is_sta(self) -> bool:
        """True for the main STA and every other STA: one thread, one event loop."""
        return self is ApartmentKind.MAIN_STA or self is ApartmentKind.STA


class ThreadingModel(enum.Enum):
    """Where instances of a class may live (COM: the ``ThreadingModel`` registry value)."""

    #: Every instance lives in the main STA (COM: no ThreadingModel / "Single").
    SINGLE = "single"
    #: An instance lives in the STA that created it; from the MTA, in the host STA.
    APARTMENT = "apartment"
    #: Instances live in the MTA.
    FREE = "free"
    #: An instance lives in its creator's apartment, STA or MTA (it synchronizes itself).
    BOTH = "both"
    #: Instances live in the neutral apartment: calls run on the caller's thread.
    NEUTRAL = "neutral"


class Reentrancy(enum.Enum):
    """Which incoming calls may run while an object's call is suspended at an ``await``."""

    #: asyncio-natural: any call may run at any await (COM's STA modal loop).
    INTERLEAVE = "interleave"
    #: One logical call per object at a time; a nested call of the same causality chain is let
    #: in (WinRT's ASTA).
    CALL_CHAIN = "call_chain"
    #: Strict turns: one call at a time; a re-entry from the same chain raises DeadlockError.
    NONE = "none"


class CallType(enum.Enum):
    """How a call relates to what its target apartment is doing (COM: ``CALLTYPE``)."""

    #: A call of a new logical thread, while the target has no outgoing call pending.
    TOPLEVEL = "toplevel"
    #: A call of the same logical thread as an outgoing call the target is waiting on.
    NESTED = "nested"
    #: A call of a new logical thread, arriving while the target waits on an outgoing call.
    TOPLEVEL_CALLPENDING = "toplevel_callpending"


class ServerCall(enum.Enum):
    """A message filter's verdict on an incoming call (COM: ``SERVERCALL``)."""

    #: Dispatch the call.
    ISHANDLED = "ishandled"
    #: The object cannot take the call: it is not run; the caller's filter may retry.
    REJECTED = "rejected"
    #: The apartment is busy: the call is not run; the caller's filter may retry later.
    RETRYLATER = "retrylater"
