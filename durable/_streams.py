"""Streams out of a running workflow: Stream (append) and read_stream (follow it live).

A stream is a named sequence of values of one workflow run, journaled: workflow code's
appends are steps (`stream` records, skipped on replay like a status, so never written
twice), an activity's are written as it produces them (`emit` records, tagged with the
step, the attempt and the loaded run). A reader in any process on the same store reads the
journal a page at a time from its start (or from a mark a reader of this process left:
StreamMarks), counts the stream's values to the offset it asked for, and follows the
journal live until the run ends, across continue_as_new (each generation's start record
says how many values each stream had before it): memory stays bounded by the page,
whatever the stream's length. Knows nothing of the runtime.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, final, overload

from ._encoding import convert, converts
from ._engine import _records as records
from ._engine._context import current_activity
from ._engine._streams import check_stream_name, current_sink
from ._engine._workflow_run import current_run
from ._errors import (
    InvalidStreamOffset,
    JournalNotFound,
    OutsideWorkflowError,
    StreamNotFound,
    WorkflowNotFound,
)
from ._storage._interface import JournalStore
from ._storage._pages import PREVIOUS, START, Cursor

T = TypeVar("T")

PAGE_BYTES = 256 * 1024  # what a reader reads of the journal at a time (file store)


@final
class Stream(Generic[T]):
    """A named stream of values a workflow run publishes as it goes (progress, tokens).

    Declare it once, next to the workflow, and append to it from the workflow's code or
    from its activities; read it with `Runtime.read_stream(workflow_id, stream)`:

        TOKENS = durable.Stream("tokens", str)

    `value_type` (default: any value the journal holds) is what readers rebuild values as
    (a dataclass, an enum...); appends are checked by your type checker, not at run time.
    """

    @overload
    def __init__(self: Stream[Any], name: str) -> None: ...
    @overload
    def __init__(self, name: str, value_type: type[T]) -> None: ...
    def __init__(self, name: str, value_type: Any = Any) -> None:
        self.name = check_stream_name(name)
        self.value_type = value_type

    def append(self, value: T) -> None:
        """Publish `value` as the stream's next value (journaled; readers see it at once).

        In workflow code it is a step of the workflow (as set_status): a replay takes it
        again without writing it twice. In an activity it is written as it is made, tagged
        with the attempt: if that attempt fails (or its process dies) and is retried, its
        values stay, and the next attempt's follow them (`StreamItem.restarted` marks the
        first). Never blocks: see docs/how-to/streams.md on back-pressure.

        Raises:
            SerializationError: the value cannot be journaled; nothing was written.
            RecordTooLarge: the value is larger than the store's max_record_size.
            OutsideWorkflowError: not called from workflow code or an activity it runs.
        """
        run = current_run()
        if run is not None:
            run.append_stream(self.name, value)
            return
        sink, activity = current_sink.get(), current_activity.get()
        if sink is None or activity is None:
            raise OutsideWorkflowError(
                f"Stream({self.name!r}).append() was called outside a workflow and its "
                "activities; append from code decorated with @durable.workflow or "
                "@durable.activity (read a stream with Runtime.read_stream)"
            )
        _, activity_name, step, attempt, _, _ = activity
        sink.emit(self.name, value, activity=activity_name, step=step, attempt=attempt)

    def __repr__(self) -> str:
        return f"durable.Stream({self.name!r})"


@dataclass(frozen=True)
class StreamItem(Generic[T]):
    """One value of a stream, as a reader gets it.

    Attributes:
        offset: its position in the stream (0, 1, ...): read again from `offset + 1` to
            resume after it, in this process or another.
        value: the value, rebuilt as the stream's `value_type`.
        at: when it was appended (aware UTC).
        step: the step that appended it: the append itself (workflow code) or the
            activity call that was running.
        attempt: the activity's attempt (1, 2, ...); None for workflow code's values.
        restarted: True on the first value of an attempt that follows values of an earlier
            try of the same step (it failed and is retried, or its process died and it
            runs again): a reader that shows the step's output drops what came before.
    """

    offset: int
    value: T
    at: datetime
    step: int
    attempt: int | None = None
    restarted: bool = False


class StreamNews:
    """Wakes this process's readers of a run's stream as soon as a run here appends to it.

    Readers elsewhere, and of a store whose appends are visible only once committed
    (PostgreSQL), look every poll_interval instead. Used on the host loop's thread only.
    """

    def __init__(self) -> None:
        self._readers: dict[str, set[asyncio.Event]] = {}

    def appended(self, workflow_id: str) -> None:
        """A run of `workflow_id` wrote stream records (to the page cache: readable now)."""
        for woken in self._readers.get(workflow_id, ()):
            woken.set()

    def listen(self, workflow_id: str) -> asyncio.Event:
        """An event set at each append of `workflow_id`, until stop_listening."""
        woken = asyncio.Event()
        self._readers.setdefault(workflow_id, set()).add(woken)
        return woken

    def stop_listening(self, workflow_id: str, woken: asyncio.Event) -> None:
        readers = self._readers.get(workflow_id)
        if readers is not None:
            readers.discard(woken)
            if not readers:
                del self._readers[workflow_id]


async def _pause(woken: asyncio.Event | None, longest: float) -> None:
    """Until this process's news says the run appended, or `longest` seconds."""
    if woken is None:
        await asyncio.sleep(longest)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(woken.wait(), longest)


