"""Errors of flow control and output: queues, limits, schedules and streams."""

from __future__ import annotations

from ._base import DurableError


class QueueError(DurableError):
    """A queue (or an activity Limit) misdeclared or misused; `queue` names it."""

    def __init__(self, message: str, *, queue: str) -> None:
        self.queue = queue
        super().__init__(message)


class InvalidQueue(QueueError, ValueError):
    """A Queue, Rate or Limit option, or an enqueue option, that cannot be right.

    A negative or zero limit, a priority out of range, a name that cannot name a directory.
    Raised where it is declared (or enqueued), before anything is written.
    """

    def __init__(self, *, queue: str, option: str, value: object, expected: str) -> None:
        self.option = option
        self.value = value
        super().__init__(
            f"queue {queue!r}: {option}={value!r} is not allowed; {option} must be {expected}",
            queue=queue,
        )


class QueueNotDeclared(QueueError, LookupError):
    """A queued workflow met a runtime that does not declare its queue, so cannot hold its limits.

    Its request stays queued (or, for a workflow admitted before a crash, its journal stays as it
    is) until a runtime that declares the queue takes it.
    """

    def __init__(self, *, queue: str, workflow_id: str | None, declared: list[str]) -> None:
        self.workflow_id = workflow_id
        which = f"workflow {workflow_id!r} belongs to " if workflow_id else ""
        super().__init__(
            f"{which}queue {queue!r}, which this runtime does not declare (declared: "
            f"{', '.join(declared) or 'none'}). Pass the same durable.Queue to "
            "Runtime(queues=[...]) wherever its work is served, so its limits hold there",
            queue=queue,
        )


class AlreadyQueued(QueueError):
    """enqueue(..., on_duplicate="raise"): the dedup id is queued or running, or the id taken.

    An id is taken while queued or running, and once a workflow of that id ran (an id runs
    once); a dedup id is free again once its workflow ended. `workflow_id` names the
    workflow that holds it; `dedup_id` the de-duplication id (None when the workflow id
    itself was the duplicate).
    """

    def __init__(self, *, queue: str, workflow_id: str, dedup_id: str | None) -> None:
        self.workflow_id = workflow_id
        self.dedup_id = dedup_id
        what = (
            f"dedup id {dedup_id!r} is queued or running already"
            if dedup_id is not None
            else f"id {workflow_id!r} is taken (queued, running, or it ran)"
        )
        super().__init__(
            f"queue {queue!r}: {what} (workflow {workflow_id!r}); "
            'use runtime.handle(workflow_id) to follow it, or on_duplicate="return" to get '
            "its handle from enqueue()",
            queue=queue,
        )


class InvalidSchedule(DurableError, ValueError):
    """A schedule declared (or commanded) with a value it cannot use; nothing was started.

    Attributes:
        schedule: the schedule's name (as given).
        field: which option is wrong (cron, timezone, every, jitter, catchup, ...).
        value: the value given, as repr.
        reason: what is wrong with it.
        hint: what to do instead.
    """

    def __init__(self, *, schedule: str, field: str, value: object, reason: str, hint: str) -> None:
        self.schedule = schedule
        self.field = field
        self.value = repr(value)
        self.reason = reason
        self.hint = hint
        super().__init__(
            f"schedule {schedule!r}: {field}={value!r} is not valid ({reason}); {hint}. "
            "Nothing was started or changed"
        )


class ScheduleNotFound(DurableError, LookupError):
    """No schedule of this name has been started on the store."""

    def __init__(self, *, schedule: str, where: str) -> None:
        self.schedule = schedule
        self.where = where
        super().__init__(
            f"no schedule {schedule!r} in {where}: nothing was sent or changed. Start it "
            "first (await Schedule(...).start(runtime)); `durable schedule list` shows the "
            "schedules there"
        )


class StreamNotFound(DurableError, LookupError):
    """read_stream(): the workflow ended without appending to this stream."""

    def __init__(self, *, workflow_id: str, stream: str, known: list[str]) -> None:
        self.workflow_id = workflow_id
        self.stream = stream
        self.known = known
        names = ", ".join(repr(name) for name in known) if known else "none"
        super().__init__(
            f"workflow {workflow_id!r} has ended and never appended to stream {stream!r} "
            f"(its streams: {names}). Check the stream's name"
        )


class InvalidStreamOffset(DurableError, ValueError):
    """read_stream(): a negative offset, or one past the end of a stream that has ended."""

    def __init__(
        self, *, workflow_id: str, stream: str, offset: object, length: int | None
    ) -> None:
        self.workflow_id = workflow_id
        self.stream = stream
        self.offset = offset
        self.length = length
        if length is None:
            why = "an offset is an int >= 0: the number of values already read"
        else:
            why = (
                f"the workflow has ended and the stream holds {length} values, so offsets "
                f"go up to {length} (nothing more will come)"
            )
        super().__init__(
            f"cannot read stream {stream!r} of workflow {workflow_id!r} from offset "
            f"{offset!r}: {why}"
        )
