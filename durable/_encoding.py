"""Python values <-> msgpack payloads, with bounded decoding of files we did not write.

Sits on the storage layer (which stores opaque bytes) and below the engine. Decoding is
bounded by the payload: msgpack caps every container and string length at the payload's
size and nesting depth at its internal stack, so a hostile record fails fast instead of
allocating or recursing without bound. No pickle, ever, and decoding never imports or looks
up a class by a name found in the data: it rebuilds only the fixed types below. Dataclasses,
enums and pydantic models are stored in their plain form (a dict of fields, `.value`,
`model_dump(mode="python")`) and rebuilt by `convert` from the annotation the code declares.

Other values travel as msgpack ext types. The codes are part of the on-disk format: never
change or reuse one, only add new ones.

    code  type        ext payload
       1  tuple       msgpack array of the items (which may hold ext values themselves)
       2  set         msgpack array of the items
       3  frozenset   msgpack array of the items
       4  datetime    msgpack [year, month, day, hour, minute, second, microsecond, fold, tz]
       5  date        msgpack [year, month, day]
       6  time        msgpack [hour, minute, second, microsecond, fold, tz]
       7  timedelta   msgpack [days, seconds, microseconds]
       8  Decimal     ASCII str(value): b"-1.50", b"NaN", b"sNaN", b"-Infinity"
       9  UUID        the 16 bytes of uuid.bytes

    tz is nil (naive), a zoneinfo key such as "Europe/Paris" (looked up in the system time
    zone database, or the tzdata package when it has none), or [UTC offset in microseconds,
    name or nil] for a fixed offset (datetime.timezone; nil: the default "UTC+01:00" name).
    Tuples and sets nest at most 32 deep (each level is a payload of its own). Code -1 is
    msgpack's own timestamp, never written by durable. Subclasses of the types above and of
    msgpack's (IntEnum, OrderedDict, a NamedTuple) are stored as their base type.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import reprlib
import sys
import types
import typing
from collections import abc
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

import msgpack

from ._errors import JournalCorrupted, SerializationError

# The codes of the table above: part of the file format, never to change.
_TUPLE, _SET, _FROZENSET = 1, 2, 3
_DATETIME, _DATE, _TIME, _TIMEDELTA = 4, 5, 6, 7
_DECIMAL, _UUID = 8, 9
_NAMES = ["tuple", "set", "frozenset", "datetime", "date", "time", "timedelta", "Decimal", "UUID"]
_EXT_NAMES: Final = dict(enumerate(_NAMES, start=1))
# Each tuple/set level is a nested msgpack payload (and Python call) on both sides: capped, so
# a hostile record cannot recurse deeply or have the payload copied more than this many times.
_MAX_EXT_DEPTH: Final = 32
# Checked before a key from the data reaches zoneinfo (which also refuses paths out of its tree).
_ZONE_KEY: Final = re.compile(r"[A-Za-z0-9_+-]{1,40}(?:/[A-Za-z0-9_+-]{1,40}){0,2}")

_Handler = Callable[["_Encoder", Any], Any]
_Converter = Callable[[Any], Any]


def encode(value: Any, *, context: str = "a journal record", activity: str | None = None) -> bytes:
    """Encode `value`; nothing is written anywhere if this raises.

    Values of msgpack's own types are packed directly; only the others reach `_Encoder`.

    Raises:
        SerializationError: the value (or something inside it) has no journal form; names
            its type, `context` and `activity`.
    """
    encoder = _Encoder(context, activity)
    try:
        return _pack(value, encoder)
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as error:
        raise encoder.refuse(value, str(error)) from error


class _NotPlain(Exception):
    """A value msgpack does not pack as it is (a tuple, a set, a dataclass, ...)."""


def _not_plain(value: object) -> Any:
    raise _NotPlain


_PLAIN_BUFFER = 1024  # bytes: a step's record is ~100


class PlainPacker:
    """`encode` for one thread's hot path: one msgpack Packer kept, not one built per call.

    `msgpack.packb` builds a Packer on every call: of the ~1.1 us a step's record costs to
    encode, ~0.6 us. A value of msgpack's own types packs here; any other (or an error)
    returns None and the caller takes `encode`, which gives the same bytes. Not
    thread-safe, and not reentrant: each user (a workflow run) keeps its own.

    Its buffer starts small (msgpack grows it for a larger record, and keeps it): the
    default, 256 KiB, made each of 100 runs at once a fresh allocation and a page fault.
    """

    __slots__ = ("_pack",)

    def __init__(self) -> None:
        packer = msgpack.Packer(
            use_bin_type=True, strict_types=True, default=_not_plain, buf_size=_PLAIN_BUFFER
        )
        self._pack = packer.pack

    def pack(self, value: Any) -> bytes | None:
        """`value`'s encoding if it holds only msgpack's own types, else None."""
        try:
            packed: bytes = self._pack(value)
        except Exception:  # (_NotPlain, or what encode() reports better)
            return None
        return packed


def decode(payload: bytes, *, path: Path | str, offset: int) -> Any:
    """Decode one record read from journal `path` at byte `offset`.

    Dataclasses, enums and pydantic models come back in their stored plain form: `convert`
    rebuilds them from the annotation the code declares.

    Raises:
        JournalCorrupted: the payload passed its checksum but is not one msgpack value of the
            forms above (a file from something else, or written by a bug): never guessed at.
    """
    try:
        return _unpack(payload, 0)
    except _BadExt as error:
        reason = f"the record holds a malformed {error}"
        raise JournalCorrupted(path=path, offset=offset, reason=reason) from error
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        reason = f"the record is not valid msgpack ({str(error) or type(error).__name__})"
        raise JournalCorrupted(path=path, offset=offset, reason=reason) from error


def decode_leading(stored: Sequence[tuple[int, bytes]]) -> list[Any]:
    """The (offset, payload) records decoded as `decode` would, up to the first that fails.

    The ones from the first that does not decode on are left out: `decode` it to raise its
    error, once the records before it were looked at. One loop with msgpack called
    directly, two Python calls less per record than `decode` (replay reads every record).
    """
    unpackb, hook = msgpack.unpackb, _TOP_LEVEL_HOOK
    values: list[Any] = []
    append = values.append
    for _, payload in stored:
        try:
            append(unpackb(payload, raw=False, strict_map_key=False, ext_hook=hook))
        except Exception:  # (what decode() reports, at its place)
            break
    return values


def convert(value: Any, annotation: Any, *, context: str = "a value") -> Any:
    """Rebuild a decoded `value` as the `annotation` type (dataclass, enum, container of them).

    Replay calls this for every recorded value, so the work per annotation is cached and one
    that needs nothing (`str`, `int`, `Any`, a missing annotation) returns `value` at once.
    Plain classes are not checked: `decode` already rebuilt every type it can.

    Raises:
        SerializationError: the value does not fit (a missing dataclass field, an unknown enum
            value, items a set cannot hold); names `context`, the place inside the value and
            the target type.
    """
    rebuild = _nested(annotation)
    if rebuild is None:
        return value
    try:
        return rebuild(value)
    except _Mismatch as mismatch:
        where = "".join(reversed(mismatch.where))
        raise SerializationError(
            value_type=type(mismatch.value).__qualname__,
            context=f"{context} at {where}" if where else context,
            target=mismatch.target,
            detail=mismatch.reason,
        ) from mismatch.__cause__
    except (TypeError, ValueError, ArithmeticError, RecursionError) as error:
        # What a recorded value breaks on its way into Python's types (an unhashable item of
        # a set, a signaling NaN looked up as an enum value): a misfit like any other, never
        # a bare builtin error (decimal.InvalidOperation is an ArithmeticError).
        raise SerializationError(
            value_type=type(value).__qualname__,
            context=context,
            target=_short(repr(annotation).replace("typing.", "")),
            detail=_short(f"{type(error).__name__}: {error}"),
        ) from error


def converts(annotation: Any) -> bool:
    """Whether `convert(value, annotation)` may rebuild a decoded value (else returns it)."""
    return _nested(annotation) is not None


# --- encoding ------------------------------------------------------------------------------


def _pack(value: Any, default: _Encoder | None) -> bytes:
    # strict_types: tuples and subclasses of natives (IntEnum, OrderedDict) reach `default`
    # instead of being packed, silently, as lists and plain values.
    packed: bytes = msgpack.packb(value, use_bin_type=True, strict_types=True, default=default)
    return packed


class _Encoder:
    """msgpack's `default` hook: turns one value msgpack cannot pack into one it can."""

    __slots__ = ("activity", "context", "depth")

    def __init__(self, context: str, activity: str | None) -> None:
        self.context = context
        self.activity = activity
        self.depth = 0

    def __call__(self, value: object) -> Any:
        cls: Any = type(value)  # (lru_cache's Hashable does not take type[object] in mypy)
        handler = _HANDLERS.get(cls) or _handler_for(cls)
        if handler is None:
            raise self.refuse(value)
        return handler(self, value)

    def refuse(self, value: object, detail: str = "") -> SerializationError:
        value_type = type(value).__qualname__
        return SerializationError(
            value_type=value_type, context=self.context, activity=self.activity, detail=detail
        )

    def items(self, code: int, value: Iterable[Any]) -> msgpack.ExtType:
        if self.depth >= _MAX_EXT_DEPTH:
            raise self.refuse(value, f"tuples and sets nest at most {_MAX_EXT_DEPTH} deep")
        self.depth += 1
        try:
            if code == _TUPLE:
                return msgpack.ExtType(code, _pack(list(value), self))
            # A set's iteration order changes with the hash seed; sorted by encoding, the
            # same set always encodes to the same bytes (argument digests depend on it).
            packed = sorted(_pack(item, self) for item in value)
            return msgpack.ExtType(code, _array_header(len(packed)) + b"".join(packed))
        finally:
            self.depth -= 1


