from __future__ import annotations

import builtins
import collections
import contextlib
import dataclasses
import enum
import importlib.abc
import inspect
import subprocess
import sys
import types
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, NamedTuple, NewType, Optional, TypeVar, Union
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable import JournalCorrupted, SerializationError
from durable._encoding import convert, decode, encode

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children) | st.dictionaries(st.text() | st.integers(-(2**63), 2**63 - 1), children)
    ),
    max_leaves=20,
)


@given(values)
def test_values_round_trip(value: object) -> None:
    assert decode(encode(value), path="j", offset=8) == value


def test_unsupported_values_name_their_type_and_context() -> None:
    class Card:
        pass

    with pytest.raises(SerializationError, match="Card in the result of charge") as caught:
        encode({"card": Card()}, context="the result of charge")
    assert caught.value.value_type.endswith("Card")
    assert isinstance(caught.value, TypeError)
    with pytest.raises(SerializationError, match="int"):
        encode(2**70)


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (b"\xdd\xff\xff\xff\xff", "array claiming 4G elements"),
        (b"\xdf\xff\xff\xff\xff", "map claiming 4G entries"),
        (b"\xdb\x7f\xff\xff\xff" + b"a" * 8, "string claiming 2 GiB"),
        (b"\xc6\x7f\xff\xff\xff", "bin claiming 2 GiB"),
        (b"\x91" * 100_000 + b"\xc0", "nesting 100,000 deep"),
        (b"not msgpack at all", "text"),
        (b"\xc1", "reserved byte"),
        (b"\x81\x90\x01", "a list as a map key"),
    ],
)
def test_hostile_payloads_fail_fast_and_name_the_place(payload: bytes, what: str) -> None:
    with pytest.raises(JournalCorrupted, match="not valid msgpack") as caught:
        decode(payload, path="/data/wf.journal", offset=1234)
    assert caught.value.offset == 1234
    assert "/data/wf.journal" in str(caught.value)


# --- the types beyond msgpack's own ---------------------------------------------------------

offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
zones = st.none() | st.just(UTC) | st.builds(timezone, offsets)
hashable_atoms = (
    st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=5)
    | st.binary(max_size=5)
    | st.dates()
    | st.datetimes(timezones=zones)
    | st.uuids()
    | st.decimals(allow_nan=False)
)
hashables = st.recursive(
    hashable_atoms,
    lambda children: st.tuples(children, children) | st.frozensets(children, max_size=3),
    max_leaves=6,
)
rich_values = st.recursive(
    values
    | hashables
    | st.times(timezones=zones)
    | st.timedeltas()
    | st.sets(hashables, max_size=4),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(hashables, children, max_size=4)
    ),
    max_leaves=25,
)


def assert_same(decoded: object, original: object) -> None:
    """Equal, of the very same types all the way down, time zones and folds included."""
    assert type(decoded) is type(original), (decoded, original)
    if isinstance(original, list | tuple):
        assert isinstance(decoded, list | tuple)
        assert len(decoded) == len(original)
        for decoded_item, item in zip(decoded, original, strict=True):
            assert_same(decoded_item, item)
    elif isinstance(original, dict):
        assert isinstance(decoded, dict)
        assert list(decoded) == list(original)
        for key, item in original.items():
            assert_same(decoded[key], item)
    elif isinstance(original, datetime | time):
        assert isinstance(decoded, datetime | time)
        assert (decoded, decoded.fold) == (original, original.fold)
        assert decoded.tzinfo == original.tzinfo
        assert decoded.tzname() == original.tzname()
    else:
        assert decoded == original


@given(rich_values)
def test_rich_values_round_trip_with_their_types(value: object) -> None:
    assert_same(decode(encode(value), path="j", offset=8), value)


def test_tuples_stay_tuples_and_can_be_map_keys() -> None:
    value = {(1, "a"): (2, [3, (4,)]), frozenset({1}): {(5, 6)}}
    assert_same(decode(encode(value), path="j", offset=0), value)