def stream_name(stream: str | Stream[Any]) -> tuple[str, Any]:
    """A stream's name and value type, from a Stream or a bare name (ValueError if bad)."""
    if isinstance(stream, Stream):
        return stream.name, stream.value_type
    return check_stream_name(stream), Any


class _Tally:
    """A run's stream values counted through its records as a reader goes, page by page.

    Counts every stream's values (the first STREAMS_COUNTED names), and makes the items of
    the one read from `offset` on; tells a try of an activity step from the one before.
    """

    def __init__(self, name: str | None, offset: int, value_type: Any = Any) -> None:
        self.name, self.offset, self.value_type = name, offset, value_type
        self.rebuilds = converts(value_type)
        self.counts: dict[str, int] = {}
        self.ended = False  # an "end" record was read: no value follows
        self.tries: dict[int, tuple[int, int]] = {}  # a step's last (attempt, incarnation)

    @property
    def count(self) -> int:
        """How many values the stream read has had so far."""
        return 0 if self.name is None else self.counts.get(self.name, 0)

    def take(
        self, decoded: list[records.Record], limit: int | None = None
    ) -> list[StreamItem[Any]]:
        """The items of the stream read among `decoded` (at most `limit` of them, if given)."""
        found: list[StreamItem[Any]] = []
        for record in decoded:
            kind = record["k"]
            if kind == records.END:
                self.ended = "cont" not in record  # (continued as new: the next one goes on)
            elif kind == records.RESUME:
                self.ended = False  # (an operator resumed it: its run goes on after that end)
            elif kind == records.START:  # a generation's first: the streams' counts so far
                self.counts = dict(record.get("so", {}))
                self.tries.clear()  # (steps are numbered again from 0)
            elif kind in records.STREAMED:
                stream = record["sn"]
                count = self.counts.get(stream)
                if count is None:
                    if len(self.counts) >= STREAMS_COUNTED and stream != self.name:
                        continue
                    count = 0
                self.counts[stream] = count + 1
                if stream != self.name:
                    continue
                step, attempt, restarted = record["s"], None, False
                if kind == records.EMIT:
                    attempt = record["n"]
                    tag = (attempt, record["i"])
                    restarted = self.tries.get(step, tag) != tag
                    self.tries[step] = tag
                if count >= self.offset and (limit is None or len(found) < limit):
                    found.append(self._item(record, count, step, attempt, restarted))
        return found

    def _item(
        self, record: records.Record, offset: int, step: int, attempt: int | None, again: bool
    ) -> StreamItem[Any]:
        value = record["v"]
        if self.rebuilds:
            value = convert(value, self.value_type, context=f"a value of stream {self.name!r}")
        at = datetime.fromtimestamp(record["t"], UTC)
        return StreamItem(offset, value, at, step, attempt, again)


STREAMS_COUNTED = 50  # stream names a reader counts values of (the first ones appended to)


