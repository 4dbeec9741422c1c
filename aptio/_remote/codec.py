"""Messages to bytes and back: pickle for values, with coclass instances, proxies, generators
and callbacks crossing by reference.

A frame's payload is ``kind (1 byte) | call id (8 bytes) | pickle of the message's other
fields``. The call id stays readable when the pickle is not (a class the receiver cannot
import), so that call, and only it, fails. On the way out a pickler's ``reducer_override``
(called for everything but the builtin scalars and containers, so plain data costs nothing
extra) turns each object that crosses by reference into an :class:`ObjectRef`, exporting it
for the receiver; on the way in, :func:`_arrived` turns each reference into a proxy (or, for
an object of the receiving process itself, back into that object's proxy at home).

The per-call half (the header, messages with no reference in them, decoding) is
:mod:`aptio._remote.payload`, compiled with the call path. Only authenticated peers' frames
are ever decoded (see :mod:`aptio._wire.handshake`).
"""

from __future__ import annotations

import io
import pickle
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from .._call.context import current_site
from .._marshal.callback import Callback
from .._proxy.call_iterator import CallIterator, is_generator
from .._proxy.enumerator import AsyncEnumerator
from .._proxy.method_table import GeneratorKind, method_table
from .._proxy.proxy import Proxy, proxy_for
from .._proxy.stub import Stub
from .._values.declarations import SPEC_ATTRIBUTE, ClassSpec
from .._values.errors import NotPicklableError
from .._wire.messages import KIND_OF, ClassRef, ObjectRef
from .payload import HEADER, PROTOCOL, REFERENCES, decode, decoding, encode_plain, loads
from .remote_stub import script_of

__all__ = ["Resolver", "class_ref", "decode", "encode", "encode_error", "encode_fields", "loads"]

class Resolver(Protocol):
    """What the codec asks of its node."""

    def export(self, stub: Stub, holder: str) -> ObjectRef:
        """A reference to a local object, for ``holder`` (counted for it)."""
        ...

    def unexport(self, ref: ObjectRef, holder: str) -> None:
        """Undo an ``export`` whose message was never sent."""
        ...

    def pass_on(self, stub: Stub, holder: str) -> ObjectRef:
        """A reference to a remote object held here, passed on to ``holder`` (the owner is
        told first, unless ``holder`` is the owner)."""
        ...

    def arrived(self, ref: ObjectRef) -> Any:
        """The proxy a received reference stands for."""
        ...


class _Encoding(threading.local):
    """The pickler of this thread's current message (for ``reducer_override``)."""

    resolver: Resolver | None = None
    holder: str = ""
    exported: list[ObjectRef] | None = None


_encoding = _Encoding()


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Proxy):
            return _arrived, (_reference(obj._aptio_stub),)
        if isinstance(obj, CallIterator):
            stub = obj._stub
            if stub is None:
                raise pickle.PicklingError(
                    "a CallIterator crosses processes once it has its generator: take a first "
                    "item from it (or await the call that made it) before sending it")
            return _arrived_iterator, (_reference(stub), stub.cls is AsyncEnumerator)
        if isinstance(obj, Callback):
            return _arrived_callback, (_reference(obj._proxy._aptio_stub),)
        spec = getattr(type(obj), SPEC_ATTRIBUTE, None)
        if isinstance(spec, ClassSpec) and not spec.agile:
            return _arrived, (_local_reference(obj),)
        if is_generator(obj):
            raise pickle.PicklingError(
                "a generator crosses processes only as a call's result or argument")
        return NotImplemented


def _reference(stub: Stub) -> ObjectRef:
    resolver = _encoding.resolver
    assert resolver is not None
    ref = stub.obj
    if isinstance(ref, ObjectRef):  # a remote object held here: passed on
        out = resolver.pass_on(stub, _encoding.holder)
    else:
        out = resolver.export(stub, _encoding.holder)
        exported = _encoding.exported
        if exported is not None:
            exported.append(out)
    return out


def _local_reference(obj: object) -> ObjectRef:
    """A raw coclass instance of this process (inside an object marshaling does not walk),
    crossing by reference from the apartment that sends it (or the one its creation
    recorded)."""
    home = current_site()
    if home is None:
        raise pickle.PicklingError("a coclass instance crosses only from inside an apartment")
    proxy = proxy_for(obj, home)
    return _reference(proxy._aptio_stub)


