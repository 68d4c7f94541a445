"""Every exception durable raises on purpose, in one tree.

This module is a leaf: it imports nothing from durable, so every layer can use it.

    DurableError                      anything durable raises on purpose
      SerializationError (TypeError)  a value msgpack cannot carry
      JournalError                    storage trouble; .path names the journal
        InvalidJournalName (ValueError)
        JournalNotFound (LookupError)
        JournalLocked                 another writer holds the journal
        JournalCorrupted              bad bytes before valid data; .offset
        UnsupportedJournalFormat      written by a newer durable
        JournalMisplaced              the file holds another file's journal (.found_name)
        RecordTooLarge (ValueError)
        JournalWriteError             write or sync failed (ENOSPC, EIO); .errno
        TooManyOpenJournals           the process's open-file limit (EMFILE, ENFILE)
        JournalClosed                 the handle was closed
        JournalFenced                 another runner took the journal over (lease expired)
        ForkIncomplete                a fork's copy stopped half-way: run the fork again
        StoreUnavailable              the store cannot be reached or used (PostgreSQL)
        JournalPermissionDenied (PermissionError)  a file or directory lacks a permission
        UnsafeJournalFile             a link or special file where a journal file belongs
        UnsafeJournalDirectory        the directory is writable by other users
      WorkflowFailed                  run(): the recorded failure of the workflow
      WorkflowCancelled               run(): the workflow was cancelled (recorded, final)
        WorkflowTimedOut              cancelled because its execution_timeout passed
      WorkflowNotFound (LookupError)  no journal has this workflow id
      WorkflowFinished                sending to / cancelling a workflow that has ended
      MessageTooLarge (ValueError)    an event or cancellation its journal could never hold
      InboxFull                       too many messages wait that the runner has not taken
      EventTimeout (TimeoutError)     wait_for_event(): no event within the timeout
      CompensationFailed              Saga: compensations failed after the original error
      ActivityError                   in the workflow: an activity failed for good
      ActivityTimeout (TimeoutError)  an attempt ran past its timeout (retried like any failure)
      InDoubtError                    an at_most_once activity a crash left undecided
      NonDeterminismError             replayed code diverged from its journal
      WorkflowAlreadyRunning          another runner holds the workflow's journal
      WorkflowIdInUse (ValueError)    run()/start(): the id ran with other arguments
        ChildIdInUse                  run_child(): the id names a run that is not this call's
      WorkflowStopped                 its runtime closed before it finished (resumable)
      InvalidWorkflowId (ValueError)
      WorkflowDefinitionError (TypeError)  not a decorated workflow / activity
      UnknownWorkflow (LookupError)   recover(): a journal names an unregistered workflow
      ActionRefused                   resume/restart/fork: not in a state the action takes
      InvalidForkStep (ValueError)    fork(at_step=N) past the end of the source's journal
      InvalidOverride (ValueError)    fork(override=...): a value that does not encode or fit
      InvalidDuration (ValueError)
      QueueError                      a queue (or activity Limit) misdeclared or misused; .queue
        InvalidQueue (ValueError)     a negative limit, a priority out of range, a bad option
        QueueNotDeclared (LookupError)  a queued workflow, in a runtime not declaring its queue
        AlreadyQueued                 enqueue(on_duplicate="raise"): queued or running already
      InvalidSchedule (ValueError)    a schedule's cron, time zone, interval or policy is bad
      ScheduleNotFound (LookupError)  no schedule of this name on the store
      StreamNotFound (LookupError)    read_stream(): the workflow ended without this stream
      InvalidStreamOffset (ValueError)  read_stream(): negative, or past an ended stream's end
      OutsideWorkflowError (RuntimeError)  workflow_info() outside a workflow, ...
      InvalidFilter (ValueError)      a WorkflowFilter field, a page's cursor or size: bad
      UnknownBulkAction (LookupError) a bulk action's name that no action has
      InvalidBulkOptions (ValueError) a bulk action's options it does not take (fork's at_step)
      ExtraNotInstalled (ImportError)  asked for a feature whose optional extra is missing

Constructors take facts keyword-only, keep them as attributes and build a message that says
what happened and what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class DurableError(Exception):
    """Root of everything durable raises on purpose."""


class SerializationError(DurableError, TypeError):
    """A value cannot be stored in, or rebuilt from, the journal; nothing was written.

    `target` is set when a recorded value does not fit the annotated type it is rebuilt to
    (on replay); otherwise the value could not be encoded in the first place. `stream` names
    the stream when the value was appended to one (durable.Stream.append).
    """

    stream: str | None = None

    def __init__(
        self,
        *,
        value_type: str,
        context: str,
        detail: str = "",
        activity: str | None = None,
        target: str | None = None,
    ) -> None:
        self.value_type = value_type
        self.context = context
        self.activity = activity
        self.target = target
        where = f"{context} of activity {activity!r}" if activity else context
        extra = f" ({detail})" if detail else ""
        if target is not None:
            message = (
                f"cannot rebuild {where} as {target} from the recorded {value_type}{extra}: "
                "the journal holds a value that does not fit the annotation (did the type "
                "change while the workflow was in flight?). Keep old records readable: give "
                "new fields defaults and keep old enum values, or annotate Any and convert "
                "the value yourself"
            )
        else:
            message = (
                f"cannot store a value of type {value_type} in {where}{extra}: journal "
                "records hold None, bool, int (64-bit), float, str, bytes, list, tuple, dict, "
                "set, frozenset, datetime, date, time, timedelta, Decimal, UUID, Enum members, "
                "dataclasses and pydantic models; convert the value to one of those first"
            )
        super().__init__(message)


class JournalError(DurableError):
    """Trouble with one journal; `path` names it."""

    def __init__(self, message: str, *, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(message)


class InvalidJournalName(JournalError, ValueError):
    """A journal name that could escape its directory or is not a usable file name."""

    def __init__(self, *, name: str, directory: Path | str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(
            f"invalid journal name {name!r}: {reason}. Use 1-200 characters from letters, "
            "digits and . _ - : @ = +, not starting with '.'",
            path=directory,
        )


class JournalNotFound(JournalError, LookupError):
    """Reading a journal that does not exist."""

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(f"no journal at {path}; check the name and the directory", path=path)


class JournalLocked(JournalError):
    """Another writer, in this process or another, has the journal open."""

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(
            f"journal {path} is already open for writing by another runner (in this process "
            "or another one). A journal has one writer at a time: wait for that runner to "
            "finish or stop it, then open the journal again",
            path=path,
        )


class JournalCorrupted(JournalError):
    """Damage followed by valid records: not a torn write, so nothing is repaired."""

    def __init__(self, *, path: Path | str, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"journal {path} is corrupted at byte {offset}: {reason}. The file was left "
            "untouched. Restore it from a backup, or move it aside to start afresh; "
            "durable never skips damaged records silently",
            path=path,
        )


class JournalMisplaced(JournalError):
    """The file at a journal's (or inbox's) name holds another file's frames.

    Copied or renamed from another workflow's file, or the blocks of a deleted journal that
    a crash exposed in a file that never had a sync. A runner opening it moves it aside (to
    `<name>.misplaced`, logged) and starts the file afresh; readers report it.
    """

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(
            f"{path} holds frames written for another file (copied or renamed from another "
            "workflow's journal, or blocks of a deleted journal a crash exposed in a file "
            "that was never synced). Opening it for its workflow moves it aside to "
            f"{path}.misplaced; to run the workflow it belongs to, give it that one's name",
            path=path,
        )


class UnsupportedJournalFormat(JournalError):
    """A journal written by a newer durable than this one."""

    def __init__(self, *, path: Path | str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"journal {path} has format version {found}, but this durable reads versions up "
            f"to {supported}: upgrade durable to read it (the file was left untouched)",
            path=path,
        )


class RecordTooLarge(JournalError, ValueError):
    """A record over the journal's size limit; it was not written."""

    def __init__(self, *, path: Path | str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"a record of {size} bytes exceeds the {limit}-byte limit of journal {path}; "
            "nothing was written. Store large data elsewhere and journal a reference to it, "
            "or raise max_record_size",
            path=path,
        )


