"""Stream values on their way to the journal: encoded and checked at the append, then written.

Workflow code's appends are steps (WorkflowRun.append_stream, a `stream` record written
with the step's bookkeeping, skipped on replay as a `status` is). An activity's appends go
through the StreamSink of its run, found by the ContextVar `current_sink` that run_activity
sets for each attempt: each value becomes an `emit` record written to the journal at once
(page cache; durable with the next sync, the activity's outcome's at the latest), from the
host loop's thread or, for a sync activity, handed to it from the worker thread. Either way
a value that does not encode, or whose record the journal could not hold, raises at the
append and nothing is written. Knows nothing of readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .._encoding import encode
from .._errors import DurableError, RecordTooLarge, SerializationError
from .._storage._interface import Journal
from . import _records as records


def check_stream_name(name: Any) -> str:
    """A stream's name: non-empty text of at most 200 characters (ValueError if not)."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValueError(f"a stream name is text of 1 to 200 characters, not {name!r}")
    return name


def encode_value(record: Any, name: str, activity: str | None) -> bytes:
    """A stream record encoded; SerializationError (naming the stream) if its value cannot be."""
    try:
        return encode(record, context=f"a value of stream {name!r}", activity=activity)
    except SerializationError as error:
        error.stream = name
        raise


class RunStreams:
    """A run's stream output: the record limit, the news of a write, the activities' sink."""

    def __init__(
        self,
        *,
        record_limit: int,
        location: str,
        written: Callable[[], None] | None,
        counts: dict[str, int] | None = None,
    ) -> None:
        """`written`: called once values were written (wakes readers in this process).

        `counts`: how many values each stream had in the journal as loaded (earlier
        generations' included); kept up to date, so that the next generation's start
        record hands them on (readers' offsets go on across continue_as_new).
        """
        self.record_limit = record_limit
        self._location = location
        self._written = written
        self._pending = False  # a workflow-code append is among the run's deferred records
        self.counts: dict[str, int] = {} if counts is None else counts

    def checked(self, payload: bytes, name: str) -> bytes:
        """A workflow-code append's record to stream `name`, checked against the record limit.

        Raises:
            RecordTooLarge: its record would exceed the store's max_record_size.
        """
        if len(payload) > self.record_limit:
            raise RecordTooLarge(path=self._location, size=len(payload), limit=self.record_limit)
        self._pending = True
        self.counts[name] = self.counts.get(name, 0) + 1
        return payload

    def deferred_written(self) -> None:
        """The run wrote its deferred records: tell readers if a stream value was among them."""
        if self._pending:
            self._pending = False
            if self._written is not None:
                self._written()

    def sink(self, journal: Journal, now: Callable[[], float]) -> StreamSink:
        """Where the run's activities append (any thread)."""
        return StreamSink(
            journal,
            record_limit=self.record_limit,
            now=now,
            location=self._location,
            written=self._written,
            counts=self.counts,
        )


class StreamSink:
    """Where the activities of one run append stream values: the run's journal, any thread."""

    def __init__(
        self,
        journal: Journal,
        *,
        record_limit: int,
        now: Callable[[], float],
        location: str,
        written: Callable[[], None] | None = None,
        counts: dict[str, int] | None = None,
    ) -> None:
        """`written`: called after each value is written (wakes readers in this process).

        `counts`: the run's values per stream, counted as they are written (RunStreams').
        """
        self._journal = journal
        self._counts: dict[str, int] = {} if counts is None else counts
        self._written = written
        self._record_limit = record_limit
        self._now = now
        self._location = location
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        # Tells this loaded run's attempts from those of an earlier one (a crash, a restart)
        # that ran the same attempt number of a step: readers mark the rerun as restarted.
        self.incarnation = secrets.randbits(31)

    def emit(self, name: str, value: Any, *, activity: str, step: int, attempt: int) -> None:
        """Journal `value` as the next of stream `name`, written by this attempt.

        Raises:
            SerializationError: the value cannot be journaled; nothing was written.
            RecordTooLarge: its record would exceed the store's max_record_size.
        """
        record = records.emitted(
            step, attempt, name, value, incarnation=self.incarnation, now=self._now()
        )
        payload = encode_value(record, name, activity)
        if len(payload) > self._record_limit:
            raise RecordTooLarge(path=self._location, size=len(payload), limit=self._record_limit)
        if threading.get_ident() == self._thread:
            self._journal.write(payload)
            self._counts[name] = self._counts.get(name, 0) + 1
            if self._written is not None:
                self._written()
        else:  # a sync activity's worker thread: the journal is the loop's (order is kept)
            self._loop.call_soon_threadsafe(self._write_late, name, payload)

    def _write_late(self, name: str, payload: bytes) -> None:
        # A journal that failed or closed meanwhile (the run stopped, a thread abandoned at
        # its timeout went on): the value is dropped, as the attempt's outcome is.
        with contextlib.suppress(DurableError):
            self._journal.write(payload)
            self._counts[name] = self._counts.get(name, 0) + 1
            if self._written is not None:
                self._written()


# The sink of the running activity attempt's run (set by run_activity; copied into worker
# threads by anyio with the rest of the context).
current_sink: ContextVar[StreamSink | None] = ContextVar("durable_stream_sink", default=None)