def encode_fields(kind: int, call_id: int, fields: tuple[Any, ...], resolver: Resolver,
                  holder: str, plain: bool = False) -> bytes:
    """A message's frame payload (see the module). ``plain``: the caller checked that nothing
    in ``fields`` crosses by reference, so the C pickler alone does. Pickling errors
    propagate; any reference exported for this message is taken back then."""
    if plain:
        return encode_plain(kind, call_id, fields)
    buffer = io.BytesIO()
    buffer.write(HEADER.pack(kind | REFERENCES, call_id))  # it may hold references
    exported: list[ObjectRef] = []
    previous = (_encoding.resolver, _encoding.holder, _encoding.exported)
    _encoding.resolver, _encoding.holder, _encoding.exported = resolver, holder, exported
    try:
        _Pickler(buffer, PROTOCOL).dump(fields)
    except BaseException:
        for ref in exported:
            resolver.unexport(ref, holder)
        raise
    finally:
        _encoding.resolver, _encoding.holder, _encoding.exported = previous
    return buffer.getvalue()


def encode(message: Any, call_id: int, resolver: Resolver, holder: str,
           plain: bool = False) -> bytes:
    """``message`` (a wire message) as a frame payload."""
    return encode_fields(KIND_OF[type(message)], call_id, tuple(message), resolver, holder,
                         plain)


def encode_error(error: BaseException,
                 tb: TracebackType | None = None) -> tuple[bytes | None, str, str, str]:
    """An exception for a reply: its pickle (None if it does not pickle and unpickle as
    itself), its type's name, its message and its traceback (``tb``, the call's own frames,
    if given) as text."""
    name = f"{type(error).__module__}.{type(error).__qualname__}"
    text = "".join(traceback.format_exception(type(error), error,
                                              tb if tb is not None else error.__traceback__))
    try:
        data = pickle.dumps(error, PROTOCOL)
        pickle.loads(data)
    except Exception:
        data = None
    return data, name, str(error), text


def _arrived(ref: ObjectRef) -> Any:
    resolver = decoding.resolver
    assert resolver is not None, "references are read only while decoding a message"
    return resolver.arrived(ObjectRef(*ref))


def _arrived_iterator(ref: ObjectRef, asynchronous: bool) -> CallIterator[Any]:
    proxy = _arrived(ref)
    return CallIterator(proxy._aptio_stub, None, asynchronous)


def _arrived_callback(ref: ObjectRef) -> Callback[Any, Any]:
    return Callback(_arrived(ref))


def _generator_methods(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of ``cls``'s public generator and async generator methods, as a
    :class:`ClassRef` lists them."""
    table = method_table(cls)
    kinds: dict[GeneratorKind, list[str]] = {GeneratorKind.SYNC: [], GeneratorKind.ASYNC: []}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        try:
            kind = table.lookup(name)[3]
        except AttributeError:
            continue
        if kind in kinds:
            kinds[kind].append(name)
    return tuple(kinds[GeneratorKind.SYNC]), tuple(kinds[GeneratorKind.ASYNC])


_class_refs: dict[type, ClassRef] = {}


def class_ref(cls: type) -> ClassRef:
    """What a caller needs to know of ``cls`` (cached)."""
    ref = _class_refs.get(cls)
    if ref is None:
        ref = ClassRef(cls.__module__, cls.__qualname__, *_generator_methods(cls),
                       script_of(cls.__module__))
        _class_refs[cls] = ref
    return ref


def describe_unpicklable(values: tuple[Any, ...], kwargs: dict[str, Any],
                         dumps: Callable[[Any], object]) -> str:
    """Which argument does not pickle, for the error message."""
    for index, value in enumerate(values):
        try:
            dumps(value)
        except Exception as error:
            return f"argument {index + 1} ({type(value).__qualname__}: {error})"
    for key, value in kwargs.items():
        try:
            dumps(value)
        except Exception as error:
            return f"argument {key}= ({type(value).__qualname__}: {error})"
    return "an argument"


def not_picklable(what: str, where: str, error: BaseException) -> NotPicklableError:
    return NotPicklableError(
        f"{what} cannot be pickled to cross to {where}: {error}. Values cross processes by "
        "value (pickle); pass something picklable, or an object of an @aptio.coclass class, "
        "which crosses by reference"
    )
