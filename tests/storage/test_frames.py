from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from durable._storage._frames import (
    FRAME_HEADER_SIZE,
    encode_frame,
    encode_frame_v2,
    scan,
    scan_v2,
)

payloads = st.lists(st.binary(min_size=1, max_size=64), max_size=8)


@given(payloads)
def test_scan_reads_back_what_was_framed(items: list[bytes]) -> None:
    data = b"".join(encode_frame(item) for item in items)
    result = scan(data, 0)
    assert [record.payload for record in result.records] == items
    assert result.damage is None
    assert result.valid_end == len(data)


# (bytes that escaping rewrites, often: the MARK, the escape byte and what follows one)
escaped_payloads = st.lists(
    st.lists(st.sampled_from(b"\xc1\xf7\x01\x02a"), min_size=1, max_size=32).map(bytes),
    max_size=8,
)


@given(escaped_payloads)
def test_scan_v2_reads_back_escaped_payloads(items: list[bytes]) -> None:
    data = b"".join(encode_frame_v2(item, 0, 7, 99) for item in items)
    result = scan_v2(data, 0, 7, 99)
    assert [record.payload for record in result.records] == items
    assert result.damage is None
    assert result.valid_end == len(data)


@given(payloads, st.binary(min_size=1, max_size=FRAME_HEADER_SIZE + 70))
def test_a_cut_final_frame_is_a_torn_tail(items: list[bytes], last: bytes) -> None:
    whole = b"".join(encode_frame(item) for item in items)
    final = encode_frame(last)
    for cut in range(1, len(final)):
        result = scan(whole + final[:cut], 0)
        assert [record.payload for record in result.records] == items
        assert result.damage is not None
        assert result.damage.torn_tail
        assert result.valid_end == len(whole)


def test_zero_filled_tail_is_torn_not_a_record() -> None:
    data = encode_frame(b"one") + bytes(4096)
    result = scan(data, 0)
    assert [record.payload for record in result.records] == [b"one"]
    assert result.damage is not None
    assert result.damage.torn_tail


def test_damage_followed_by_a_valid_frame_is_corruption() -> None:
    data = bytearray(encode_frame(b"first") + encode_frame(b"second") + encode_frame(b"third"))
    second = len(encode_frame(b"first"))
    data[second + FRAME_HEADER_SIZE] ^= 0x01
    result = scan(bytes(data), 0)
    assert result.damage is not None
    assert not result.damage.torn_tail
    assert result.damage.offset == second
    assert "checksum" in result.damage.reason


def test_length_over_the_limit_is_reported() -> None:
    data = encode_frame(b"x" * 100)
    result = scan(data, 0, max_payload=10)
    assert result.damage is not None
    assert "exceeds the 10-byte limit" in result.damage.reason


def test_probing_after_a_large_torn_frame_is_bounded() -> None:
    # A torn frame whose payload is full of plausible length fields: without a bound, the
    # search for a valid frame after it checksums O(n^2) bytes.
    payload = (4096).to_bytes(4, "little") * (1 << 16)  # 256 KiB
    torn = encode_frame(payload)[:-1]
    started = time.perf_counter()
    result = scan(encode_frame(b"ok") + torn, 0, max_payload=1 << 30)
    assert time.perf_counter() - started < 30  # a hang guard, not a benchmark
    assert result.damage is not None
    assert [record.payload for record in result.records] == [b"ok"]
