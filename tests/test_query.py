"""WorkflowFilter: every field checked once, naming the field; times, error types, cursors."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

import durable
from durable import InvalidFilter, WorkflowFilter, WorkflowState
from durable._engine._describe import WorkflowDescription
from durable._query import decode_cursor, encode_cursor, error_types, page_of

T = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def described(workflow_id: str, *, started: datetime = T, **changes: object) -> WorkflowDescription:
    base = WorkflowDescription(
        workflow_id=workflow_id,
        workflow_name="charge",
        state=WorkflowState.COMPLETED,
        status=None,
        generation=0,
        steps=1,
        current=None,
        attempt=None,
        waiting_for=None,
        wake_at=None,
        started=started,
        updated=started,
        ended=started + timedelta(seconds=1),
        error=None,
        parent=None,
        unread_events=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"state": "done"}, "state"),
        ({"state": ["failed", 3]}, "state"),
        ({"workflow_name": ""}, "workflow_name"),
        ({"workflow_name": ["a", 5]}, "workflow_name"),
        ({"id_prefix": 5}, "id_prefix"),
        ({"id_prefix": "x" * 1001}, "id_prefix"),
        ({"error_type": ""}, "error_type"),
        ({"queue": ["a"]}, "queue"),
        ({"parent": b"p"}, "parent"),
        ({"started_after": "yesterday-ish"}, "started_after"),
        ({"ended_before": datetime(2026, 1, 1)}, "ended_before"),  # naive: which zone?
        ({"updated_after": float("nan")}, "updated_after"),
        ({"started_before": True}, "started_before"),
        ({"workflow_id": [f"id-{n}" for n in range(10_001)]}, "workflow_id"),
    ],
)
def test_a_bad_field_is_refused_by_name(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        WorkflowFilter(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert f"{field}=" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, durable.DurableError)


def test_times_take_datetimes_epochs_iso_text_and_durations_ago() -> None:
    before = time.time()
    where = WorkflowFilter(
        started_after="2h",
        started_before="2026-12-06T13:00:00+01:00",
        ended_after=T,
        ended_before=1_800_000_000,
        updated_after="2026-12-06T11:00:00Z",
    )
    assert before - 7200 - 1 <= where.bounds["started_after"] <= time.time() - 7200
    assert where.bounds["started_before"] == T.timestamp()
    assert where.bounds["ended_after"] == T.timestamp()
    assert where.bounds["ended_before"] == 1_800_000_000.0
    assert where.bounds["updated_after"] == T.timestamp() - 3600
    # resolved once: the same filter means the same instants later (a bulk's journaled filter)
    assert WorkflowFilter.from_plain(where.to_plain()).bounds == where.bounds


def test_matching_each_field() -> None:
    failed = described(
        "pay-1",
        state=WorkflowState.FAILED,
        error="durable.ActivityError: activity 'debit' of workflow 'pay-1' failed after 3 "
        "attempts with myapp.errors.Declined: card declined",
        parent="batch-7",
    )
    running = described("ship-1", workflow_name="ship", state=WorkflowState.RUNNING, ended=None)
    assert WorkflowFilter(state="failed").matches(failed, {})
    assert WorkflowFilter(state=["running", WorkflowState.FAILED]).matches(running, {})
    assert not WorkflowFilter(state="failed").matches(running, {})
    assert WorkflowFilter(workflow_name=["ship", "x"]).matches(running, {})
    assert WorkflowFilter(id_prefix="pay-").matches(failed, {})
    assert not WorkflowFilter(id_prefix="pay-").matches(running, {})
    assert WorkflowFilter(workflow_id=["ship-1"]).matches(running, {})
    assert WorkflowFilter(parent="batch-7").matches(failed, {})
    assert not WorkflowFilter(parent="batch-7").matches(running, {})
    for name in ("Declined", "myapp.errors.Declined", "ActivityError", "durable.ActivityError"):
        assert WorkflowFilter(error_type=name).matches(failed, {}), name
    assert not WorkflowFilter(error_type="ValueError").matches(failed, {})
    assert WorkflowFilter(queue="q").matches(running, {"ship-1": "q"})
    assert not WorkflowFilter(queue="q").matches(running, {"ship-1": "other"})
    # an ended_* bound matches only what has ended; the bounds are [after, before)
    assert not WorkflowFilter(ended_after=0).matches(running, {})
    assert WorkflowFilter(started_after=T, started_before=T + timedelta(seconds=1)).matches(
        failed, {}
    )
    assert not WorkflowFilter(started_before=T).matches(failed, {})
    assert WorkflowFilter().empty
    assert WorkflowFilter().matches(running, {})


def test_error_types_of_a_description() -> None:
    assert error_types(None) == set()
    assert error_types("ValueError: bad") == {"ValueError"}
    assert error_types("app.Boom: x: y") == {"app.Boom", "Boom"}


def test_unknown_plain_fields_and_non_mappings_are_refused() -> None:
    with pytest.raises(InvalidFilter, match="colour"):
        WorkflowFilter.from_plain({"colour": "red"})
    with pytest.raises(InvalidFilter, match="filter"):
        WorkflowFilter.from_plain(["state"])  # type: ignore[arg-type]


def test_pages_follow_a_stable_order_by_cursor() -> None:
    rows = [described(f"wf-{n}", started=T + timedelta(seconds=n // 2)) for n in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        page = page_of(list(rows), 3, cursor, {})
        assert page.total == 7
        seen += [d.workflow_id for d in page.workflows]
        cursor = page.next_cursor
        if cursor is None:
            break
    # newest start first, ties by id
    assert seen == ["wf-6", "wf-4", "wf-5", "wf-2", "wf-3", "wf-0", "wf-1"]
    # a row that appears after the cursor's was handed out does not shift the next page
    first = page_of(list(rows), 3, None, {})
    newer = [*rows, described("wf-new", started=T + timedelta(hours=1))]
    assert [d.workflow_id for d in page_of(newer, 3, first.next_cursor, {}).workflows] == [
        "wf-2",
        "wf-3",
        "wf-0",
    ]


@pytest.mark.parametrize("cursor", ["garbage!", "", "W10", "WyJ4IiwgMV0", "a" * 5000])
def test_a_bad_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        decode_cursor(cursor)
    assert caught.value.field == "cursor"


def test_a_cursor_round_trips_and_limits_are_checked() -> None:
    row = described("wf-1")
    assert decode_cursor(encode_cursor(row)) == (-T.timestamp(), "wf-1")
    for limit in (0, -1, 10_001, 2.5, True):
        with pytest.raises(InvalidFilter, match="limit"):
            page_of([], limit, None, {})  # type: ignore[arg-type]