def test_time_zones_are_kept() -> None:
    try:
        paris = ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:  # pragma: no cover - no time zone database here
        pytest.skip("no time zone database")
    autumn = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=paris)
    india = timezone(timedelta(hours=5, minutes=30), "IST")
    values = [autumn, datetime(2024, 1, 1, tzinfo=india), datetime(2024, 1, 1, tzinfo=UTC)]
    decoded = decode(encode(values), path="j", offset=0)
    assert decoded[0].tzinfo is paris
    assert decoded[0].fold == 1
    assert decoded[0].utcoffset() == autumn.utcoffset()
    assert decoded[1].tzname() == "IST"
    assert decoded[2].tzinfo is UTC


def test_other_tzinfo_classes_are_kept_as_their_offset() -> None:
    class Fixed(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(hours=-3)

        def tzname(self, dt: datetime | None) -> str:
            return "BRT"

        def dst(self, dt: datetime | None) -> None:
            return None

    class Nowhere(Fixed):
        def utcoffset(self, dt: datetime | None) -> None:  # type: ignore[override]
            return None

    moment = datetime(2024, 5, 1, 12, tzinfo=Fixed())
    decoded = decode(encode(moment), path="j", offset=0)
    assert decoded == moment
    assert (decoded.utcoffset(), decoded.tzname()) == (timedelta(hours=-3), "BRT")
    with pytest.raises(SerializationError, match=r"time.*no UTC offset"):
        encode(time(1, tzinfo=Nowhere()))


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


class Mode(enum.StrEnum):
    FAST = "fast"


class Pair(NamedTuple):
    left: int
    right: str


class Text(str):
    pass


def test_enums_and_subclasses_of_natives_are_stored_plain() -> None:
    value = [Color.RED, Size.LARGE, Mode.FAST, Pair(1, "a"), Text("t"), collections.OrderedDict()]
    decoded = decode(encode(value), path="j", offset=0)
    assert_same(decoded, ["red", 2, "fast", (1, "a"), "t", {}])
    assert_same(decode(encode([True, 1, False, 0.0]), path="j", offset=0), [True, 1, False, 0.0])


@dataclasses.dataclass(frozen=True)
class Item:
    sku: str
    quantity: int = 1
    color: Color = Color.RED


@dataclasses.dataclass
class Order:
    id: int
    items: list[Item]
    placed: datetime
    gift: Optional[Item] = None  # noqa: UP045 - Optional on purpose
    tags: frozenset[str] = frozenset()
    pair: tuple[Item, int] | None = None
    by_sku: dict[str, Item] = dataclasses.field(default_factory=dict)
    total: Decimal = dataclasses.field(init=False, default=Decimal(0), compare=False)
    parent: Order | None = None


def sample_order() -> Order:
    items = [Item("a", 2, Color.BLUE), Item("b")]
    order = Order(
        7,
        items,
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        gift=Item("g"),
        tags=frozenset({"x"}),
        pair=(Item("p"), 3),
        by_sku={"a": items[0]},
        parent=Order(6, [], datetime(2024, 1, 1)),
    )
    order.total = Decimal("9.95")
    return order


def test_dataclasses_are_stored_as_dicts_of_their_fields() -> None:
    decoded = decode(encode(Item("a", 2, Color.BLUE)), path="j", offset=0)
    assert_same(decoded, {"sku": "a", "quantity": 2, "color": "blue"})


def test_dataclasses_convert_back_recursively() -> None:
    order = sample_order()
    decoded = decode(encode(order), path="j", offset=0)
    assert decoded["total"] == Decimal("9.95")
    rebuilt = convert(decoded, Order)
    assert rebuilt == order
    assert rebuilt.total == Decimal(0)  # init=False: not passed, so its default
    assert isinstance(rebuilt.items[0].color, Color)
    assert type(rebuilt.pair) is tuple
    stored = decode(encode([order, None]), path="j", offset=0)
    assert convert(stored, list[Optional[Order]]) == [order, None]  # noqa: UP045
    assert convert(stored, Sequence[Order | None]) == [order, None]
    assert convert({"o": stored[0]}, dict[str, Order]) == {"o": order}


def test_missing_fields_with_defaults_and_unknown_keys_are_tolerated() -> None:
    assert convert({"sku": "a", "gone": 1}, Item) == Item("a")


T = TypeVar("T")


@dataclasses.dataclass
class Box(Generic[T]):
    content: T


UserId = NewType("UserId", int)


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        ("red", Color, Color.RED),
        (2, Size, Size.LARGE),
        ("fast", Mode, Mode.FAST),
        (["red", "blue"], set[Color], {Color.RED, Color.BLUE}),
        (("red",), frozenset[Color], frozenset({Color.RED})),
        ([1, "blue"], tuple[Size, Color], (Size.SMALL, Color.BLUE)),
        ((1, 2), tuple[Size, ...], (Size.SMALL, Size.LARGE)),
        ({"red": 1}, dict[Color, Size], {Color.RED: Size.SMALL}),
        ("red", Literal[Color.RED, "x"], Color.RED),
        ("x", Literal[Color.RED, "x"], "x"),
        ("red", Annotated[Color, "doc"], Color.RED),
        ({"content": {"sku": "a"}}, Box[Item], Box({"sku": "a"})),
        (None, Color | None, None),
        ("blue", Union[None, int, Color], Color.BLUE),  # noqa: UP007
        (3, Union[str, int], 3),  # noqa: UP007
        (3, UserId, 3),
        ([{"sku": "a"}], list[Annotated[Item, "x"]], [Item("a")]),
    ],
)
def test_convert_rebuilds_annotated_types(value: Any, annotation: Any, expected: Any) -> None:
    converted = convert(value, annotation)
    assert converted == expected
    assert type(converted) is type(expected)


