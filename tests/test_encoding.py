from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable import JournalCorrupted, SerializationError
from durable._encoding import decode, encode

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
