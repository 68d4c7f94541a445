"""Which of a journal's records replay, once operators have acted on it; and where it ended.

A journal is append-only, so an operator's resumption does not remove the failure it sets
aside: it appends a "resume" record saying which records no longer count (those from `at`
on, and the failed step's anywhere before). Every reader that replays or describes the
workflow goes through `replayed()` here, so they agree on what the run stands on. A
set-aside inbox record (an event, a cancellation) becomes a skip: its inbox position stays
taken (the message is not delivered again), nothing is delivered. "link" records (a fork or
restart was made from this run) are bookkeeping after the end and never replay.

Pure: validated records in, records out; no I/O, no workflow code.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

from .._errors import JournalCorrupted
from .._storage._frames import StoredRecord
from . import _records as records
from ._outcomes import recorded_error

SET_ASIDE_REASON = "set aside by a resume"
_STEP_RECORDS = frozenset({records.SCHEDULED, records.RETRY, records.DONE})
_kind = operator.itemgetter("k")


def operated(journal: Sequence[records.Record]) -> bool:
    """Whether any operator's record is in the journal (else it replays as it is)."""
    return not records.OPERATED.isdisjoint(map(_kind, journal))  # (one C loop: replay asks)


def replayed(journal: Sequence[records.Record], *, path: str = "") -> list[int]:
    """The indices of the records that replay, in order (the start record's 0 first).

    A set-aside inbox record's index is kept: `as_replayed` turns it into a skip.

    Raises:
        JournalCorrupted: a resume record sets aside records that are not before it.
    """
    kept: list[int] = []
    for index, record in enumerate(journal):
        kind = record["k"]
        if kind == records.LINK:
            continue
        if kind != records.RESUME:
            kept.append(index)
            continue
        first, step = record["at"], record.get("s")
        if first > index:
            raise JournalCorrupted(
                path=path,
                offset=index,
                reason=f"record {index} (a resume) sets aside record {first}, after itself",
            )
        kept = [
            kept_index
            for kept_index in kept
            if _still_replays(journal[kept_index], kept_index, first, step)
        ]
    return kept


def _still_replays(record: records.Record, index: int, first: int, step: int | None) -> bool:
    if index >= first:
        return record["k"] in records.FROM_INBOX  # (its position stays taken, as a skip)
    return step is None or record["k"] not in _STEP_RECORDS or record["s"] != step


def as_replayed(journal: Sequence[records.Record], *, path: str = "") -> list[records.Record]:
    """The records that replay (`journal` itself when no operator acted on it)."""
    if not operated(journal):
        return list(journal)
    kept = replayed(journal, path=path)
    out = []
    last_resume = max(
        (i for i, record in enumerate(journal) if record["k"] == records.RESUME), default=-1
    )
    for index in kept:
        record = journal[index]
        if record["k"] in records.FROM_INBOX and _set_aside(journal, index, last_resume):
            record = dict(records.skip_record(record["q"], SET_ASIDE_REASON, record["t"]))
        out.append(record)
    return out


def _set_aside(journal: Sequence[records.Record], index: int, last_resume: int) -> bool:
    """Whether some resume after inbox record `index` set it aside."""
    return any(
        journal[later]["k"] == records.RESUME and journal[later]["at"] <= index
        for later in range(index + 1, last_resume + 1)
    )


def ending(journal: Sequence[records.Record]) -> records.Record | None:
    """The end record the journal stands on (None: it has not ended, or was resumed since).

    Links after an end leave it ended; a resume after it does not. An end{cont}
    (continue-as-new not rotated yet) counts as an end here: callers check "cont".
    """
    for record in reversed(journal):
        kind = record["k"]
        if kind == records.LINK:
            continue
        return record if kind == records.END else None
    return None


@dataclass(frozen=True)
class Cut:
    """Where a resumption (or a fork from the failure) sets an ended run aside.

    `first`: the index of the first record set aside; `step`: the failed step, whose
    records before it are set aside too (None: the workflow code failed, or it was
    cancelled); `steps`: how many steps the kept records hold (the fork's step).
    """

    first: int
    step: int | None
    steps: int


def failure_cut(journal: Sequence[records.Record], *, path: str = "") -> Cut | None:
    """Where the failure (or cancellation) that ended the journal begins.

    None: it did not end that way (it completed, or has not ended).

    Failed: the activity or child step whose error ended the workflow (the end record
    carries that step's error: uncaught, or caught and raised again) runs again, from its
    first attempt, with everything recorded from it on set aside. When the workflow's own
    code raised the error that ended it (a step's failure it caught does not count), only
    that end is set aside: every recorded step is kept, and the code runs again from there.
    Cancelled: the last cancellation it took.
    """
    end = ending(journal)
    if end is None or "e" not in end or "cont" in end:
        return None
    kept = replayed(journal, path=path)
    end_index = max(i for i in kept if journal[i]["k"] == records.END)
    first, step = end_index, None
    if end.get("c"):
        for index in reversed(kept):
            if journal[index]["k"] == records.CANCEL:
                first = index
                break
    else:
        found = _failed_step(journal, kept, end["e"])
        if found is not None:
            first, step = found, journal[found]["s"]
    steps = 0
    for index in kept:
        record = journal[index]
        if index >= first:
            break
        if record["k"] in records.STEPPED and record["s"] != step:
            steps = max(steps, record["s"] + 1)
    return Cut(first, step, steps)


def _failed_step(
    journal: Sequence[records.Record], kept: list[int], ended: records.ErrorInfo
) -> int | None:
    """The index of the failed step's outcome whose error ended the workflow; None: its code's.

    The end carries the error a step raised in the code when its type and message are
    that step's (the code let it through, or raised it again). A journal whose messages
    read otherwise (an older durable's words) falls back on the type: the last failed
    step's, if it is the end's.
    """
    workflow_id = str(journal[0].get("id", ""))
    failed = [
        index
        for index in kept
        if journal[index]["k"] == records.DONE
        and "e" in journal[index]
        and journal[index]["e"].get("kind") != "child-cancelled"
    ]
    types: list[str] = []
    for index in reversed(failed):
        record = journal[index]
        raised = recorded_error(workflow_id, str(record.get("a", "")), record["s"], record)
        described = records.describe_error(raised)
        if described["type"] == ended["type"] and described["msg"] == ended["msg"]:
            return index
        types.append(described["type"])
    if failed and types[0] == ended["type"]:
        return failed[-1]
    return None


def last_standing(stored: Sequence[StoredRecord], *, path: str) -> records.Record | None:
    """The last record of `stored` that is not a link, validated by the schema; None if none.

    For readers that read only a journal's tail to see whether it ended (recover(), the
    queue's "has it ended?"). `stored` is the whole journal (indexes count from its start).

    Raises:
        JournalCorrupted: a record read is not valid msgpack, or not a record of this format.
        UnsupportedJournalFormat: the journal (its start record, read last) is of a newer durable.
    """
    for index in range(len(stored) - 1, -1, -1):
        record = records.read_record(stored[index], path=path, index=index)
        if record["k"] != records.LINK:
            return record
    return None