@pytest.mark.parametrize(
    "annotation", [Any, object, inspect.Parameter.empty, int, str, float, bytes, datetime, T]
)
def test_convert_leaves_values_needing_nothing_as_they_are(annotation: Any) -> None:
    value = ["anything", 1]
    assert convert(value, annotation) is value
    assert convert(3, float) == 3


def test_convert_errors_name_the_context_the_place_and_the_target() -> None:
    with pytest.raises(SerializationError, match=r"result of charge as Item.*missing 'sku'") as e:
        convert({"quantity": 1}, Item, context="the result of charge")
    assert e.value.target == "Item"
    assert e.value.value_type == "dict"
    order = decode(encode(sample_order()), path="j", offset=0)
    order["items"][1]["color"] = "purple"
    with pytest.raises(SerializationError, match=r"at \.items\[1\]\.color as Color.*'purple'"):
        convert(order, Order, context="the result of charge")
    with pytest.raises(SerializationError, match=r"as tuple\[int, str\].*expected 2 items"):
        convert([1], tuple[int, str])
    with pytest.raises(SerializationError, match=r"at \['k'\] as Size"):
        convert({"k": 9}, dict[str, Size])
    with pytest.raises(SerializationError, match="fits none of the members"):
        convert("text", Item | int)
    with pytest.raises(SerializationError, match="expected a dict of its fields"):
        convert([1], Item)


def test_convert_reports_a_failing_dataclass_constructor() -> None:
    @dataclasses.dataclass
    class Positive:
        number: int

        def __post_init__(self) -> None:
            if self.number <= 0:
                raise ValueError("must be positive")

    with pytest.raises(SerializationError, match="must be positive") as caught:
        convert({"number": -1}, Positive)
    assert isinstance(caught.value.__cause__, ValueError)


def test_pydantic_models_through_a_stand_in_module(monkeypatch: pytest.MonkeyPatch) -> None:
    class BaseModel:
        def __init__(self, **fields: Any) -> None:
            self.__dict__.update(fields)

        def model_dump(self, *, mode: str) -> dict[str, Any]:
            assert mode == "python"
            return dict(self.__dict__)

        @classmethod
        def model_validate(cls, data: Any) -> Any:
            if not isinstance(data, dict):
                raise ValueError("not a dict")
            return cls(**data)

    stand_in = types.ModuleType("pydantic")
    stand_in.BaseModel = BaseModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pydantic", stand_in)

    class Model(BaseModel):
        pass

    stored = decode(encode(Model(when=date(2024, 1, 1), pair=(1, 2))), path="j", offset=0)
    assert_same(stored, {"when": date(2024, 1, 1), "pair": (1, 2)})
    rebuilt = convert(stored, Model)
    assert isinstance(rebuilt, Model)
    assert rebuilt.__dict__ == stored
    with pytest.raises(SerializationError, match="not a dict"):
        convert(3, Model)