def _array_header(length: int) -> bytes:
    """Msgpack's array header for `length` items (fixarray, array 16 or array 32)."""
    if length < 16:
        return bytes([0x90 | length])
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def _int(encoder: _Encoder, value: int) -> int:
    if -(2**63) <= (number := int(value)) < 2**64:
        return number
    raise encoder.refuse(value, "outside the 64-bit range")


def _plain(code: int, fields: list[Any]) -> msgpack.ExtType:
    return msgpack.ExtType(code, _pack(fields, None))


def _clock(encoder: _Encoder, code: int, value: datetime | time, fields: list[int]) -> Any:
    tz = value.tzinfo
    if tz is None or (isinstance(tz, ZoneInfo) and tz.key and _ZONE_KEY.fullmatch(tz.key)):
        return _plain(code, [*fields, value.fold, tz and tz.key])
    if (offset := value.utcoffset()) is None:
        raise encoder.refuse(value, f"its tzinfo {type(tz).__qualname__} has no UTC offset")
    # Other tzinfo classes (pytz, dateutil...) are kept as their offset: the same instant.
    name = None if value.tzname() == timezone(offset).tzname(None) else value.tzname()
    return _plain(code, [*fields, value.fold, [offset // timedelta(microseconds=1), name]])


_HANDLERS: Final[dict[type, _Handler]] = {
    type(None): lambda e, v: v,
    bool: lambda e, v: v,
    int: _int,
    float: lambda e, v: float(v),
    str: lambda e, v: str.__str__(v),
    bytes: lambda e, v: bytes(v),
    bytearray: lambda e, v: bytes(v),
    list: lambda e, v: list(v),
    dict: lambda e, v: dict(v),
    tuple: lambda e, v: e.items(_TUPLE, v),
    set: lambda e, v: e.items(_SET, v),
    frozenset: lambda e, v: e.items(_FROZENSET, v),
    datetime: lambda e, v: _clock(
        e, _DATETIME, v, [v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond]
    ),
    date: lambda e, v: _plain(_DATE, [v.year, v.month, v.day]),
    time: lambda e, v: _clock(e, _TIME, v, [v.hour, v.minute, v.second, v.microsecond]),
    timedelta: lambda e, v: _plain(_TIMEDELTA, [v.days, v.seconds, v.microseconds]),
    Decimal: lambda e, v: msgpack.ExtType(_DECIMAL, str(v).encode("ascii")),
    UUID: lambda e, v: msgpack.ExtType(_UUID, v.bytes),
}


@functools.lru_cache(maxsize=512)
def _handler_for(cls: type) -> _Handler | None:
    """How to encode instances of a class not in _HANDLERS (cached: a class's MRO is fixed)."""
    if issubclass(cls, Enum):
        return lambda e, v: e(v.value)
    if dataclasses.is_dataclass(cls):
        # A dict of the fields as they are (no deep copy): msgpack calls the hook on each.
        names = tuple(field.name for field in dataclasses.fields(cls))
        return lambda e, v: {name: getattr(v, name) for name in names}
    if _is_pydantic_model(cls):
        return lambda e, v: v.model_dump(mode="python")
    # Subclasses of the types above (OrderedDict, a str subclass...) as their base type.
    return next(filter(None, map(_HANDLERS.get, cls.__mro__[1:])), None)


def _is_pydantic_model(cls: type) -> bool:
    # Never imports pydantic: a model instance exists only if pydantic is imported already.
    base = getattr(sys.modules.get("pydantic"), "BaseModel", None)
    return isinstance(base, type) and issubclass(cls, base)


# --- decoding ------------------------------------------------------------------------------


class _BadExt(Exception):
    """An ext value whose payload is not what its code promises."""


def _unpack(payload: bytes, depth: int) -> Any:
    hook = _TOP_LEVEL_HOOK if depth == 0 else functools.partial(_ext_hook, depth)
    return msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=hook)


def _ext_hook(depth: int, code: int, data: bytes) -> Any:
    try:
        if code in (_TUPLE, _SET, _FROZENSET):
            if depth >= _MAX_EXT_DEPTH:
                raise ValueError(f"tuples and sets nested over {_MAX_EXT_DEPTH} deep")
            if type(items := _unpack(data, depth + 1)) is not list:
                raise ValueError(f"{type(items).__name__} where an array belongs")
            return {_TUPLE: tuple, _SET: set, _FROZENSET: frozenset}[code](items)
        if code == _DECIMAL:
            return Decimal(data.decode("ascii"))
        if code == _UUID:
            return UUID(bytes=data)
        fields: Any = msgpack.unpackb(data, raw=False) if code in _EXT_NAMES else None
        if code == _DATETIME:
            year, month, day, hour, minute, second, micro, fold, tz = fields
            return datetime(year, month, day, hour, minute, second, micro, _tzinfo(tz), fold=fold)
        if code == _TIME:
            hour, minute, second, micro, fold, tz = fields
            return time(hour, minute, second, micro, _tzinfo(tz), fold=fold)
        if code in (_DATE, _TIMEDELTA):
            return date(*fields) if code == _DATE else timedelta(*fields)
        raise ValueError("unknown ext type")
    except _BadExt:
        raise
    except Exception as error:  # whatever the payload breaks is corruption, reported as such
        detail = _short(str(error) or type(error).__name__)
        raise _BadExt(f"{_EXT_NAMES.get(code, 'value')} (ext type {code}: {detail})") from error


_TOP_LEVEL_HOOK: Final = functools.partial(_ext_hook, 0)  # (one per record adds up on replay)


def _tzinfo(tz: Any) -> Any:
    if tz is None:
        return None
    if type(tz) is str:
        if not _ZONE_KEY.fullmatch(tz):
            raise ValueError(f"bad time zone key {_short(repr(tz))}")
        return ZoneInfo(tz)
    offset, name = tz
    if type(offset) is not int:
        raise TypeError("time zone offset is not an int")
    delta = timedelta(microseconds=offset)
    return timezone(delta) if name is None else timezone(delta, name)


# --- conversion ----------------------------------------------------------------------------


class _Mismatch(Exception):
    """A value (or part of one) that does not fit its target; `where` grows on the way out."""

    def __init__(self, value: Any, target: str, reason: str) -> None:
        self.value, self.target, self.reason = value, target, reason
        self.where: list[str] = []


def _at(rebuild: _Converter | None, value: Any, key: Any = None, field: str = "") -> Any:
    """`rebuild(value)`, adding `field` (".name") or `key` (an index or key) to a mismatch."""
    if rebuild is None:
        return value
    try:
        return rebuild(value)
    except _Mismatch as mismatch:
        mismatch.where.append(field or f"[{reprlib.repr(key)}]")
        raise


@functools.lru_cache(maxsize=1024)
def _converter(annotation: Any) -> _Converter | None:
    return _build(annotation)


def _nested(annotation: Any) -> _Converter | None:
    try:
        return _converter(annotation)
    except TypeError:  # an unhashable annotation (Annotated metadata, say): built uncached
        return _build(annotation)


def _unwrap(annotation: Any) -> Any:
    while True:
        if isinstance(annotation, typing.NewType):
            annotation = annotation.__supertype__
        elif typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def _build(annotation: Any) -> _Converter | None:
    """What rebuilds values of `annotation`; None when decoded values are right as they are."""
    annotation = _unwrap(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is None:  # a class; a TypeVar or an unresolved forward reference stays as it is
        return _for_class(annotation) if isinstance(annotation, type) else None
    name = repr(annotation).replace("typing.", "")
    if (special := _SPECIAL_FORMS.get(origin)) is not None:
        return special(name, args)
    if origin is tuple and args and args[-1] is not ...:
        return _fixed_tuple(name, [_nested(arg) for arg in args])
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        key, item = (_nested(args[0]), _nested(args[1])) if args else (None, None)
        return None if key is None and item is None else _mapping(name, key, item)
    if origin in _COLLECTIONS:
        item = _nested(args[0]) if args else None
        return None if item is None else _collection(name, _COLLECTIONS[origin], item)
    return _for_class(origin) if isinstance(origin, type) else None  # a generic dataclass, say


# What each collection annotation rebuilds; None keeps the decoded type (list or tuple, say).
_COLLECTIONS: Final[dict[Any, type | None]] = {
    **{list: list, tuple: tuple, set: set, frozenset: frozenset},
    **{abc.MutableSequence: list, abc.MutableSet: set},
    **dict.fromkeys([abc.Sequence, abc.Set, abc.Collection, abc.Iterable]),
}


def _collection(name: str, kind: type | None, item: _Converter) -> _Converter:
    def rebuild(value: Any) -> Any:
        if not isinstance(value, list | tuple | set | frozenset):
            raise _Mismatch(value, name, "expected a collection")
        return (kind or type(value))([_at(item, v, index) for index, v in enumerate(value)])

    return rebuild


def _fixed_tuple(name: str, items: list[_Converter | None]) -> _Converter:
    def rebuild(value: Any) -> Any:
        if not isinstance(value, list | tuple) or len(value) != len(items):
            raise _Mismatch(value, name, f"expected {len(items)} items")
        return tuple([_at(f, v, i) for i, (f, v) in enumerate(zip(items, value, strict=True))])

    return rebuild


def _mapping(name: str, key: _Converter | None, item: _Converter | None) -> _Converter:
    def rebuild(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Mismatch(value, name, "expected a dict")
        return {_at(key, k, k): _at(item, v, k) for k, v in value.items()}

    return rebuild


def _union(name: str, args: tuple[Any, ...]) -> _Converter:
    optional = type(None) in args
    members = [(_nested(arg), _plain_class(arg)) for arg in args]

    def rebuild(value: Any) -> Any:
        if value is None and optional:
            return None
        for rebuild_member, cls in members:  # the first that fits wins
            if rebuild_member is not None:
                try:
                    return rebuild_member(value)
                except _Mismatch:
                    continue
            elif cls is None or isinstance(value, cls) or (cls is float and type(value) is int):
                return value
        raise _Mismatch(value, name, "it fits none of the members")

    return rebuild


def _plain_class(annotation: Any) -> type | None:
    """The class that a union member needing no conversion checks values against (None: any)."""
    origin = typing.get_origin(annotation := _unwrap(annotation)) or annotation
    return origin if isinstance(origin, type) and origin is not Any else None


def _literal(name: str, args: tuple[Any, ...]) -> _Converter:
    def rebuild(value: Any) -> Any:
        for arg in args:  # an enum member was stored as its value
            if type(arg) is type(value) and arg == value:
                return arg
            if isinstance(arg, Enum) and arg.value == value:
                return arg
        raise _Mismatch(value, name, f"{_short(repr(value))} is none of them")

    return rebuild


_SPECIAL_FORMS: Final[dict[Any, Callable[[str, tuple[Any, ...]], _Converter]]] = {
    typing.Union: _union,
    types.UnionType: _union,
    typing.Literal: _literal,
}


def _for_class(cls: type) -> _Converter | None:
    if issubclass(cls, Enum):
        return _enum_member(cls)
    if dataclasses.is_dataclass(cls):
        return _dataclass_instance(cls)
    if _is_pydantic_model(cls):
        return _pydantic_model(cls)
    return None  # int, str, datetime...: decode rebuilt those already


def _enum_member(cls: type[Enum]) -> _Converter:
    def rebuild(value: Any) -> Any:
        try:
            return cls(value)
        except (ValueError, TypeError):
            reason = f"{_short(repr(value))} is not one of its values"
            raise _Mismatch(value, cls.__qualname__, reason) from None

    return rebuild


def _dataclass_instance(cls: type) -> _Converter:
    name = cls.__qualname__
    fields = [field for field in dataclasses.fields(cls) if field.init]
    required = frozenset(
        field.name
        for field in fields
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    )
    resolved: list[tuple[str, str, _Converter | None]] | None = None

    def rebuild(value: Any) -> Any:
        nonlocal resolved
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise _Mismatch(value, name, "expected a dict of its fields")
        if missing := required.difference(value):
            raise _Mismatch(value, name, f"missing {', '.join(map(repr, sorted(missing)))}")
        if resolved is None:  # on first use, not before: a dataclass may refer to itself
            hints = _hints(cls)
            resolved = [(f.name, f".{f.name}", _nested(hints.get(f.name, Any))) for f in fields]
        # Keys that are no fields (any more) are ignored; fields not recorded get their default.
        arguments = {
            field: _at(rebuild_field, value[field], field=label)
            for field, label, rebuild_field in resolved
            if field in value
        }
        try:
            return cls(**arguments)
        except (TypeError, ValueError) as error:
            raise _Mismatch(value, name, f"{name}() raised {_short(repr(error))}") from error

    return rebuild


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a forward reference it cannot resolve: such fields stay as decoded
        hints = inspect.get_annotations(cls)
        return {field: hint for field, hint in hints.items() if not isinstance(hint, str)}


def _pydantic_model(cls: Any) -> _Converter:
    def rebuild(value: Any) -> Any:
        try:
            return value if isinstance(value, cls) else cls.model_validate(value)
        except ValueError as error:  # pydantic's ValidationError
            reason = _short(" ".join(str(error).split()))
            raise _Mismatch(value, cls.__qualname__, reason) from error

    return rebuild


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."
