"""JournalIndex: a journal's records indexed by step, the way replay reads them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from durable import JournalCorrupted
from durable._encoding import encode
from durable._engine import _records as records
from durable._engine._replay import JournalIndex, RecordedStep
from durable._storage._frames import StoredRecord


def _index(*kept: Any) -> JournalIndex:
    start = records.start("wf", "w", [1], 1_700_000_000.0, 7)
    stored = [StoredRecord(10 * at, encode(record)) for at, record in enumerate([start, *kept])]
    return JournalIndex(
        stored, workflow_id="w", workflow_name="wf", arguments=None, clock=time.time
    )


def test_a_done_step_is_indexed_as_the_activity_it_names_with_its_outcome() -> None:
    now = 1_700_000_001.0
    index = _index(
        records.done(0, "charge", "d0", 1, now=now, result=5),
        records.scheduled(1, "refund", "d1", 1, now=now),
        records.done(1, "refund", "d1", 1, now=now, error={"type": "E", "msg": "m"}),
        records.done(2, "charge", "d2", 2, now=now, result=None, began=now),
    )
    # Every field as the dataclass's own constructor makes it (a field added to
    # RecordedStep and not to the fast path for "done" records fails here).
    assert index.steps == {
        0: RecordedStep("activity", "charge", "d0", outcome=True),
        1: RecordedStep("activity", "refund", "d1", attempt=1, outcome=True),
        2: RecordedStep("activity", "charge", "d2", outcome=True),
    }
    assert [event["s"] for event in index.events] == [0, 1, 2]


def test_a_done_record_for_a_timer_step_is_refused() -> None:
    with pytest.raises(JournalCorrupted, match="recorded as a timer step"):
        _index(
            records.timer(0, 1_700_000_100.0),
            records.done(0, "charge", "d", 1, now=1_700_000_001.0),
        )