def test_real_pydantic_models_round_trip() -> None:
    import pydantic  # noqa: PLC0415 (the test extra has it; imported here, not at collection)

    class Model(pydantic.BaseModel):
        color: Color
        placed: datetime
        sizes: tuple[int, ...]

    model = Model(color=Color.BLUE, placed=datetime(2024, 1, 1), sizes=(1, 2))
    stored = decode(encode(model), path="j", offset=0)
    assert_same(stored, {"color": "blue", "placed": datetime(2024, 1, 1), "sizes": (1, 2)})
    assert convert(stored, Model) == model
    with pytest.raises(SerializationError, match="Model from the recorded dict"):
        convert({"color": "purple"}, Model)


class _Refused(importlib.abc.MetaPathFinder):
    """An import blocker: importing one of `names` fails, as if it were not installed."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def find_spec(self, name: str, *args: object) -> None:
        if name.partition(".")[0] in self.names:
            raise ImportError(f"{name} is blocked by this test")


def test_pydantic_is_never_imported_by_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even when it is installed and another test imported it (as the one above does)."""
    for name in [name for name in sys.modules if name.partition(".")[0] == "pydantic"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Refused("pydantic"), *sys.meta_path])
    convert(decode(encode([sample_order()]), path="j", offset=0), list[Order])
    with pytest.raises(SerializationError):
        encode(object())
    assert "pydantic" not in sys.modules


def test_unsupported_values_name_the_activity_and_what_to_do() -> None:
    with pytest.raises(SerializationError) as caught:
        encode({"k": [object()]}, context="the result", activity="charge")
    assert caught.value.activity == "charge"
    assert caught.value.value_type == "object"
    message = str(caught.value)
    assert "the result of activity 'charge'" in message
    assert "datetime" in message
    assert "convert the value" in message
    with pytest.raises(SerializationError, match="64-bit"):
        encode([Size.SMALL, 2**64])
    deep: tuple[object, ...] = ()
    for _ in range(100):
        deep = (deep,)
    with pytest.raises(SerializationError, match="nest at most"):
        encode(deep)


def ext(code: int, data: bytes) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, data))  # type: ignore[no-any-return]


def packed(value: object) -> bytes:
    return msgpack.packb(value)  # type: ignore[no-any-return]


def nested_tuples(depth: int) -> bytes:
    payload = packed([])
    for _ in range(depth):
        payload = packed([msgpack.ExtType(1, payload)])
    return payload


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (ext(1, b"\xc1"), "tuple"),
        (ext(1, packed(1)), "tuple"),
        (ext(2, packed([[1]])), "set"),
        (ext(3, packed([{}])), "frozenset"),
        (ext(4, packed([2020, 1])), "datetime"),
        (ext(4, packed([2020, 13, 1, 0, 0, 0, 0, 0, None])), "datetime"),
        (ext(4, packed([2020, 1, 1, 0, 0, 0, 0, 0, "../../etc/passwd"])), "datetime"),
        (ext(4, packed([2020, 1, 1, 0, 0, 0, 0, 0, "No/Such_Zone"])), "datetime"),
        (ext(4, packed([2020, 1, 1, 0, 0, 0, 0, 0, [10**12, None]])), "datetime"),
        (ext(4, packed([2020, 1, 1, 0, 0, 0, 0, 0, [1.5, None]])), "datetime"),
        (ext(4, packed({"year": 2020})), "datetime"),
        (ext(5, b""), "date"),
        (ext(6, packed("abc")), "time"),
        (ext(7, packed([10**10, 0, 0])), "timedelta"),
        (ext(7, packed(list(range(9)))), "timedelta"),
        (ext(8, b"\xff"), "Decimal"),
        (ext(8, b"1e99999999999999999999999"), "Decimal"),
        (ext(8, b"one"), "Decimal"),
        (ext(9, b"short"), "UUID"),
        (ext(1, packed([msgpack.ExtType(9, b"x")])), "UUID"),
        (ext(42, b""), "value"),
        (b"\xd4\xfb\x00", "value"),
        (nested_tuples(40), "tuple"),
    ],
)
def test_malformed_ext_payloads_are_corruption(payload: bytes, what: str) -> None:
    with pytest.raises(JournalCorrupted, match=f"malformed {what} ") as caught:
        decode(payload, path="/data/wf.journal", offset=99)
    assert caught.value.offset == 99