@dataclass(frozen=True)
class _Mark:
    """Where a reader was in a run's journal, and its tally there: a place to read on from."""

    cursor: Cursor
    index: int
    count: int  # the stream's values before the cursor
    counts: dict[str, int]
    tries: dict[int, tuple[int, int]]


class StreamMarks:
    """Places in runs' journals where this process's readers have been, per stream.

    A reader that resumes at offset N (a browser reconnecting with Last-Event-ID) reads on
    from the last mark before N instead of counting N values from the journal's start. A
    mark is a hint: its cursor names the generation it is in, so a journal that moved on
    (continue_as_new, a restart) reads on from its next generation's start, whose record
    says the counts again. Bounded: MARKED_STREAMS streams (the least recently read ones
    dropped), a mark every MARK_EVERY values. Used on the host loop's thread only.
    """

    def __init__(self) -> None:
        self._marks: OrderedDict[tuple[str, str], list[_Mark]] = OrderedDict()

    def nearest(self, workflow_id: str, name: str, offset: int) -> _Mark | None:
        """The last mark at or before `offset` of the stream (None: read from the start)."""
        marks = self._marks.get((workflow_id, name))
        if not marks:
            return None
        self._marks.move_to_end((workflow_id, name))
        found = bisect.bisect_right([mark.count for mark in marks], offset)
        return marks[found - 1] if found else None

    def note(self, workflow_id: str, tally: _Tally, cursor: Cursor, index: int) -> None:
        """A reader's tally after the page that ends at `cursor` (marked every MARK_EVERY)."""
        name, count = tally.name, tally.count
        if name is None or tally.ended:  # (a reader from a mark must read the end itself)
            return
        key = (workflow_id, name)
        marks = self._marks.get(key)
        if marks is None:
            if count < MARK_EVERY:
                return
            marks = self._marks[key] = []
            if len(self._marks) > MARKED_STREAMS:
                self._marks.popitem(last=False)
        elif count < marks[-1].count + MARK_EVERY:
            return  # (or behind it: another reader, earlier in the stream)
        tries = dict(list(tally.tries.items())[-MARKED_TRIES:])
        marks.append(_Mark(cursor, index, count, dict(tally.counts), tries))


MARK_EVERY = 512  # a stream's values between two marks
MARKED_STREAMS = 1024  # (workflow, stream) pairs a runtime keeps marks of
MARKED_TRIES = 64  # activity steps a mark remembers the last try of (restarted marks)


async def read_stream(
    store: JournalStore,
    workflow_id: str,
    stream: str | Stream[Any],
    offset: int = 0,
    *,
    poll_interval: float = 0.05,
    page_bytes: int = PAGE_BYTES,
    starting: Callable[[], bool] | None = None,
    news: StreamNews | None = None,
    marks: StreamMarks | None = None,
) -> AsyncIterator[StreamItem[Any]]:
    """The values of `stream` from `offset` on, live until the workflow's run ends.

    `starting`: whether the workflow is being started (its journal may not be there yet):
    then a journal not found is waited for, not WorkflowNotFound. `news`: this process's,
    which wakes the reader at once when a run here appends (else it looks every
    `poll_interval` seconds). `marks`: this process's, where a reader resuming at an
    offset reads on from (and notes its own).

    Raises (while iterating):
        WorkflowNotFound: no workflow has this id in the store.
        StreamNotFound: the run ended and never appended to this stream.
        InvalidStreamOffset: `offset` is negative, or past the end of an ended stream (one
            past the end of a running one waits for the values to come).
        JournalCorrupted: a record is not one this version reads.
    """
    name, value_type = stream_name(stream)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidStreamOffset(workflow_id=workflow_id, stream=name, offset=offset, length=None)
    where = store.location(workflow_id)
    tally = _Tally(name, offset, value_type)
    cursor, index = START, 0
    before: int | None = None  # the generation whose predecessor is read first (once)
    fresh = True  # no page read yet: the offset may be an earlier generation's
    mark = marks.nearest(workflow_id, name, offset) if marks is not None and offset else None
    if mark is not None:  # (read on from where a reader of this process has been)
        cursor, index, fresh = mark.cursor, mark.index, False
        tally.counts, tally.tries = dict(mark.counts), dict(mark.tries)
    woken = news.listen(workflow_id) if news is not None else None
    try:
        while True:
            if woken is not None:
                woken.clear()  # (an append from now on wakes the pause below)
            try:
                page = await store.read_page(workflow_id, cursor, page_bytes)
            except JournalNotFound:
                if index or starting is None or not starting():
                    raise WorkflowNotFound(workflow_id=workflow_id, directory=where) from None
                await _pause(woken, poll_interval)
                continue
            if page.rotated:  # it continued as new (its last values read): on to the next
                cursor, index = START, 0
                continue
            decoded = records.read_journal(page.records, path=where, first_index=index)
            if fresh and before is None and _begins_after(decoded, name, offset):
                # The offset is an earlier generation's: read on from the one kept of it.
                before, cursor = decoded[0].get("gen", 0), PREVIOUS
                continue
            fresh = False
            if cursor == PREVIOUS and not _precedes(decoded, before):
                cursor = START  # (what is kept is not the generation before it: gone)
                continue
            index, cursor = index + len(decoded), page.cursor
            items = tally.take(decoded)
            if marks is not None:
                marks.note(workflow_id, tally, cursor, index)
            for item in items:
                yield item
            if tally.ended and not page.more:
                _check_end(tally, workflow_id)
                return
            if not page.more:
                await _pause(woken, poll_interval)
    finally:
        if news is not None and woken is not None:
            news.stop_listening(workflow_id, woken)


