"""Which records replay once operators acted (pure): resumes set records aside, nested
ones too; set-aside inbox records become skips; links never replay; where a failure began."""

from __future__ import annotations

from typing import Any

import pytest

from durable._engine import _records as records
from durable._engine._outcomes import recorded_error
from durable._engine._set_aside import (
    SET_ASIDE_REASON,
    Cut,
    as_replayed,
    ending,
    failure_cut,
    replayed,
)
from durable._errors import JournalCorrupted

T = 1_700_000_000.0
ERROR: records.ErrorInfo = {"type": "ConnectionError", "msg": "down"}


def start() -> dict[str, Any]:
    return dict(records.start("wf", "id", [], T, 1))


def done(step: int, **outcome: Any) -> dict[str, Any]:
    return dict(records.done(step, "act", "d", 1, now=T, **outcome))


def ended_by(failed: dict[str, Any]) -> dict[str, Any]:
    """The end of a workflow that let the failed step's error through (an ActivityError)."""
    raised = recorded_error("id", failed["a"], failed["s"], failed)
    return dict(records.end_failure(records.describe_error(raised), T, cancelled=False))


def failed_journal() -> list[dict[str, Any]]:
    return [
        start(),  # 0
        done(0, result=1),  # 1
        dict(records.retry(1, "act", "d", 1, error=ERROR, retry_at=T, began=T, now=T)),  # 2
        dict(records.event(0, "go", None, T)),  # 3
        done(1, error=ERROR),  # 4: the failure
        dict(records.event(1, "late", None, T)),  # 5: taken after it
        ended_by(done(1, error=ERROR)),  # 6
    ]


def test_a_failure_is_cut_at_the_failed_steps_outcome() -> None:
    journal = failed_journal()
    assert failure_cut(journal) == Cut(first=4, step=1, steps=1)
    assert ending(journal) is journal[6]


def test_a_resume_sets_aside_the_failure_and_what_followed() -> None:
    journal = [*failed_journal(), dict(records.resume(4, T, step=1))]
    assert ending(journal) is None
    assert replayed(journal) == [0, 1, 3, 5]  # (the retry of step 1 went with its step)
    shown = as_replayed(journal)
    assert shown[3] == dict(records.skip_record(1, SET_ASIDE_REASON, T))  # (position kept)
    assert shown[2] == journal[3]  # (an event before the failure is still delivered)


def test_links_never_replay_and_leave_the_end_standing() -> None:
    journal = [*failed_journal(), dict(records.link("fork", "id-2", T, by=None, reason=None))]
    assert ending(journal) is journal[6]
    assert 7 not in replayed(journal)


def test_a_second_resume_of_a_resumed_run() -> None:
    journal = [*failed_journal(), dict(records.resume(4, T, step=1))]  # 7
    journal += [done(1, error=ERROR), ended_by(done(1, error=ERROR))]
    cut = failure_cut(journal)
    assert cut == Cut(first=8, step=1, steps=1)
    journal.append(dict(records.resume(cut.first, T, step=cut.step)))
    assert replayed(journal) == [0, 1, 3, 5]


def test_a_cancellation_is_cut_where_it_was_taken() -> None:
    journal = [
        start(),
        done(0, result=1),
        dict(records.scheduled(1, "act", "d", 1, now=T)),
        dict(records.cancel(0, "stop", T)),
        done(1, error={**ERROR, "type": "CancelledError"}),
        dict(records.end_failure(ERROR, T, cancelled=True)),
    ]
    assert failure_cut(journal) == Cut(first=3, step=None, steps=2)


def test_a_failure_the_code_caught_then_its_own_is_cut_at_the_end_alone() -> None:
    own = records.describe_error(RuntimeError("a bug after the fallback"))
    journal = [
        start(),
        done(0, error=ERROR),  # (caught: the code went on)
        done(1, result=2),
        dict(records.end_failure(own, T, cancelled=False)),
    ]
    assert failure_cut(journal) == Cut(first=3, step=None, steps=2)


def test_an_earlier_failure_raised_again_is_cut_at_its_step() -> None:
    other = {**ERROR, "msg": "another outage"}
    journal = [
        start(),
        done(0, error=ERROR),  # (kept, compensated, raised again at the end)
        done(1, error=other),  # (caught)
        done(2, result=3),
        ended_by(done(0, error=ERROR)),
    ]
    assert failure_cut(journal) == Cut(first=1, step=0, steps=0)


def test_an_older_durables_words_fall_back_on_the_type() -> None:
    older: records.ErrorInfo = {"type": "durable.ActivityError", "msg": "act failed (older words)"}
    journal = [
        start(),
        done(0, result=1),
        done(1, error=ERROR),
        dict(records.end_failure(older, T, cancelled=False)),
    ]
    assert failure_cut(journal) == Cut(first=2, step=1, steps=1)


def test_a_completed_or_running_journal_has_no_failure() -> None:
    assert failure_cut([start(), done(0, result=1), dict(records.end_result(1, T))]) is None
    assert failure_cut([start(), done(0, result=1)]) is None


def test_a_resume_that_sets_aside_what_follows_it_is_corruption() -> None:
    journal = [start(), dict(records.resume(5, T))]
    with pytest.raises(JournalCorrupted, match="sets aside record 5, after itself"):
        replayed(journal)
