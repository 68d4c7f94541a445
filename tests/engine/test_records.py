"""The record schema: what each builder makes its validator accepts, what it refuses and how.

The structural fuzz of every reader is tests/properties/test_malformed_records.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._encoding import encode
from durable._engine import _records as records
from durable._storage._frames import StoredRecord

T = 1_700_000_000.0
ERROR: records.ErrorInfo = {"type": "ValueError", "msg": "no", "tb": ""}


def every_kind() -> list[dict[str, Any]]:
    """One record of each kind (and shape) the engine writes, start first."""
    built: list[Any] = [
        records.start(
            "wf",
            "id",
            [1, "two"],
            T,
            7,
            gen=1,
            q=2,
            carry=[["go", 1]],
            parent="p",
            origin=records.origin("src", "fork", T, by="ops", reason="why", s=3, ov=1, n=4),
            tc=TRACE,
        ),
        records.scheduled(0, "step", "abcd", 1, now=T),
        records.scheduled(1, "child:wf", "abcd", 1, now=T, child="id.1", detached=True),
        records.retry(0, "step", "abcd", 1, error=ERROR, retry_at=T + 1, began=T, now=T),
        records.done(0, "step", "abcd", 2, now=T, result={"a": [1]}, began=T),
        records.done(2, "step", "abcd", 1, now=T, error=ERROR),
        records.done(3, "child:wf", "ef", 1, now=T, error={**ERROR, "kind": "child", "id": "c"}),
        records.timer(4, float("inf")),
        records.let_go(records.timer(4, float("inf"))),
        records.fired(5, T),
        records.wait(6, "go"),
        records.let_go(records.wait(6, "go")),
        records.event(2, "go", None, T, event_id="e-1"),
        records.cancel(3, "enough", T),
        records.skip_record(4, "x" * 1000, T),
        records.status(7, {"progress": 0.5}, T),
        records.patch("fix-1", 8),
        records.end_result([1, 2], T),
        records.end_failure(ERROR, T, cancelled=True),
        records.end_continued([3], 5, [["go", None]], T),
        records.resume(3, T, step=2, by="ops", reason="fixed", request_id="r-1"),
        records.link("fork", "id-fork-3", T, by="ops", reason=None),
        records.stream_value(9, "tokens", "hel", T),  # (after the ends: indexes above kept)
        records.emitted(10, 2, "tokens", {"lo": 1}, incarnation=77, now=T),
        records.run(TRACE, T),  # 24
        records.done(9, "step", "ab", 1, now=T, result=1, site=SITE),  # 25: names its site
        records.timer(10, T, site={"w": 9}),  # 26: a later step from that site
        records.event(5, "go", None, T, carrier=TRACE),  # 27
        records.park(T + 60, 6, T),  # 28
    ]
    return built


TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
SITE = {"w": 9, "wp": "/app/shop.py", "wl": 42, "wn": "order_workflow"}


def stored(*values: Any) -> list[StoredRecord]:
    return [StoredRecord(8 + 100 * index, encode(value)) for index, value in enumerate(values)]


def test_every_builder_makes_a_record_its_validator_accepts() -> None:
    built = every_kind()
    read = records.read_journal(stored(*built), path="j")
    assert read == [dict(record) for record in built]
    assert {record["k"] for record in read} == records.KNOWN
    assert len(read[14]["reason"]) == records.SKIP_REASON_LIMIT


def test_format_1_records_are_accepted() -> None:
    start = {"k": "start", "v": 1, "wf": "old", "id": "old", "args": [3], "t": 1.0, "seed": 7}
    sched = {"k": "sched", "s": 0, "a": "step", "d": "ab", "n": 1, "t": 2.0}
    retry = {"k": "retry", "s": 0, "n": 1, "e": ERROR, "at": 3.0, "t": 2.5}
    done = {"k": "done", "s": 0, "r": 10, "t": 3.0}  # no activity name, no attempt
    assert records.read_journal(stored(start, sched, retry, done), path="j")[3] == done


@pytest.mark.parametrize(
    ("index", "change", "problem"),
    [
        (4, {"s": -1}, "record 4 ('done') is malformed: its step 's'"),
        (4, {"s": True}, "record 4 ('done') is malformed: its step 's'"),
        (4, {"t": float("nan")}, "record 4 ('done') is malformed"),
        (4, {"t": 1e300}, "record 4 ('done') is malformed"),
        (4, {"a": 5}, "its activity name 'a' or digest 'd'"),
        (5, {"e": {"type": "X"}}, "lacks a text 'type' or 'msg'"),
        (6, {"e": {**ERROR, "kind": "child"}}, "names no child id"),
        (6, {"e": {**ERROR, "kind": "child-id-in-use"}}, "names no child id"),
        (6, {"e": {**ERROR, "kind": "child-id-in-use", "id": "c", "was": 3}}, "'was' is not text"),
        (2, {"dt": 2}, "its 'dt' (detached) is not 0 or 1"),
        (2, {"dt": True}, "its 'dt' (detached) is not 0 or 1"),
        (1, {"dt": 1}, "its 'dt' (detached) is on a step that names no child"),
        (7, {"at": float("nan")}, "its fire time 'at'"),
        (10, {"n": ["go"]}, "its event name 'n'"),
        (12, {"q": 2**64 - 1, "id": 3}, "its event id 'id' is not text"),
        (13, {"m": None}, "its reason 'm'"),
        (16, {"id": b"fix"}, "its patch id 'id'"),
        (17, {"r": None, "k": "nonsense"}, "unknown kind 'nonsense'"),
        (18, {"e": "boom"}, "its error 'e' is not a map"),
        (19, {"cont": {"a": 1}}, "its next arguments 'cont' are not a list"),
        (19, {"carry": [["go"]]}, "'carry' holds something other than"),
        (22, {"sn": 3}, "its stream name 'sn' is missing or not text"),
        (22, {"s": -2}, "its step 's' is not an int >= 0"),
        (23, {"i": -1}, "its attempt 'n' or its run's incarnation 'i'"),
        (23, {"v": None, "sn": ""} | {"t": None}, "its value 'v' or time 't'"),
        (0, {"seed": 1.5}, "its 'seed' is missing or not int"),
        (0, {"args": (1,)}, "its 'args' is missing or not list"),
        (0, {"hs": -1}, "its 'hs' is not an int >= 0"),
        (0, {"hs": "7"}, "its 'hs' is not an int >= 0"),
        (3, {"k": "start"}, "record 3 is a start record"),
        (0, {"tc": "00-abc"}, "its trace carrier 'tc' is not a map"),
        (24, {"tc": {"traceparent": 7}}, "its trace carrier 'tc' holds something other"),
        (24, {"tc": {str(n): "x" for n in range(17)}}, "at most 16 entries"),
        (27, {"tc": ["x"]}, "its trace carrier 'tc' is not a map"),
        (25, {"w": -1}, "its call site 'w' is not an int >= 0"),
        (25, {"wl": "42"}, "its call site ('wp' path, 'wl' line, 'wn' function) is incomplete"),
        (26, {"wp": "/app/shop.py"}, "is incomplete"),
        (10, {"w": 1.5}, "its call site 'w'"),
    ],
)
def test_a_malformed_record_is_refused_naming_record_offset_and_problem(
    index: int, change: dict[str, Any], problem: str
) -> None:
    built: list[Any] = every_kind()
    built[index] = {**built[index], **change}
    with pytest.raises(durable.JournalCorrupted) as raised:
        records.read_journal(stored(*built), path="/x/order.journal")
    assert problem in str(raised.value)
    assert raised.value.offset == 8 + 100 * index
    assert "/x/order.journal" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([1, 2], "record 0 is a list, not a map"),
        ({"k": "done", "s": 0, "r": 1, "t": T}, "the first record is a 'done' record"),
        ({"k": 7}, "record 0 has no kind 'k'"),
        ({"k": "start", "wf": "wf"}, "no format version"),
    ],
)
def test_a_journal_must_open_with_a_start_record(value: Any, problem: str) -> None:
    with pytest.raises(durable.JournalCorrupted, match=problem):
        records.read_journal(stored(value), path="j")


def test_a_newer_format_is_refused_as_such_before_its_shape_is_judged() -> None:
    with pytest.raises(durable.UnsupportedJournalFormat):
        records.read_journal(stored({"k": "start", "v": 3}), path="j")


def test_inbox_messages_are_validated_too() -> None:
    good = records.event_message("go", [1], None, T)
    assert records.read_message(stored(good)[0], path="i") == good
    assert records.message_problem(records.cancel_message("why", "r-1", T)) is None
    assert records.message_problem({**good, "n": 3}) is not None
    assert records.message_problem({**good, "k": "skip"}) is not None
    assert records.message_problem([good]) is not None
    with pytest.raises(durable.JournalCorrupted, match="its time 't'"):
        records.read_message(stored({**good, "t": "now"})[0], path="i")


def test_a_senders_malformed_trace_carrier_is_dropped_not_refused() -> None:
    # An inbox message is anyone's: a bad `tc` must not make the event undeliverable.
    message = {**records.event_message("go", 1, None, T), "tc": {"traceparent": 3}}
    assert records.message_problem(message) is None
    assert records.trace_carrier(message["tc"]) is None
    assert records.trace_carrier(TRACE) == TRACE


def test_fire_times_of_any_size_read_as_datetimes() -> None:
    assert records.moment(float("inf")).year == 9999
    assert records.moment(-1e300).year == 1
    assert records.moment(0).isoformat() == "1970-01-01T00:00:00+00:00"


def test_a_forks_marks_are_the_schemas_and_pass_its_validators() -> None:
    for record in (
        records.event(2, "go", None, T),
        records.cancel(3, "enough", T),
        records.skip_record(4, "why", T),
    ):
        copied = records.forked_copy(dict(record))
        assert copied == {**record, "f": 1}
        assert records.check_record(copied, path="j", offset=8, index=1) == copied
    done = records.done(3, "step", "abcd", 1, now=T, result=5)
    marked = records.overridden(done)
    assert marked == {**done, "ov": 1}
    assert records.check_record(marked, path="j", offset=8, index=1) == marked


def test_an_unreadable_inbox_message_stands_in_as_undecodable_never_a_kind() -> None:
    assert records.undecodable_message("why") == {"k": records.UNDECODABLE, "m": "why"}
    assert records.UNDECODABLE not in records.KNOWN


def test_the_start_builders_named_fields_are_its_record_keys() -> None:
    made = records.origin("src", "restart", T, by=None, reason=None)
    named = records.start(
        "wf",
        "id",
        [],
        T,
        7,
        generation=2,
        inbox_next=3,
        carry=[],
        parent="p",
        deadline=T + 1,
        trace=TRACE,
        stream_offsets={"tokens": 1},
        origin=made,
    )
    keys: dict[str, Any] = {
        "gen": 2,
        "q": 3,
        "carry": [],
        "parent": "p",
        "dl": T + 1,
        "tc": TRACE,
        "so": {"tokens": 1},
        "from": made,
    }
    assert named == records.start("wf", "id", [], T, 7, **keys)
    assert records.check_record(named, path="j", offset=0, index=0) == named
    bare = records.start("wf", "id", [], T, 7, generation=None, parent=None, deadline=None)
    assert set(bare) == {"k", "v", "wf", "id", "args", "t", "seed"}  # (None: not written)


ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def documented_kinds() -> list[str]:
    """The kinds of docs/architecture.md's table of the engine's records (its first column)."""
    text = ARCHITECTURE.read_text()
    section = text[text.index("## The engine's records") :]
    table = section[section.index("| kind |") :].split("\n\n", 1)[0]
    return re.findall(r"^\| `([a-z]+)` \|", table, flags=re.MULTILINE)


def test_the_architecture_docs_table_lists_every_known_kind_once() -> None:
    listed = documented_kinds()
    missing = sorted(records.KNOWN - set(listed))
    extra = sorted(set(listed) - records.KNOWN)
    twice = sorted({kind for kind in listed if listed.count(kind) > 1})
    assert (missing, extra, twice) == ([], [], []), (
        f"docs/architecture.md's table of record kinds: missing {missing} (in records.KNOWN), "
        f"extra {extra} (not in records.KNOWN), listed twice {twice}"
    )


def test_the_schema_docstring_lists_every_known_kind() -> None:
    assert records.__doc__ is not None
    listed = set(re.findall(r"^ {4}([a-z]+) +\{k\b", records.__doc__, flags=re.MULTILINE))
    missing, extra = sorted(records.KNOWN - listed), sorted(listed - records.KNOWN)
    assert (missing, extra) == ([], []), (
        f"durable/_engine/_records/__init__.py's docstring: missing kinds {missing}, extra {extra}"
    )


def test_every_known_kind_has_a_validator() -> None:
    assert set(records._CHECKS) == records.KNOWN


def test_a_known_kind_without_a_validator_is_refused_not_waved_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks = dict(records._CHECKS)
    del checks[records.PARK]
    monkeypatch.setattr(records, "_CHECKS", checks)
    with pytest.raises(durable.JournalCorrupted, match="'park', which has no validator"):
        records.check_record(records.park(T, 0, T), path="j", offset=8, index=1)