class JournalWriteError(JournalError):
    """A write or sync failed; the handle is unusable, records synced before stay readable."""

    def __init__(self, *, path: Path | str, operation: str, errno: int | None, detail: str) -> None:
        self.operation = operation
        self.errno = errno
        super().__init__(
            f"{operation} failed on journal {path}: {detail}. The handle is closed to further "
            "writes and records acknowledged before this stay readable; fix the cause (free "
            "disk space, check the device) and open the journal again to resume",
            path=path,
        )


class TooManyOpenJournals(JournalError, OSError):
    """A journal could not be opened: the open-file limit (EMFILE, ENFILE) is reached.

    Each workflow a runtime holds, sleeping ones too, keeps its journal open.
    """

    def __init__(self, *, path: Path | str, errno: int | None, limits: tuple[int, int]) -> None:
        self.errno = errno
        soft, hard = limits
        super().__init__(
            f"cannot open journal {path}: too many open files (the process may have {soft}, "
            f"at most {hard}). Each workflow a runtime holds keeps its journal open, sleeping "
            "ones included, so that no other runtime takes it: raise the limit (ulimit -Hn; "
            "LimitNOFILE= for a systemd service), or spread the workflows over processes",
            path=path,
        )


class JournalClosed(JournalError):
    """Using a journal handle after close()."""

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(f"journal {path} is closed; open it again to append", path=path)


