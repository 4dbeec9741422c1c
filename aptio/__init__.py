"""aptio: the COM apartment threading model for asyncio.

Each single-threaded apartment (STA) is an event loop on its own thread; the multithreaded
apartment (MTA) is a worker pool; the neutral apartment runs calls on the caller's thread.
Classes declare a threading model that decides where ``aptio.create`` puts each object, and
callers elsewhere hold proxies whose method calls are awaitables.
"""

from ._apartment import Apartment as Apartment
from ._call import Call as Call
from ._calls import CallInfo as CallInfo
from ._calls import CallType as CallType
from ._calls import current_call as current_call
from ._diagnostics import ApartmentStatistics as ApartmentStatistics
from ._diagnostics import InFlightCall as InFlightCall
from ._diagnostics import dump_calls as dump_calls
from ._diagnostics import format_calls as format_calls
from ._exceptions import AptioError as AptioError
from ._exceptions import CallRejectedError as CallRejectedError
from ._exceptions import ChangedModeError as ChangedModeError
from ._exceptions import DeadlockError as DeadlockError
from ._exceptions import DisconnectedError as DisconnectedError
from ._exceptions import NotInitializedError as NotInitializedError
from ._exceptions import WrongApartmentError as WrongApartmentError
from ._filter import MessageFilter as MessageFilter
from ._filter import ServerCall as ServerCall
from ._kinds import ApartmentKind as ApartmentKind
from ._marshal import Callback as Callback
from ._marshal import GlobalInterfaceTable as GlobalInterfaceTable
from ._marshal import MarshalError as MarshalError
from ._marshal import MarshalToken as MarshalToken
from ._marshal import callback as callback
from ._marshal import disconnect as disconnect
from ._marshal import marshal as marshal
from ._marshal import release_marshal_data as release_marshal_data
from ._marshal import unmarshal as unmarshal
from ._models import Reentrancy as Reentrancy
from ._models import ThreadingModel as ThreadingModel
from ._models import coclass as coclass
from ._proxy import Proxy as Proxy
from ._proxy import apartment_of as apartment_of
from ._proxy import is_proxy as is_proxy
from ._proxy import unwrap as unwrap
from ._reentrancy import with_reentrancy as with_reentrancy
from ._runtime import create as create
from ._runtime import main_sta as main_sta
from ._runtime import mta as mta
from ._runtime import run as run
from ._runtime import start_sta as start_sta
from ._state import current_apartment as current_apartment
from ._sync import BoundedSemaphore as BoundedSemaphore
from ._sync import Condition as Condition
from ._sync import ConditionStatistics as ConditionStatistics
from ._sync import Event as Event
from ._sync import EventStatistics as EventStatistics
from ._sync import Lock as Lock
from ._sync import LockStatistics as LockStatistics
from ._sync import Semaphore as Semaphore
from ._sync import SemaphoreStatistics as SemaphoreStatistics
from ._sync import WouldBlock as WouldBlock

__version__ = "0.1.0"

__all__ = (
    # runtime and apartments
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
    "is_proxy",
    "apartment_of",
    "unwrap",
    "CallInfo",
    "CallType",
    "current_call",
    # marshaling and lifetime
    "marshal",
    "unmarshal",
    "release_marshal_data",
    "MarshalToken",
    "GlobalInterfaceTable",
    "callback",
    "Callback",
    "disconnect",
    # call semantics
    "with_reentrancy",
    "MessageFilter",
    "ServerCall",
    # diagnostics
    "ApartmentStatistics",
    "InFlightCall",
    "dump_calls",
    "format_calls",
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
    "CallRejectedError",
    "DeadlockError",
    "MarshalError",
)
