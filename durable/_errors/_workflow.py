"""Errors of a workflow's run: its outcome, its steps, its id, its messages."""

from __future__ import annotations

from pathlib import Path

from ._base import DurableError
from ._journal import InvalidJournalName


class WorkflowFailed(DurableError):
    """run(): the workflow raised; that failure is its recorded, final outcome."""

    def __init__(
        self, *, workflow_id: str, error_type: str, message: str, traceback: str = ""
    ) -> None:
        self.workflow_id = workflow_id
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        super().__init__(
            f"workflow {workflow_id!r} failed with {error_type}: {message}. The failure is "
            "recorded in its journal and final: running it again re-raises it; start a new "
            "workflow (another id) to try again"
        )


class WorkflowCancelled(DurableError):
    """run(): the workflow was cancelled (Runtime.cancel, or its parent's cancellation)."""

    def __init__(self, *, workflow_id: str, reason: str) -> None:
        self.workflow_id = workflow_id
        self.reason = reason
        said = reason or "no reason given"
        super().__init__(
            f"workflow {workflow_id!r} was cancelled ({said}). The cancellation is recorded "
            "in its journal and final: start a new workflow (another id) to run it again"
        )


class WorkflowTimedOut(WorkflowCancelled):
    """run(): the workflow was cancelled because its execution_timeout passed (recorded, final).

    A WorkflowCancelled too, so code that handles cancellation handles this; told apart by the
    journal (the cancellation the deadline posted), so every reader of the journal agrees.
    """

    def __init__(self, *, workflow_id: str, reason: str) -> None:
        super().__init__(workflow_id=workflow_id, reason=reason)
        self.args = (
            f"workflow {workflow_id!r} was cancelled: {reason or 'its execution_timeout passed'}. "
            "The cancellation is recorded in its journal and final: start a new workflow "
            "(another id) to run it again, with a longer execution_timeout if it needs one",
        )


class WorkflowNotFound(DurableError, LookupError):
    """No journal in the directory has this workflow id."""

    def __init__(self, *, workflow_id: str, directory: Path | str) -> None:
        self.workflow_id = workflow_id
        self.directory = Path(directory)
        super().__init__(
            f"no workflow {workflow_id!r} in {directory}: nothing was sent or changed. Check "
            "the id (Runtime.describe or `durable list` show the ones there), and that this "
            "runtime uses the directory the workflow was started in"
        )


class WorkflowFinished(DurableError):
    """An event or a cancellation for a workflow that has already ended."""

    def __init__(self, *, workflow_id: str, outcome: str, action: str) -> None:
        self.workflow_id = workflow_id
        self.outcome = outcome
        super().__init__(
            f"cannot {action} workflow {workflow_id!r}: it has already {outcome}, and its "
            "journal is final. Nothing was sent or changed"
        )


class MessageTooLarge(DurableError, ValueError):
    """An event or cancellation larger than the workflow's journal could ever record: not sent.

    The runner journals each message it takes inside a record of its own, which must fit the
    store's max_record_size; so a message may be at most that minus a margin (see `limit`).
    """

    def __init__(self, *, workflow_id: str, what: str, size: int, limit: int) -> None:
        self.workflow_id = workflow_id
        self.size = size
        self.limit = limit
        super().__init__(
            f"{what} for workflow {workflow_id!r} is {size} bytes encoded, over the "
            f"{limit}-byte limit of a message to it (its journal's record limit, less the "
            "margin of the record that wraps it, and within its inbox's byte bound); nothing "
            "was sent. Store large data elsewhere and send a reference to it (a path, a URL, "
            "a key), or raise max_record_size / inbox_max_bytes"
        )


class InboxFull(DurableError):
    """A workflow's inbox holds as many messages (or bytes) not yet taken as it may: not sent.

    Only messages its runner has not taken count (the pending ones), so the bound never
    stops a long-lived workflow whose runner keeps up.
    """

    def __init__(
        self,
        *,
        workflow_id: str,
        pending: int,
        pending_bytes: int,
        max_messages: int,
        max_bytes: int,
        size: int,
    ) -> None:
        self.workflow_id = workflow_id
        self.pending = pending
        self.pending_bytes = pending_bytes
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        super().__init__(
            f"the inbox of workflow {workflow_id!r} is full: {pending} messages "
            f"({pending_bytes} bytes) wait that its runner has not taken, and a message of "
            f"{size} bytes would pass its bound of {max_messages} messages / {max_bytes} bytes; "
            "nothing was sent. Run or resume the workflow so that it takes its messages (is a "
            "runtime running it?), then send again; or raise inbox_max_messages / "
            "inbox_max_bytes (Runtime, JournalDirectory, PostgresStore)"
        )


