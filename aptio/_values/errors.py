"""The aptio error hierarchy: one place, one class per COM failure mode."""

from __future__ import annotations

__all__ = [
    "AptioError",
    "NotInitializedError",
    "ChangedModeError",
    "WrongApartmentError",
    "DisconnectedError",
    "LeaseExpiredError",
    "CallRejectedError",
    "DeadlockError",
    "InputSyncError",
    "MarshalError",
    "DeclarationError",
    "NotPicklableError",
    "UnreadableValueError",
    "ProtocolError",
    "RemoteError",
    "ServerStartError",
    "RecordingError",
    "TraceFileError",
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


class LeaseExpiredError(DisconnectedError):
    """Raised when a proxy that travelled outside aptio (pickled: a Ray task's argument, or
    an object in Ray's object store) is first used after its object was released.

    On its way the object was held by a *lease*, which ends when the first receiver unpickles
    the proxy (that receiver holds it from then on) or when its time runs out. Here it ended
    and every holder let the object go before this proxy came into use. Keep a proxy to the
    object in the sending process until the receivers have used theirs, or lengthen the
    lease (``aptio.ray.set_transit_lease``).
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


class NotPicklableError(MarshalError):
    """Raised when a value must cross to another process and cannot be pickled: an argument
    (the call fails in the caller, before anything is sent) or a result (the call fails with
    this error). The message names the value; pass something picklable, or an object of an
    ``@aptio.coclass`` class, which crosses by reference."""


class UnreadableValueError(MarshalError):
    """Raised when a value sent from another process cannot be unpickled here, most often
    because its class cannot be imported in this process (a class whose objects a server
    creates must be importable there: in a module on its ``sys.path``)."""


class RemoteError(AptioError):
    """Raised when an exception raised in another process cannot be sent back as itself (it
    does not pickle): carries its type name, message and traceback text."""

    def __init__(self, type_name: str, message: str, traceback_text: str) -> None:
        super().__init__(f"{type_name}: {message}")
        #: The qualified name of the original exception's type.
        self.type_name = type_name
        #: ``str()`` of the original exception.
        self.message = message
        #: The original traceback, formatted in the process that raised it.
        self.traceback_text = traceback_text

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (type(self), (self.type_name, self.message, self.traceback_text))


class ProtocolError(AptioError):
    """Raised when a peer process breaks aptio's wire protocol: it failed authentication (a
    wrong or missing key), speaks an unknown protocol version, or sent a message over the size
    limit (``max_message_size``) or one that cannot be read. The connection is closed."""


class ServerStartError(AptioError):
    """Raised when an aptio server process fails to start; the message carries its stderr."""


class InputSyncError(AptioError):
    """Raised when the callee of an input-synchronized call (one an STA makes while handling
    user input) calls back into that STA: it waits for the callee, so the callback could never
    run. COM: ``RPC_E_CANTCALLOUT_ININPUTSYNCCALL``. Return what the handler needs instead,
    or make the call from outside the input handler (``aptio.tk.spawn``)."""


class RecordingError(AptioError):
    """Raised when a call recording (``aptio.recording``, ``aptio.run(main, trace=...)``,
    ``APTIO_TRACE``) cannot start or cannot be saved: another recording is running in the
    process, or its file cannot be written."""


class TraceFileError(AptioError):
    """Raised when a file given to ``python -m aptio trace`` cannot be read as a call recording
    that aptio wrote: it is missing, not JSON, not a Chrome trace, or not aptio's."""