def _begins_after(decoded: list[records.Record], name: str, offset: int) -> bool:
    """Whether a generation's first page says stream `name` had more than `offset` before it."""
    if not decoded or decoded[0]["k"] != records.START:
        return False
    return bool(decoded[0].get("so", {}).get(name, 0) > offset)


def _precedes(decoded: list[records.Record], generation: int | None) -> bool:
    """Whether a kept generation's first page is that of the one before `generation`."""
    if not decoded or generation is None:
        return True
    return bool(decoded[0].get("gen", 0) == generation - 1)


def _check_end(tally: _Tally, workflow_id: str) -> None:
    """Raise what a reader of an ended run asked wrongly for (StreamNotFound, an offset)."""
    name = tally.name or ""
    if tally.count == 0:
        known = sorted(stream for stream in tally.counts if stream != name)
        raise StreamNotFound(workflow_id=workflow_id, stream=name, known=known)
    if tally.offset > tally.count:
        raise InvalidStreamOffset(
            workflow_id=workflow_id, stream=name, offset=tally.offset, length=tally.count
        )


@dataclass(frozen=True)
class StreamSnapshot:
    """A run's streams as they stand now (for people: the web UI), without waiting.

    Attributes:
        counts: each stream's number of values so far, by name (at most STREAMS_COUNTED
            names, the first ones appended to).
        items: values of the stream asked for, from the offset asked for, at most `limit`.
        ended: the run has ended: no value will follow.
    """

    counts: dict[str, int]
    items: list[StreamItem[Any]]
    ended: bool


async def stream_snapshot(
    store: JournalStore,
    workflow_id: str,
    name: str | None,
    offset: int,
    limit: int,
    *,
    page_bytes: int = PAGE_BYTES,
) -> StreamSnapshot:
    """Every stream's count so far, and up to `limit` values of stream `name` from `offset`.

    Reads the journal to its current end a page at a time (memory: a page, and `limit`
    items). Raises WorkflowNotFound for an unknown id.
    """
    if name is not None:
        check_stream_name(name)
    if offset < 0 or limit < 0:
        raise InvalidStreamOffset(
            workflow_id=workflow_id, stream=name or "", offset=offset, length=None
        )
    where = store.location(workflow_id)
    tally = _Tally(name, offset)
    items: list[StreamItem[Any]] = []
    cursor, index = START, 0
    while True:
        try:
            page = await store.read_page(workflow_id, cursor, page_bytes)
        except JournalNotFound:
            raise WorkflowNotFound(workflow_id=workflow_id, directory=where) from None
        if page.rotated:
            break
        decoded = records.read_journal(page.records, path=where, first_index=index)
        index, cursor = index + len(decoded), page.cursor
        items.extend(tally.take(decoded, limit - len(items)))
        if not page.more:
            break
    return StreamSnapshot(tally.counts, items, tally.ended)
