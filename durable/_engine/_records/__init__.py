"""The journal's record schema: every record kind, its builder and its validator.

Records are small msgpack maps with short keys, one per event. Writers build them with the
builders below (one per kind); readers (replay, describe, history, the catalog, the
mailroom, the runtime) get them through `read_journal` / `read_message` (`read_record` for
one record of a journal), which decode and validate each record once, here: a
checksum-valid record of the wrong shape (an unknown kind, a missing key, a value of the
wrong type, a time no clock could give) is one `JournalCorrupted` naming the file, the
record and what is wrong, and readers index the validated maps without checking again.
Validation is a few dict lookups per record.

Engine format version 2 (the "v" of the start record; the storage frame format is separate):

    start  {k, v, wf: workflow name, id, args: [...], t: start time, seed
            [, gen: generation (continue-as-new), q: first inbox message, parent: id,
               carry: events handed on, dl: deadline (epoch seconds: the
               execution_timeout's end), tc, so: stream offsets, from: origin]}
           (start()'s keyword parameters name each optional key for what it means)
    sched  {k, s: step, a: activity name, d: argument digest, n: attempt, t
            [, id: child workflow id [, dt: 1 if the child was started detached]]}
    retry  {k, s, a, d, n: failed attempt, e: error, at: when the next attempt starts,
            b: when the failed attempt began, t}
    done   {k, s, a, d, n: attempt, r: result, b: when it began, t}
           | {k, s, a, d, e: error, n, b, t}                                       outcome
    timer  {k, s, at: absolute fire time (epoch seconds) [, x: 1 once the code let go of it]}
    fired  {k, s, t}
    wait   {k, s, n: event name [, x: 1]}          the code waits for an event (x: no more)
    event  {k, q: inbox position, n: name, p: payload, t [, id: event id]}   delivered
    cancel {k, q: inbox position, m: reason, t [, id: request id]}   delivered: cancels
    skip   {k, q: inbox position, reason, t}        a message that could not be delivered
    status {k, s, v: value, t}                                     set_status(), published
    stream {k, s, sn: stream name, v: value, t}       Stream.append() in workflow code (a step)
    emit   {k, s: the activity's step, n: its attempt, i: the run's incarnation, sn, v, t}
                                            Stream.append() in an activity (not a step)
    patch  {k, id: patch id, s: the step it was taken before}          patched() said yes
    end    {k, r: result, t} | {k, e: error, t [, c: 1 if cancelled]} | {k, cont: args, t}
           (a cancellation by the deadline: e.kind = "execution-timeout")
    resume {k, at: first record set aside, t [, s: step set aside, by, m: reason, id]}
           an operator resumed an ended workflow: records from `at` on (and step `s`'s
           records anywhere) no longer replay; their inbox positions stay taken
    link   {k, how: "fork" | "restart", id: the new run's id, t [, by, m]}   after the end:
           a run was made from this one (bookkeeping: nothing replays it)

Operations (durable/_operations): a fork's or restart's start record has `from`:
{id: source id, how: "fork" | "restart", t [, by, m, s: the step it runs live from,
ov: the step whose result was overridden, n: records copied after the start record]}. A
fork copies the source's records; its copied inbox records carry `f: 1` (forked_copy: their
`q` is the source's inbox position, not this journal's: they take no position of its own
inbox); an overridden step's "done" carries `ov: 1` (overridden).
    run    {k, tc: trace carrier, t}        a run went live, traced (the next run links to it)
    park   {k, at: wake-up time (inf: only mail wakes it), qn: the first inbox position not
            taken (not `q`: it takes none), t}    a sleeper was unloaded here, idle; last
           in its journal until it is loaded again (recover() parks such a journal as a
           row, without a replay); replay, history and forks skip it

Trace carriers (`tc`, on start, event and run records, and on inbox event messages) are
small maps of text to text (W3C `traceparent`, `tracestate`, `baggage`), written only by a
runtime with OpenTelemetry on: the starter's or sender's context, or a run's own. Step
records (sched, retry, done, timer, wait, status) may carry their call site: `w`, the site's
number (the step that first asked from there), and on that first step's records also `wp`
file, `wl` line, `wn` function: where the workflow's code asked for the step. A journal
names each site once however many steps come from it. Both arrived together (journals
before them have neither; replay ignores both, and readers of older versions ignore the
site keys).

A "sched" is written only when it matters: before an at_most_once attempt (synced), or once
an attempt is still running a loop iteration after it started. The first record of a step
names it (activity and digest), so most steps cost one record. Version 1 journals (always a
"sched" first; "retry" and "done" without `a`/`d`) are read as before.

`s` is the step: the position of a command (activity call, child workflow, timer, event
wait, status) in the order the workflow code asked for them. A child workflow is an activity
step named "child:<workflow name>". Events and cancellations come from the inbox, in the
order the runner took them; `q` says how far it has read. Errors are {type, msg, tb[, kind]}
(a child step's: kind "child", "child-cancelled" or "child-id-in-use", with the child's `id`;
the last also `was`, `asked` and `site`, the facts its exception is rebuilt from).
Times are epoch seconds.
Only `done`, `fired`, `event` and `cancel` are delivered to the workflow; the others are
bookkeeping that replay checks (`sched`, `timer`, `wait`, `status`) or resumes from (`retry`,
`patch`); a `skip` takes its inbox position like `event` and `cancel` and delivers nothing (the
message was undecodable, of an unknown kind, or too large to journal; `reason` says which, at
most SKIP_REASON_LIMIT characters). Readers ignore unknown keys, so later
versions may add keys; a start record with a newer `v` is refused.

Inbox messages (storage's inbox, written by senders) are maps too:

    event  {k, n: name, p: payload, id: event id or nil, t}
    cancel {k, m: reason, id: request id or nil, t}

A reader shows one `read_message` refuses as {k: "undecodable", m: why} (undecodable_message;
a stand-in, never written: UNDECODABLE is no kind).

What validation guarantees, beyond the keys above and their types: `s`, `q`, `n`, `gen`
are ints >= 0 (not bools); `t` and `b` are clock readings (finite, between the years 1
and 9999, so any reader can make a datetime of them); `at` and `dl` are any number but NaN
(a timer may be armed for ever: inf); `e` is an error map {type, msg[, tb, kind, id]} whose `id` is
there when `kind` names a child; a "done" has `r` or `e`; an "end" has `r`, `e` or a list
`cont`; `carry` is a list of [name, payload] pairs. The first record is the only "start".
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..._encoding import decode, decode_leading
from ..._errors import JournalCorrupted, UnsupportedJournalFormat
from ..._storage._frames import StoredRecord
from ._common import CANCEL as CANCEL
from ._common import CARRIER_ENTRIES as CARRIER_ENTRIES
from ._common import CARRIER_TEXT as CARRIER_TEXT
from ._common import CHILD_KINDS as CHILD_KINDS
from ._common import CHILD_PREFIX as CHILD_PREFIX
from ._common import DEADLINE_CANCEL_ID as DEADLINE_CANCEL_ID
from ._common import DELIVERED as DELIVERED
from ._common import DONE as DONE
from ._common import EMIT as EMIT
from ._common import END as END
from ._common import EVENT as EVENT
from ._common import FIRED as FIRED
from ._common import FORMAT_VERSION as FORMAT_VERSION
from ._common import FROM_INBOX as FROM_INBOX
from ._common import KNOWN as KNOWN
from ._common import LINK as LINK
from ._common import LINK_KINDS as LINK_KINDS
from ._common import NOTES as NOTES
from ._common import OPERATED as OPERATED
from ._common import PARK as PARK
from ._common import PATCH as PATCH
from ._common import RESUME as RESUME
from ._common import RETRY as RETRY
from ._common import RUN as RUN
from ._common import SCHEDULED as SCHEDULED
from ._common import SKIP as SKIP
from ._common import SKIP_REASON_LIMIT as SKIP_REASON_LIMIT
from ._common import START as START
from ._common import STATUS as STATUS
from ._common import STEPPED as STEPPED
from ._common import STREAM as STREAM
from ._common import STREAMED as STREAMED
from ._common import TIMED_OUT as TIMED_OUT
from ._common import TIMER as TIMER
from ._common import WAIT as WAIT
from ._common import ErrorInfo as ErrorInfo
from ._common import Record as Record
from ._common import Site as Site
from ._common import _Check, _short
from ._common import describe_error as describe_error
from ._common import moment as moment
from ._common import trace_carrier as trace_carrier
from ._inbox import UNDECODABLE as UNDECODABLE
from ._inbox import CancelMessage as CancelMessage
from ._inbox import CancelRecord as CancelRecord
from ._inbox import EventMessage as EventMessage
from ._inbox import EventRecord as EventRecord
from ._inbox import SkipRecord as SkipRecord
from ._inbox import UndecodableMessage as UndecodableMessage
from ._inbox import _check_cancel, _check_event, _check_skip
from ._inbox import cancel as cancel
from ._inbox import cancel_message as cancel_message
from ._inbox import event as event
from ._inbox import event_message as event_message
from ._inbox import forked_copy as forked_copy
from ._inbox import message_problem as message_problem
from ._inbox import read_message as read_message
from ._inbox import skip_record as skip_record
from ._inbox import undecodable_message as undecodable_message
from ._lifecycle import STREAM_OFFSETS_KEPT as STREAM_OFFSETS_KEPT
from ._lifecycle import EndRecord as EndRecord
from ._lifecycle import LinkRecord as LinkRecord
from ._lifecycle import Origin as Origin
from ._lifecycle import ParkRecord as ParkRecord
from ._lifecycle import PatchRecord as PatchRecord
from ._lifecycle import ResumeRecord as ResumeRecord
from ._lifecycle import RunRecord as RunRecord
from ._lifecycle import StartFields as StartFields
from ._lifecycle import StartRecord as StartRecord
from ._lifecycle import (
    _check_end,
    _check_link,
    _check_park,
    _check_patch,
    _check_resume,
    _check_run,
    _check_start,
)
from ._lifecycle import end_continued as end_continued
from ._lifecycle import end_failure as end_failure
from ._lifecycle import end_result as end_result
from ._lifecycle import link as link
from ._lifecycle import origin as origin
from ._lifecycle import park as park
from ._lifecycle import patch as patch
from ._lifecycle import resume as resume
from ._lifecycle import run as run
from ._lifecycle import start as start
from ._steps import DoneRecord as DoneRecord
from ._steps import FiredRecord as FiredRecord
from ._steps import RetryRecord as RetryRecord
from ._steps import ScheduledRecord as ScheduledRecord
from ._steps import StatusRecord as StatusRecord
from ._steps import TimerRecord as TimerRecord
from ._steps import WaitRecord as WaitRecord
from ._steps import (
    _check_done,
    _check_fired,
    _check_retry,
    _check_scheduled,
    _check_status,
    _check_timer,
    _check_wait,
)
from ._steps import done as done
from ._steps import fired as fired
from ._steps import let_go as let_go
from ._steps import overridden as overridden
from ._steps import retry as retry
from ._steps import scheduled as scheduled
from ._steps import status as status
from ._steps import timer as timer
from ._steps import wait as wait
from ._streams import EmitRecord as EmitRecord
from ._streams import StreamRecord as StreamRecord
from ._streams import _check_emit, _check_stream
from ._streams import emitted as emitted
from ._streams import stream_value as stream_value

_CHECKS: dict[str, _Check] = {
    START: _check_start,
    SCHEDULED: _check_scheduled,
    RETRY: _check_retry,
    DONE: _check_done,
    TIMER: _check_timer,
    FIRED: _check_fired,
    WAIT: _check_wait,
    EVENT: _check_event,
    CANCEL: _check_cancel,
    SKIP: _check_skip,
    STATUS: _check_status,
    STREAM: _check_stream,
    EMIT: _check_emit,
    PATCH: _check_patch,
    END: _check_end,
    RESUME: _check_resume,
    LINK: _check_link,
    RUN: _check_run,
    PARK: _check_park,
}


def _record_problem(record: Any, index: int) -> str | None:
    """What is wrong with the decoded record at `index` of a journal (None: nothing)."""
    if type(record) is not dict:
        return f"record {index} is a {type(record).__name__}, not a map"
    kind = record.get("k")
    if type(kind) is not str:
        return f"record {index} has no kind 'k'"
    if (kind == START) != (index == 0):
        return (
            f"record {index} is a start record (the first one only may be)"
            if index
            else f"the first record is a {kind!r} record, not a workflow start record"
        )
    check = _CHECKS.get(kind)
    if check is None:
        if kind in KNOWN:  # (a kind added without its validator: this module's bug, refused)
            return f"record {index} is of kind {kind!r}, which has no validator in this durable"
        return f"record {index} is of an unknown kind {kind[:40]!r} (written by a newer durable?)"
    problem = check(record)
    return None if problem is None else f"record {index} ({kind!r}) is malformed: {problem}"


def check_record(record: Any, *, path: Path | str, offset: int, index: int) -> Record:
    """`record`, the decoded record at `index` (byte `offset`) of journal `path`, validated.

    Raises:
        JournalCorrupted: it is not a record of this format (says which and why).
        UnsupportedJournalFormat: a start record of a newer format version.
    """
    if index == 0 and type(record) is dict and record.get("k") == START:
        version = record.get("v")
        if type(version) is not int or version < 1:
            raise JournalCorrupted(
                path=path, offset=offset, reason="the start record has no format version 'v'"
            )
        if version > FORMAT_VERSION:
            raise UnsupportedJournalFormat(path=path, found=version, supported=FORMAT_VERSION)
    problem = _record_problem(record, index)
    if problem is not None:
        raise JournalCorrupted(path=path, offset=offset, reason=_short(problem))
    return record  # type: ignore[no-any-return]


def read_record(stored: StoredRecord, *, path: Path | str, index: int) -> Record:
    """One record of a journal, decoded and validated: the one at `index` (0: its start).

    For readers that need a record or two of a journal, not all of it (recover() reads
    the start and the tail); `index` matters: the start record is record 0 only.

    Raises:
        JournalCorrupted: it is not valid msgpack, or not a record of this format.
        UnsupportedJournalFormat: a start record of a newer format version.
    """
    offset = stored.offset
    record = decode(stored.payload, path=path, offset=offset)
    return check_record(record, path=path, offset=offset, index=index)


def read_journal(
    stored: Iterable[StoredRecord], *, path: Path | str, first_index: int = 0
) -> list[Record]:
    """A journal's records, decoded and validated (the start record first).

    `first_index`: the index of the first of `stored` in its journal (a page read from
    further on: the start record is record 0 only).

    Raises:
        JournalCorrupted: a record is not valid msgpack, or not a record of this format.
        UnsupportedJournalFormat: the journal was written by a newer durable.
    """
    found: list[Record] = []
    append, checks = found.append, _CHECKS
    stored = stored if isinstance(stored, list) else list(stored)
    decoded = decode_leading(stored)  # (all of them, unless one is not msgpack)
    count = len(decoded)
    for index, (offset, payload) in enumerate(stored, first_index):
        if index - first_index < count:
            record = decoded[index - first_index]
        else:  # (raises why it is not a record, once the ones before it were checked)
            record = decode(payload, path=path, offset=offset)
        # The common case inline (replay reads one record per step); the rest below.
        if (
            index
            and type(record) is dict
            and type(kind := record.get("k")) is str
            and kind != START
            and (check := checks.get(kind)) is not None
            and check(record) is None
        ):
            append(record)
        else:
            append(check_record(record, path=path, offset=offset, index=index))
    return found