class JournalFenced(JournalError):
    """This handle may no longer write its journal: its lease lapsed, or another took it.

    `lapsed` (with `silent_for`, seconds): this process did not renew the lease in time
    (a blocked event loop, a pause), and nobody may have claimed it since; the runtime then
    claims it again if it is free. Otherwise another runner claimed it (a newer fence).
    """

    def __init__(
        self, *, path: Path | str, fence: int, lapsed: bool = False, silent_for: float = 0.0
    ) -> None:
        self.fence = fence
        self.lapsed = lapsed
        if lapsed:
            message = (
                f"journal {path}: this runner's lease (fencing token {fence}) may have lapsed: "
                f"it was last renewed {silent_for:.1f} s ago, longer than the lease, for "
                "instance because the event loop was blocked (time.sleep or CPU work in an "
                "async activity or in workflow code: make such activities plain functions, "
                "which run in threads) or the process was paused. Nothing more is written "
                "from this handle; the workflow is claimed again if no other process took it"
            )
        else:
            message = (
                f"journal {path} was taken over by another runner: this runner's lease "
                f"(fencing token {fence}) expired, for instance while the process was paused "
                "or cut off from the database, and another process claimed it. Nothing more "
                "is written from here; the new owner resumes the workflow from its journal"
            )
        super().__init__(message, path=path)


class StoreUnavailable(JournalError):
    """The journal store cannot be reached or used (a database down, a wrong DSN, rights).

    `passing` is True when a store that answered before is away for now (a server restart,
    a dropped connection): the same call may work once it answers again, and what durable
    runs on its own (serve, resumed workflows) waits for it.
    """

    def __init__(self, *, path: Path | str, detail: str, hint: str, passing: bool = False) -> None:
        self.detail = detail
        self.passing = passing
        super().__init__(f"journal store {path}: {detail}. {hint}", path=path)


def store_away(error: BaseException) -> bool:
    """Whether `error` says the journal store is away for now (wait, then try again)."""
    return isinstance(error, StoreUnavailable) and error.passing