class EventTimeout(DurableError, TimeoutError):
    """wait_for_event(): the event did not arrive within the timeout (a durable timer)."""

    def __init__(self, *, workflow_id: str, event: str, timeout: float) -> None:
        self.workflow_id = workflow_id
        self.event = event
        self.timeout = timeout
        super().__init__(
            f"workflow {workflow_id!r} waited {timeout:g} s for event {event!r} and none "
            "came; catch EventTimeout (or TimeoutError) to take another path"
        )


class CompensationFailed(DurableError):
    """Saga: compensations failed (after their retries); the others still ran."""

    def __init__(self, *, workflow_id: str, failures: list[BaseException]) -> None:
        self.workflow_id = workflow_id
        self.failures = failures
        listed = "; ".join(str(failure) for failure in failures)
        super().__init__(
            f"{len(failures)} compensation(s) of workflow {workflow_id!r} failed, so its "
            f"effects are not fully undone: {listed}. Every other compensation ran; the "
            "original error is this one's __context__"
        )


class ActivityError(DurableError):
    """Raised in the workflow when an activity failed for good (retries exhausted or not retryable).

    The workflow may catch it (to compensate); `error_type`, `message` and `traceback` describe
    the last attempt's exception, which may have been raised in an earlier process.
    `error_type` is its class's qualified name, "module.Class" ("ValueError" for builtins;
    "durable.ActivityTimeout" for a timed-out attempt, "durable.SerializationError" for a
    result the journal cannot hold), as RetryPolicy.non_retryable_errors matches it.
    """

    def __init__(
        self,
        *,
        workflow_id: str,
        activity: str,
        attempts: int,
        error_type: str,
        message: str,
        traceback: str = "",
    ) -> None:
        self.workflow_id = workflow_id
        self.activity = activity
        self.attempts = attempts
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        plural = "s" if attempts != 1 else ""
        super().__init__(
            f"activity {activity!r} of workflow {workflow_id!r} failed after {attempts} "
            f"attempt{plural} with {error_type}: {message}"
        )


class ActivityTimeout(DurableError, TimeoutError):
    """An attempt of an activity ran longer than its start-to-close `timeout`.

    Retried like any failure; after the last attempt the workflow gets an ActivityError whose
    `error_type` is "durable.ActivityTimeout".
    """

    def __init__(self, *, activity: str, timeout: float) -> None:
        self.activity = activity
        self.timeout = timeout
        super().__init__(
            f"an attempt of activity {activity!r} did not finish within its {timeout:g} s "
            "timeout; it was abandoned. Raise the activity's timeout= if it needs longer"
        )


class InDoubtError(DurableError):
    """An at_most_once activity was started but its outcome was never recorded (a crash)."""

    def __init__(self, *, workflow_id: str, activity: str, position: int) -> None:
        self.workflow_id = workflow_id
        self.activity = activity
        self.position = position
        super().__init__(
            f"activity {activity!r} (step {position} of workflow {workflow_id!r}) is marked "
            "at_most_once and was started before a crash without recording an outcome: it "
            "may or may not have taken effect. It is not run again; check its effect "
            "(with activity_info().idempotency_key) and decide in the workflow"
        )


class NonDeterminismError(DurableError):
    """Replayed code asked for something other than what the journal recorded at that position."""

    def __init__(
        self,
        *,
        workflow_id: str,
        position: int,
        recorded: str,
        requested: str,
        call_site: str,
    ) -> None:
        self.workflow_id = workflow_id
        self.position = position
        self.recorded = recorded
        self.requested = requested
        self.call_site = call_site
        super().__init__(
            f"workflow {workflow_id!r} diverged from its journal at step {position}: the "
            f"journal recorded {recorded}, but the code now asks for {requested} (at "
            f"{call_site}). Workflow code must make the same calls in the same order on "
            "replay: undo the change, or let this workflow finish on the old code first. "
            "Nothing was written"
        )


