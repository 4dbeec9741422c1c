"""aptio: the COM apartment threading model for asyncio.

Each single-threaded apartment (STA) is an event loop on its own thread; the multithreaded
apartment (MTA) is a worker pool; the neutral apartment runs calls on the caller's thread.
Classes declare a threading model that decides where ``aptio.create`` puts each object, and
callers elsewhere hold proxies whose method calls are awaitables.
"""

# First: decides whether the compiled call path or the pure-Python sources are imported below.
from ._compiled import COMPILED as _COMPILED  # isort: skip
from ._admission.message_filter import MessageFilter as MessageFilter
from ._apartments.base import Apartment as Apartment
from ._apartments.base import apartment_of as apartment_of
from ._apartments.base import current_apartment as current_apartment
from ._call.call import Call as Call
from ._call.info import CallInfo as CallInfo
from ._call.info import current_call as current_call
from ._call.input_sync import input_synchronized as input_synchronized
from ._diagnostics import dump_calls as dump_calls
from ._diagnostics import format_calls as format_calls
from ._marshal.callback import Callback as Callback
from ._marshal.callback import callback as callback
from ._marshal.disconnect import disconnect as disconnect
from ._marshal.interface_table import Cookie as Cookie
from ._marshal.interface_table import GlobalInterfaceTable as GlobalInterfaceTable
from ._marshal.tokens import MarshalToken as MarshalToken
from ._marshal.tokens import marshal as marshal
from ._marshal.tokens import release_marshal_data as release_marshal_data
from ._marshal.tokens import unmarshal as unmarshal
from ._proxy.call_iterator import CallIterator as CallIterator
from ._proxy.declared import DeclaredProxy as DeclaredProxy
from ._proxy.declared import ProxiedAs as ProxiedAs
from ._proxy.declared import ProxyMethod as ProxyMethod
from ._proxy.declared import proxy_method as proxy_method
from ._proxy.proxy import Proxy as Proxy
from ._proxy.proxy import is_proxy as is_proxy
from ._proxy.proxy import unwrap as unwrap
from ._remote.server import Server as Server
from ._remote.server import ServerCredentials as ServerCredentials
from ._runtime.entry import connect_server as connect_server
from ._runtime.entry import create as create
from ._runtime.entry import main_sta as main_sta
from ._runtime.entry import mta as mta
from ._runtime.entry import recording as recording
from ._runtime.entry import run as run
from ._runtime.entry import start_server as start_server
from ._runtime.entry import start_sta as start_sta
from ._sync.condition import Condition as Condition
from ._sync.condition import ConditionStatistics as ConditionStatistics
from ._sync.event import Event as Event
from ._sync.event import EventStatistics as EventStatistics
from ._sync.lock import Lock as Lock
from ._sync.lock import LockStatistics as LockStatistics
from ._sync.semaphore import BoundedSemaphore as BoundedSemaphore
from ._sync.semaphore import Semaphore as Semaphore
from ._sync.semaphore import SemaphoreStatistics as SemaphoreStatistics
from ._sync.waits import PrimitiveWait as PrimitiveWait
from ._sync.waits import dump_waits as dump_waits
from ._sync.waits import self_waits as self_waits
from ._threads.idle_spin import AVAILABLE as _IDLE_SPIN_AVAILABLE
from ._values.declarations import coclass as coclass
from ._values.declarations import local_server as local_server
from ._values.declarations import with_reentrancy as with_reentrancy
from ._values.enums import ApartmentKind as ApartmentKind
from ._values.enums import CallType as CallType
from ._values.enums import Reentrancy as Reentrancy
from ._values.enums import ServerCall as ServerCall
from ._values.enums import ThreadingModel as ThreadingModel
from ._values.errors import AptioError as AptioError
from ._values.errors import CallRejectedError as CallRejectedError
from ._values.errors import ChangedModeError as ChangedModeError
from ._values.errors import DeadlockError as DeadlockError
from ._values.errors import DeclarationError as DeclarationError
from ._values.errors import DisconnectedError as DisconnectedError
from ._values.errors import InputSyncError as InputSyncError
from ._values.errors import LeaseExpiredError as LeaseExpiredError
from ._values.errors import MarshalError as MarshalError
from ._values.errors import NotInitializedError as NotInitializedError
from ._values.errors import NotPicklableError as NotPicklableError
from ._values.errors import ProtocolError as ProtocolError
from ._values.errors import RecordingError as RecordingError
from ._values.errors import RemoteError as RemoteError
from ._values.errors import ServerStartError as ServerStartError
from ._values.errors import TraceFileError as TraceFileError
from ._values.errors import UnreadableValueError as UnreadableValueError
from ._values.errors import WouldBlock as WouldBlock
from ._values.errors import WrongApartmentError as WrongApartmentError
from ._values.statistics import ApartmentStatistics as ApartmentStatistics
from ._values.statistics import InFlightCall as InFlightCall

__version__ = "0.1.0"

compiled: bool = _COMPILED
"""True when aptio's call path runs compiled (built with mypyc from the same ``.py`` files at
install time), False when it runs as pure Python. Behaviour is the same either way; the
compiled build spends less CPU per call. ``APTIO_PURE_PYTHON=1`` in the environment chooses
the pure-Python build; see the performance guide."""

idle_spin_available: bool = _IDLE_SPIN_AVAILABLE
"""True when an STA can spin while idle (``aptio.start_sta(idle_spin=...)``): the compiled
build, whose native helper polls without the interpreter lock. Elsewhere the option is accepted
and does nothing; see the performance guide."""

__all__ = (
    # runtime and apartments
    "compiled",
    "idle_spin_available",
    "run",
    "main_sta",
    "start_sta",
    "mta",
    "current_apartment",
    "Apartment",
    "ApartmentKind",
    # objects, proxies, calls
    "ThreadingModel",
    "Reentrancy",
    "coclass",
    "create",
    "Proxy",
    "Call",
    "CallIterator",
    "is_proxy",
    "apartment_of",
    "unwrap",
    "CallInfo",
    "CallType",
    "current_call",
    # typed proxies for checkers without aptio's mypy plugin
    "DeclaredProxy",
    "ProxiedAs",
    "proxy_method",
    "ProxyMethod",
    # marshaling and lifetime
    "marshal",
    "unmarshal",
    "release_marshal_data",
    "MarshalToken",
    "GlobalInterfaceTable",
    "Cookie",
    "callback",
    "Callback",
    "disconnect",
    # other processes
    "start_server",
    "connect_server",
    "local_server",
    "Server",
    "ServerCredentials",
    # call semantics
    "with_reentrancy",
    "input_synchronized",
    "MessageFilter",
    "ServerCall",
    # diagnostics
    "ApartmentStatistics",
    "InFlightCall",
    "dump_calls",
    "format_calls",
    "recording",
    "PrimitiveWait",
    "dump_waits",
    "self_waits",
    # synchronization primitives
    "Lock",
    "Event",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "WouldBlock",
    "LockStatistics",
    "EventStatistics",
    "SemaphoreStatistics",
    "ConditionStatistics",
    # errors
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
    "NotPicklableError",
    "UnreadableValueError",
    "RemoteError",
    "ProtocolError",
    "ServerStartError",
    "DeclarationError",
    "RecordingError",
    "TraceFileError",
)