class JournalPermissionDenied(JournalError, PermissionError):
    """A journal file, inbox or the directory lacks a permission durable needs.

    `permission` says which ("read", "write", "read and write", "write and search" on a
    directory); `owner` and `mode` are the file's (None when it could not be examined),
    `uid` the user this process runs as.
    """

    def __init__(
        self,
        *,
        path: Path | str,
        permission: str,
        detail: str = "",
        owner: int | None = None,
        mode: int | None = None,
        uid: int | None = None,
    ) -> None:
        self.permission = permission
        self.owner = owner
        self.mode = mode
        self.uid = uid
        facts = []
        if uid is not None:
            facts.append(f"durable runs as uid {uid}")
        if owner is not None and mode is not None:
            facts.append(f"{path} is owned by uid {owner}, mode {mode & 0o7777:04o}")
        said = f" ({'; '.join(facts)})" if facts else ""
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"permission denied: durable needs {permission} permission on {path}{said}"
            f"{extra}. Nothing was written. Grant it (chmod, or chown to the user durable "
            "runs as), or run durable as the user that owns the directory",
            path=path,
        )


class UnsafeJournalFile(JournalError):
    """A symbolic link, directory, fifo, socket or device where a journal file belongs.

    durable opens nothing through a link and only regular files, so that no file outside
    the directory is ever read or written; `found` says what is there. Nothing was opened.
    """

    def __init__(self, *, path: Path | str, found: str) -> None:
        self.found = found
        super().__init__(
            f"{path} is {found}, not a regular file: durable opens journal files only as "
            "regular files inside their directory, never through a link, so nothing was "
            "read or written. If you did not put it there, someone who can write to the "
            f"directory did: remove it (`rm {path}` removes a link, not its target), check "
            "the directory's other files and who can write to it, then run again",
            path=path,
        )


class UnsafeJournalDirectory(JournalError):
    """The journal directory can be written by other users: refused, as ssh refuses ~/.ssh.

    Whoever can write to it could replace a journal (forging recorded results, so steps are
    skipped or repeated), fill an inbox or plant links. `mode` and `owner` are the
    directory's, `uid` this process's user.
    """

    def __init__(self, *, path: Path | str, mode: int, owner: int, uid: int) -> None:
        self.mode = mode
        self.owner = owner
        self.uid = uid
        if owner not in (uid, 0):
            why = f"it is owned by uid {owner}, not by uid {uid} (this process) or root"
            fix = f"chown it to uid {uid}, or use a directory of your own"
        else:
            writers = {0o020: "its group", 0o002: "others", 0o022: "its group and others"}
            who = writers[mode & 0o022]
            why = f"it is writable by {who} (mode {mode & 0o7777:04o})"
            fix = f"`chmod go-w {path}` (then check its files), or use a directory of your own"
        super().__init__(
            f"journal directory {path} is not safe: {why}. Another user could replace "
            "journals (forging recorded results), fill inboxes or plant links there, so "
            f"durable refuses it, as ssh refuses a group-writable ~/.ssh. Nothing was opened. "
            f"Fix: {fix}; durable creates the directories it makes with mode 0700",
            path=path,
        )


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


class ActionRefused(DurableError):
    """resume / restart / fork of a workflow in a state the action does not take.

    `state`: what the workflow is ("running in another process", "completed", "not
    ended"...); `hint`: what to do instead. Nothing was written.
    """

    def __init__(self, *, workflow_id: str, action: str, state: str, hint: str) -> None:
        self.workflow_id = workflow_id
        self.action = action
        self.state = state
        super().__init__(
            f"cannot {action} workflow {workflow_id!r}: it is {state}. {hint}. Nothing was written"
        )


class InvalidForkStep(DurableError, ValueError):
    """fork(at_step=N) where the source's journal records fewer steps than N."""

    def __init__(self, *, workflow_id: str, step: int, steps: int) -> None:
        self.workflow_id = workflow_id
        self.step = step
        self.steps = steps
        super().__init__(
            f"cannot fork workflow {workflow_id!r} at step {step}: its journal records "
            f"{steps} step(s) (0 to {steps - 1}), so a fork may start live at step 0 to "
            f"{steps}. Nothing was written"
        )