def test_unhashable_map_key_from_an_ext_is_corruption() -> None:
    with pytest.raises(JournalCorrupted):
        decode(packed({msgpack.ExtType(1, packed([[1]])): 1}), path="j", offset=0)


def test_decode_never_imports_nor_looks_up_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    zone: tzinfo
    try:
        zone = ZoneInfo("UTC")
    except ZoneInfoNotFoundError:  # pragma: no cover - no time zone database here
        zone = UTC
    value = [
        (1, {2}, frozenset({3})),
        datetime(2024, 1, 1, tzinfo=zone),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))),
        date(2024, 1, 1),
        time(1, tzinfo=UTC),
        timedelta(1),
        Decimal("1.5"),
        UUID(int=5),
        sample_order(),
        {"__class__": "os.system", "__reduce__": ["os", "system"]},
    ]
    payload = encode(value)
    searched: list[str] = []

    class Finder:
        @staticmethod
        def find_spec(name: str, *args: object) -> None:
            searched.append(name)

    def no_import(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"decode imported {args[0]}")

    modules = set(sys.modules)
    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    monkeypatch.setattr(builtins, "__import__", no_import)
    decoded = decode(payload, path="j", offset=0)
    monkeypatch.undo()
    assert searched == []
    assert set(sys.modules) == modules
    assert decoded[-1] == {"__class__": "os.system", "__reduce__": ["os", "system"]}
    assert decoded[-2]["items"][0] == {"sku": "a", "quantity": 2, "color": "blue"}


def test_a_set_encodes_to_the_same_bytes_whatever_the_hash_seed() -> None:
    script = (
        "from durable._encoding import encode; print(encode({'a', 'bb', 'c', 'dd', 'e'}).hex())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(outputs) == 1


@dataclasses.dataclass
class _Point:
    x: int
    y: float = 0.0


class _Colour(enum.Enum):
    RED = 1
    BLUE = "blue"


_ext_fields = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
    ),
    lambda inner: st.lists(inner, max_size=10) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)
_ext_payloads = st.builds(
    lambda code, data: msgpack.packb([1, msgpack.ExtType(code, data)]),
    st.integers(1, 9),
    st.one_of(
        st.binary(max_size=20),
        _ext_fields.map(msgpack.packb),
        st.sampled_from([b"sNaN", b"-Infinity", b"1e999999999", b"NaN", b"1" * 5000]),
    ),
)
_annotations = [
    set[_Point],
    frozenset[_Colour],
    dict[_Colour, _Point],
    list[_Point],
    tuple[int, _Colour],
    _Colour,
    Literal[1, "blue"],
    Optional[_Point],  # noqa: UP045 (the typing spelling is what is tested)
    set[tuple[int, ...]],
]


@given(_ext_payloads)
def test_hostile_ext_values_raise_only_durable_errors(payload: bytes) -> None:
    """Decimal, datetime, huge ints...: decoded or JournalCorrupted, rebuilt or SerializationError.

    Never decimal.InvalidOperation, OverflowError, ValueError or TypeError out of decode or
    convert (an unhashable item of a set, a signaling NaN looked up as an enum value).
    """
    try:
        value = decode(payload, path="j", offset=0)[1]
    except JournalCorrupted:
        return
    for annotation in _annotations:
        for candidate in (value, [value], {value: 1} if _hashable(value) else {}, [[value]]):
            with contextlib.suppress(SerializationError):
                convert(candidate, annotation)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def test_values_a_set_or_an_enum_cannot_hold_are_serialization_errors() -> None:
    with pytest.raises(SerializationError, match="TypeError"):
        convert([{"x": 1}], set[_Point])
    # The enum lookup hashes the signaling NaN: decimal's InvalidOperation up to Python 3.12;
    # 3.13's Enum catches that and says no member has the value (a ValueError).
    with pytest.raises(SerializationError, match=r"InvalidOperation|is not one of its values"):
        convert(Decimal("sNaN"), _Colour)