class WorkflowAlreadyRunning(DurableError):
    """Another runner (this process or another) holds the workflow's journal.

    Only where nothing should wait for it: recover() and serve() skip such ids with it.
    run() and start() follow the runner instead (their handle gets its outcome).
    """

    def __init__(self, *, workflow_id: str, path: Path | str) -> None:
        self.workflow_id = workflow_id
        self.path = Path(path)
        super().__init__(
            f"workflow {workflow_id!r} is already running (its journal {path} is locked by "
            "another runner in this process or another one). Wait for it with that runner's "
            "handle, or stop that process; a workflow has one runner at a time"
        )


class WorkflowIdInUse(DurableError, ValueError):
    """run()/start() of an id whose journal recorded other arguments: an id is one run.

    `recorded` and `given` are short reprs of the two argument lists.
    """

    def __init__(self, *, workflow_id: str, recorded: str, given: str) -> None:
        self.workflow_id = workflow_id
        self.recorded = recorded
        self.given = given
        super().__init__(
            f"workflow id {workflow_id!r} already names a run with other arguments: its "
            f"journal recorded {recorded}, this call gave {given}. Use another id for a new "
            "run, or pass attach=True to wait for (or resume) the run under this id with "
            "its recorded arguments"
        )


class ChildIdInUse(WorkflowIdInUse):
    """run_child() with an id that names another run: not this parent's child, or not this call.

    Raised in the parent workflow at the run_child step (journaled as that step's outcome, so
    a replay raises it again). `workflow_id` is the child id; `parent`, `step` and `call_site`
    say which call; `recorded` what the id's journal holds, `given` what the call asked for.
    """

    def __init__(
        self,
        *,
        workflow_id: str,
        parent: str,
        recorded: str,
        given: str,
        step: int | None = None,
        call_site: str = "",
    ) -> None:
        self.workflow_id = workflow_id
        self.parent = parent
        self.recorded = recorded
        self.given = given
        self.step = step
        self.call_site = call_site
        where = f" at step {step}" if step is not None else ""
        site = f" ({call_site})" if call_site else ""
        DurableError.__init__(
            self,
            f"workflow {parent!r} runs child {workflow_id!r}{where}{site}, but that id "
            f"already names another run: its journal holds {recorded}; this call asks for "
            f"{given}. Nothing was started or joined. Give the child an id of its own "
            "(run_child's id=...), or leave id out: the default, '<parent id>.<step>', is "
            "always this parent's",
        )


class WorkflowStopped(DurableError):
    """The runtime running the workflow was closed before it finished; nothing is lost."""

    def __init__(self, *, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"workflow {workflow_id!r} was stopped because its runtime was closed before it "
            "finished. Its journal holds every step so far: run it again (same id) or call "
            "Runtime.recover() to resume it"
        )


class InvalidWorkflowId(DurableError, ValueError):
    """An id that cannot name a journal file."""

    def __init__(self, *, workflow_id: str, reason: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"invalid workflow id {workflow_id!r}: {reason}. Use 1-200 characters from "
            "letters, digits and . _ - : @ = +, not starting with '.'"
        )

    @classmethod
    def of(cls, error: InvalidJournalName) -> InvalidWorkflowId:
        """The same refusal, in workflow terms."""
        return cls(workflow_id=str(error.name), reason=error.reason)


class WorkflowDefinitionError(DurableError, TypeError):
    """Something passed as a workflow or activity that is not one (undecorated, not async)."""


class UnknownWorkflow(DurableError, LookupError):
    """recover() found a journal whose workflow name this runtime does not know."""

    def __init__(self, *, workflow_id: str, name: str, known: list[str]) -> None:
        self.workflow_id = workflow_id
        self.name = name
        super().__init__(
            f"journal of workflow {workflow_id!r} names workflow {name!r}, which this runtime "
            f"does not know (known: {', '.join(known) or 'none'}). Pass it to "
            "Runtime(workflows=[...]) so recover() can resume it"
        )
