"""The aptio error hierarchy: one place, one class per COM failure mode."""

from __future__ import annotations

__all__ = [
    "AptioError",
    "NotInitializedError",
    "ChangedModeError",
    "WrongApartmentError",
    "DisconnectedError",
    "CallRejectedError",
    "DeadlockError",
    "MarshalError",
    "DeclarationError",
    "WouldBlock",
]


class AptioError(Exception):
    """Raised when aptio is misused in a way no subclass describes, for example a second
    ``unmarshal`` of a one-shot token; the base class of every error aptio raises."""


class NotInitializedError(AptioError):
    """Raised when aptio is used on a thread, or in a process, with no apartment runtime.

    COM: ``CO_E_NOTINITIALIZED``. Start one with ``aptio.run(main)`` or
    ``async with aptio.main_sta():``.
    """


class ChangedModeError(AptioError):
    """Raised when a thread that already belongs to an apartment is asked to join another.

    COM: ``RPC_E_CHANGED_MODE``. A thread's apartment never changes; for example
    ``aptio.run`` inside a running event loop, or ``main_sta()`` on an STA thread.
    """


class WrongApartmentError(AptioError):
    """Raised when something is used from an apartment that may not use it that way.

    COM: ``RPC_E_WRONG_THREAD``. Examples: a blocking wait on an STA thread (it would stall
    every object in that apartment), or ``unwrap`` of a proxy outside the object's home.
    """


class DisconnectedError(AptioError):
    """Raised when a call cannot reach its object: the object was disconnected, or its
    apartment is shut down or shutting down.

    COM: ``RPC_E_DISCONNECTED`` / ``CO_E_OBJNOTCONNECTED``.
    """


class CallRejectedError(AptioError):
    """Raised when the target apartment's message filter rejected a call and the caller's
    retry policy gave up (or the caller has no message filter).

    COM: ``RPC_E_CALL_REJECTED``.
    """


class DeadlockError(AptioError):
    """Raised when a cycle of waits between serialized objects is found (in one waiter),
    or when a call chain re-enters an object whose reentrancy policy forbids it.

    The message names the objects, apartments and methods in the cycle.
    """


class MarshalError(AptioError):
    """Raised when a marshal token or a global-interface-table cookie cannot be used: it was
    unmarshaled or released already, revoked, or never issued by this process."""


class DeclarationError(AptioError, TypeError):
    """Raised when a declared proxy class does not match the class it stands for, as it is
    defined: a method it lists is missing there, is not a method, is sync where the class's is
    async (or the reverse), or returns what the declaration cannot type."""


class WouldBlock(AptioError):
    """Raised when ``acquire_nowait()`` cannot acquire the primitive without waiting."""