class InvalidOverride(DurableError, ValueError):
    """fork(override={step: value}) with a value the fork cannot record for that step.

    It does not encode, does not fit the activity's return annotation, or the step is not
    an activity (or child) step with an outcome before the fork's live part. Nothing was
    written.
    """

    def __init__(self, *, workflow_id: str, step: int, problem: str) -> None:
        self.workflow_id = workflow_id
        self.step = step
        self.problem = problem
        super().__init__(
            f"cannot override step {step} of a fork of workflow {workflow_id!r}: {problem}. "
            "Nothing was written"
        )


class ForkIncomplete(JournalError):
    """A fork's journal holds fewer copied records than its start record announces.

    The fork that wrote it stopped half-way (a crash); running it would start live too
    early. Run the same fork again (same new id): it completes the copy.
    """

    def __init__(
        self, *, path: Path | str, workflow_id: str, source: str, have: int, want: int
    ) -> None:
        self.workflow_id = workflow_id
        self.source = source
        super().__init__(
            path=path,
            message=f"workflow {workflow_id!r} is a fork of {source!r} whose copy stopped "
            f"half-way ({have} of {want} records): run the same fork again (same new id) to "
            "complete it; nothing of it has run",
        )


class InvalidDuration(DurableError, ValueError):
    """A duration that is not seconds, a timedelta or a string like "30s" or "1h30m"."""


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


class OutsideWorkflowError(DurableError, RuntimeError):
    """An in-workflow (or in-activity) call made elsewhere."""


class InvalidFilter(DurableError, ValueError):
    """A workflow query's filter field, page cursor or limit that cannot be right.

    Raised where the filter is built (code, `durable list` options, the web UI's query
    parameters), before anything is read; `field` names the field as the caller spelt it.
    """

    def __init__(self, *, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        shown = repr(value)
        shown = shown if len(shown) <= 200 else shown[:199] + "…"
        super().__init__(
            f"workflow filter: {field}={shown} is not allowed; {field} must be {expected}. "
            "Nothing was read or changed"
        )


class UnknownBulkAction(DurableError, LookupError):
    """A bulk action asked for by a name no action has (see durable.bulk)."""

    def __init__(self, *, action: str, known: list[str]) -> None:
        self.action = action
        self.known = known
        super().__init__(
            f"no bulk action {action!r}: the actions are {', '.join(known)}. Nothing was changed"
        )


class InvalidBulkOptions(DurableError, ValueError):
    """A bulk action's options that it does not take (an unknown name, a bad value).

    Raised before anything is selected or started (Runtime.bulk, `durable bulk`, the web
    UI's POST /api/bulk/{action}); `action` names the action, `problem` what is wrong.
    """

    def __init__(self, *, action: str, problem: str) -> None:
        self.action = action
        self.problem = problem
        super().__init__(f"bulk {action}: {problem}. Nothing was changed")


class ExtraNotInstalled(DurableError, ImportError):
    """A feature was asked for whose optional dependencies are not installed.

    `feature` names it, `extra` the aiodurable extra that installs them, `missing` the
    module that failed to import.
    """

    def __init__(self, *, feature: str, extra: str, missing: str) -> None:
        self.feature = feature
        self.extra = extra
        self.missing = missing
        super().__init__(
            f"{feature} needs the {extra!r} extra ({missing} could not be imported): "
            f"pip install 'aiodurable[{extra}]', or leave {feature} off"
        )


class SimulatedCrash(BaseException):
    """durable.testing killed the runtime here, as a SIGKILL would; it resumes from the journal.

    A BaseException, like the kill it stands for: workflow and activity code never see it.
    """

    def __init__(self, where: str) -> None:
        super().__init__(f"simulated crash {where}")
        self.where = where
