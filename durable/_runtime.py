"""Runtime: runs workflows over a journal directory; and the lazily created default one.

A Runtime owns its JournalDirectory (files, locks, the shared sync thread) and the tasks of
the workflows it runs on the host event loop. The module-level `run` and `start` use one
default Runtime, created on first use from `$DURABLE_DIR` (or ./.durable): the only mutable
module state in durable.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import os
import reprlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar, TypeVarTuple, Unpack, overload

from ._bulk import ACTIONS as BULK_ACTIONS
from ._bulk import bulk_workflow
from ._children import ChildRunner
from ._deadline import Deadlines
from ._definitions import OMITTED, Workflow, _Omitted, execution_timeout_seconds
from ._durations import Duration, to_seconds
from ._encoding import decode, encode
from ._engine import _records as records
from ._engine._describe import WorkflowDescription
from ._engine._log_fields import current_workflow, durable_logger
from ._engine._outcomes import ContinuedAsNew, Finished, Suspended, final_outcome
from ._engine._replay import digest_of, start_record
from ._engine._set_aside import ending, last_standing
from ._engine._specs import WorkflowSpec
from ._engine._stall import StallWatch
from ._engine._workflow_run import WorkflowRun
from ._errors import (
    InvalidJournalName,
    InvalidWorkflowId,
    JournalError,
    JournalFenced,
    JournalLocked,
    JournalNotFound,
    UnknownWorkflow,
    WorkflowAlreadyRunning,
    WorkflowCancelled,
    WorkflowDefinitionError,
    WorkflowFailed,
    WorkflowIdInUse,
    WorkflowNotFound,
    WorkflowStopped,
    store_away,
)
from ._limits import limit_home
from ._mail import Mailroom
from ._operations._operating import Operating
from ._outage import Outage
from ._querying import Querying
from ._queue_service import AnyGrant, OnDuplicate, make_queue_service
from ._queues import DEFAULT_PRIORITY, Queue, check_enqueue, delay_seconds
from ._reading import describe_workflow
from ._seams import PRODUCTION, RuntimeSeams
from ._serving import Serving
from ._storage._directory import JournalDirectory
from ._storage._frames import StoredRecord
from ._storage._group_commit import SyncMode
from ._storage._interface import Journal, JournalStore, check_inbox_bounds
from ._streams import Stream, StreamItem, StreamMarks, StreamNews, read_stream
from ._telemetry import OpenTelemetry, observer_for

logger = durable_logger()

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_DIRECTORY = ".durable"
RECOVER_BATCH = 512  # journals recover() reads per thread hop (per query)


def default_directory() -> Path:
    """$DURABLE_DIR, else ./.durable."""
    return Path(os.environ.get("DURABLE_DIR") or DEFAULT_DIRECTORY)


class WorkflowHandle(Generic[R]):
    """A workflow's id, and its outcome once it ends, wherever on the store it runs.

    From start(), run()'s own, or Runtime.handle(): a handle to an id another runtime holds
    (here or in another process) follows that run, and takes the workflow over if that
    runtime stops or dies; result() is the workflow's real outcome either way.
    """

    def __init__(
        self,
        workflow_id: str,
        task: asyncio.Task[R] | None,
        runtime: Runtime,
    ) -> None:
        self.id = workflow_id
        self._task = task
        self._runtime = runtime
        self._started = False  # (this handle's call started the task: run() may cancel it)

    def done(self) -> bool:
        """Whether this runtime has seen the workflow end (or stop with the runtime)."""
        return self._task is not None and self._task.done()

    async def result(self) -> R:
        """Wait for the workflow's outcome; cancelling this wait does not stop the workflow.

        Raises:
            WorkflowFailed: the workflow raised; its recorded failure.
            WorkflowCancelled: it was cancelled.
            NonDeterminismError: the code diverged from the journal.
            WorkflowStopped: this runtime was closed first; it resumes from its journal.
        """
        while True:
            if self._task is None:
                self._task = await self._runtime._follow(self.id)
            try:
                return await _outcome_of(self.id, asyncio.shield(self._task), self._task)
            except WorkflowStopped:
                if self._runtime._closing:
                    raise
                # The run this handle followed was stopped by a caller that gave up on it
                # (a cancelled run() or start()), not by close(): follow the workflow again.
                self._task = None

    async def describe(self) -> WorkflowDescription:
        """What the workflow is doing now, read from its journal (see Runtime.describe)."""
        return await self._runtime.describe(self.id)

    async def send_event(
        self, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Send it an event (see Runtime.send_event)."""
        return await self._runtime.send_event(self.id, name, payload, event_id=event_id)

    async def cancel(self, reason: str = "cancelled") -> None:
        """Cancel it, durably (see Runtime.cancel)."""
        await self._runtime.cancel(self.id, reason)

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<WorkflowHandle {self.id!r} {state}>"


async def _outcome_of(workflow_id: str, waiting: Awaitable[R], task: asyncio.Task[R]) -> R:
    """Await `waiting`, turning a run that close() stopped into WorkflowStopped.

    Otherwise a caller that nobody cancelled would get a bare CancelledError.
    """
    try:
        return await waiting
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and (current is None or not current.cancelling()):
            raise WorkflowStopped(workflow_id=workflow_id) from None
        raise


@dataclass(frozen=True)
class _Request:
    """What a start asked for: which workflow, under which id, with which arguments.

    `arguments` is None to resume with the recorded ones; `given` the caller's, encoded, to
    hold the journal's to (None: attach to whatever the id recorded); `execution_timeout`
    a new journal's (OMITTED: the definition's).
    """

    definition: Workflow[..., Any]
    workflow_id: str
    arguments: list[Any] | None
    parent: str | None = None
    given: bytes | None = None
    execution_timeout: float | _Omitted | None = OMITTED
    trace: dict[str, str] | None = None  # a new journal's start record's `tc`


def _stopping(task: asyncio.Task[Any]) -> bool:
    """Whether an id's task was stopped, or is being stopped, by a cancellation."""
    return task.cancelled() or (not task.done() and task.cancelling() > 0)


def _unknown(*args: Any) -> None:
    """The function of a workflow this runtime does not know (a handle only reads it)."""


def _check_same_workflow(recorded: str, definition: Workflow[..., Any], workflow_id: str) -> None:
    if recorded != definition.name:
        raise WorkflowDefinitionError(
            f"workflow id {workflow_id!r} belongs to workflow {recorded!r}, not "
            f"{definition.name!r}: use another id"
        )


def _workflow_of(candidate: object) -> Workflow[..., Any]:
    if isinstance(candidate, Workflow):
        return candidate
    raise WorkflowDefinitionError(
        f"{candidate!r} is not a durable workflow: decorate the async function with "
        "@durable.workflow before running it"
    )


class Runtime(Serving, Operating, Querying):
    """Runs durable workflows over one journal directory, on the running event loop.

    Use it as an async context manager, or call close(): closing stops the workflows still
    running (they resume from their journals on the next run or recover()).

    ```python
    async with durable.Runtime("journals", workflows=[order_workflow]) as runtime:
        await runtime.recover()  # resume what a crash or a deploy left unfinished
        handle = await runtime.start(order_workflow, order, id="order-42")
        tracking = await handle.result()
    ```

    Args:
        directory: where journals live (default $DURABLE_DIR, else ./.durable).
        store: where journals live instead of a directory: a JournalStore such as
            PostgresStore (then `directory` and `sync` do not apply).
        workflows: workflows recover() may find in the directory (run/start add theirs).
        sync: how the journal syncs; see JournalDirectory ("auto" by default).
        suspend_after: a workflow that only sleeps or waits for events, for longer than
            this (default 1 min), is unloaded until its timer is due or a message arrives:
            no task, loop or records in memory meanwhile, only its journal's descriptor and
            lock (or lease), so no other runtime takes it; it resumes by replay. None keeps
            all loaded.
        event_poll_interval: how often (default 1 s) this runtime looks for events and
            cancellations sent from other processes (sends from this one arrive at once),
            and a handle to a workflow another process runs looks whether it has ended.
        stop_grace: how long close() lets activities in flight finish (default 5 s) before
            it cancels them; no new activity starts meanwhile.
        inbox_max_messages: each workflow's inbox bound on the messages its runner has not
            taken yet (default: the store's, 10,000); a send past it is refused with
            InboxFull. Given with a `store`, it replaces the store's.
        inbox_max_bytes: the same bound in bytes (default: the store's, 128 MiB).
        warn_blocked_after: workflow code that keeps the event loop for longer than this
            at once (default 2 s: a time.sleep, blocking I/O, a long computation) is
            reported once per stall, as a warning on the `durable` logger naming the
            workflow and the file:line it is at (a watchdog thread). None: no watchdog.
        queues: the durable.Queues this runtime serves: it starts their requests as their
            limits allow (once it runs on a loop: its first enqueue, start, run, recover or
            serve), and resumes their workflows only holding a slot. A queued workflow of
            a queue not declared here is refused (QueueNotDeclared). On a PostgresStore the
            limits hold across every host on the database.
        opentelemetry: True, or a durable.OpenTelemetry naming the providers: spans and
            metrics through OpenTelemetry (the `otel` extra; ExtraNotInstalled without it).
            The caller's trace context is journaled with each start and event, so a
            workflow's spans stay in its starter's trace across restarts (docs/how-to/
            tracing.md). Default False: no observation, nothing journaled for it.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        store: JournalStore | None = None,
        workflows: Iterable[Workflow[..., Any]] = (),
        sync: SyncMode = "auto",
        suspend_after: Duration | None = "1 min",
        event_poll_interval: Duration = "1 s",
        stop_grace: Duration = "5 s",
        inbox_max_messages: int | None = None,
        inbox_max_bytes: int | None = None,
        warn_blocked_after: Duration | None = "2 s",
        queues: Iterable[Queue] = (),
        opentelemetry: bool | OpenTelemetry = False,
        _seams: RuntimeSeams = PRODUCTION,
    ) -> None:
        self._seams = _seams  # (durable.testing's: virtual clock, mocks, crashes)
        self._telemetry = observer_for(opentelemetry)  # (None: off, the default)
        self._stall_watch = (
            None
            if warn_blocked_after is None
            else StallWatch(to_seconds(warn_blocked_after, what="warn_blocked_after"))
        )
        self._suspend_after = (
            None if suspend_after is None else to_seconds(suspend_after, what="suspend_after")
        )
        self._stop_grace = to_seconds(stop_grace, what="stop_grace")
        if store is not None and directory is not None:
            raise TypeError("give Runtime a directory or a store, not both")
        self.directory: Path | None = None  # (None: the journals live in `store`)
        if store is None:
            self.directory = Path(directory) if directory is not None else default_directory()
            store = JournalDirectory(self.directory, sync=sync)
        if inbox_max_messages is not None or inbox_max_bytes is not None:
            max_messages = store.inbox_max_messages
            max_bytes = store.inbox_max_bytes
            max_messages = max_messages if inbox_max_messages is None else inbox_max_messages
            max_bytes = max_bytes if inbox_max_bytes is None else inbox_max_bytes
            check_inbox_bounds(max_messages, max_bytes)
            store.inbox_max_messages, store.inbox_max_bytes = max_messages, max_bytes
        self._store: JournalStore = store
        if self._telemetry is not None:
            store.observe_syncs(self._telemetry.synced)
        self._workflows: dict[str, Workflow[..., Any]] = {}
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._runs: dict[str, WorkflowRun] = {}  # the loaded run of each running workflow
        self._loop: asyncio.AbstractEventLoop | None = None  # the host loop it runs on
        self._clock = _seams.clock
        self._mail = Mailroom(
            self._store,
            self._runs,
            self._running,
            to_seconds(event_poll_interval, what="event_poll_interval"),
            self._clock,
        )
        self._children = ChildRunner(self)
        self._watching: set[asyncio.Task[Any]] = set()  # (handles of workflows it cannot run)
        self._requested: dict[str, _Request] = {}  # what started each id's task here
        self._follow_interval = to_seconds(event_poll_interval, what="event_poll_interval")
        self._deadlines = Deadlines(self._mail, self._clock)
        self._stream_news = StreamNews()  # wakes this process's stream readers
        self._stream_marks = StreamMarks()  # where they have been (a reconnect reads on)
        self._closing = False  # close() is under way: runs loaded from now on start nothing
        self._queues = make_queue_service(self, self._store, self.directory, queues, self._clock)
        if self._telemetry is not None and self._queues.declared:
            where = str(self.directory) if self.directory is not None else "postgresql"
            self._telemetry.watch_queues(self._queues.waiting, where)
        for workflow in workflows:
            self._register(_workflow_of(workflow))
        self._bulk_actions = dict(BULK_ACTIONS)  # (Runtime.bulk: more may be added)
        self._register(bulk_workflow(self, self._bulk_actions))  # (any runtime finishes one)

    def _register(self, workflow: Workflow[..., Any]) -> None:
        known = self._workflows.setdefault(workflow.name, workflow)
        if known is not workflow and known.fn is not workflow.fn:
            raise WorkflowDefinitionError(
                f"two different workflows are named {workflow.name!r} ({known.fn!r} and "
                f"{workflow.fn!r}); give one another name with @durable.workflow(name=...)"
            )

    async def start(
        self,
        workflow: Callable[[Unpack[Ts]], Awaitable[R]],
        /,
        *args: *Ts,
        id: str | None = None,
        attach: bool = False,
        execution_timeout: Duration | _Omitted | None = OMITTED,
    ) -> WorkflowHandle[R]:
        """Start the workflow, or resume it from its journal, and return at once.

        If another runtime (in this process or another, on this store) runs the id, the
        handle follows that run: its result() is the workflow's outcome wherever it ends,
        and this runtime takes the run over if that one stops or dies. One runner per id.

        Args:
            workflow: a function decorated with @durable.workflow.
            *args: its arguments, journaled (a resumed workflow uses the recorded ones).
            id: the workflow id, which names its journal (default: derived from the
                workflow's name and the encoded arguments, so the same call resumes).
            attach: take whatever runs (or ran) under `id`, with its recorded arguments,
                even if they differ from `args` (default: that raises WorkflowIdInUse).
                A workflow past a continue_as_new is attached to either way: its first
                generation's arguments are no longer kept to compare.
            execution_timeout: how long it may run from its start before it is cancelled
                (WorkflowTimedOut); default: the one @durable.workflow gave, None for no
                limit. A new workflow's start record journals the deadline; resuming one
                keeps the deadline it has.

        Raises:
            InvalidDuration: `execution_timeout` is not a duration, or zero.
            WorkflowDefinitionError: `workflow` is not a durable workflow.
            SerializationError: an argument cannot be journaled; nothing was written.
            InvalidWorkflowId: the id cannot name a journal file.
            WorkflowIdInUse: the id's journal recorded other arguments (and not `attach`).
            WorkflowDefinitionError: the id's journal belongs to another workflow.
        """
        definition = _workflow_of(workflow)
        timeout = execution_timeout
        if not isinstance(timeout, _Omitted):
            timeout = execution_timeout_seconds(timeout)
        self._register(definition)
        arguments: list[Any] = [*args]
        encoded = encode(arguments, context=f"the arguments of workflow {definition.name!r}")
        workflow_id = id if id is not None else f"{definition.name}-{digest_of(encoded)}"
        return await self._start(
            definition,
            workflow_id,
            arguments,
            given=None if attach else encoded,
            execution_timeout=timeout,
        )

    async def enqueue(
        self,
        queue: Queue,
        workflow: Callable[[Unpack[Ts]], Awaitable[R]],
        /,
        *args: *Ts,
        id: str | None = None,
        key: str | None = None,
        priority: int = DEFAULT_PRIORITY,
        dedup_id: str | None = None,
        delay: Duration | None = None,
        on_duplicate: OnDuplicate = "return",
    ) -> WorkflowHandle[R]:
        """Queue the workflow on `queue`; its handle once the request is durable.

        A runtime that declares the queue (Runtime(queues=[queue]), in any process on this
        directory) starts it in its turn: lower `priority` first, first come first served
        within one, as the queue's limits allow. Until then it is "queued" in describe()
        and `durable list`, with its place and what it waits for; a queue that no process
        serves keeps it waiting there. The handle's result() waits for the outcome.

        Args:
            queue: the queue.
            workflow: a function decorated with @durable.workflow.
            *args: its arguments, journaled when it starts.
            id: the workflow id (default: the workflow's name and a random suffix).
            key: the partition key that `concurrency_per_key` counts (a customer id, say).
            priority: 1 (first) to 9 (last); default 5.
            dedup_id: while a request with this dedup id is queued or running, enqueueing
                another returns the existing handle (or raises, see on_duplicate).
            delay: start no sooner than this (a duration) from now.
            on_duplicate: "return" (default) the existing workflow's handle for a dedup id
                or id that is queued or running; "raise" AlreadyQueued instead.

        Raises:
            InvalidQueue: a priority out of range, a key on a queue without
                concurrency_per_key, a negative delay; nothing was written.
            AlreadyQueued: a duplicate, with on_duplicate="raise".
            SerializationError: an argument cannot be journaled; nothing was written.
            InvalidWorkflowId: the id cannot name a journal.
        """
        definition = _workflow_of(workflow)
        seconds = delay_seconds(queue, delay)
        check_enqueue(queue, priority=priority, key=key, dedup_id=dedup_id, delay=seconds)
        self._register(definition)
        trace = self._telemetry.capture() if self._telemetry is not None else None
        try:
            workflow_id = await self._queues.enqueue(
                queue,
                definition,
                [*args],
                workflow_id=id,
                key=key,
                priority=priority,
                dedup_id=dedup_id,
                delay=seconds,
                on_duplicate=on_duplicate,
                trace=trace,
            )
        except InvalidJournalName as error:
            raise InvalidWorkflowId.of(error) from None
        return self._handle_of(workflow_id, None)

    def _wake_queues(self) -> None:
        self._queues.wake()

    async def _queued_orphans(self) -> list[str]:
        return await self._queues.orphans()

    async def _queued_orphan(self, workflow_id: str) -> tuple[Workflow[..., Any], list[Any]] | None:
        return await self._queues.orphaned(workflow_id)

    async def _start(
        self,
        definition: Workflow[..., Any],
        workflow_id: str,
        arguments: list[Any] | None,
        parent: str | None = None,
        *,
        given: bytes | None = None,
        follow: bool = True,
        execution_timeout: float | _Omitted | None = OMITTED,
        trace: dict[str, str] | None = None,
        queued: tuple[str, float] | None = None,
    ) -> WorkflowHandle[Any]:
        """Start or resume the workflow here, or follow the runtime that holds it; a handle.

        `given`: the caller's encoded arguments, to hold the journal's to. `follow`: False
        (recover, serve) raises WorkflowAlreadyRunning for an id held anywhere instead.
        An id has one task in a runtime, registered before the first await: a second start
        of it here joins that task. `execution_timeout`: a new journal's (default: the
        definition's). `trace`: a new journal's trace carrier (default, with OpenTelemetry
        on: the caller's context). `queued`: (queue, enqueued at) of a request its queue
        admitted now (traced as the wait, under the enqueuer's span, the run's parent).
        """
        self._check_id(workflow_id)
        if self._closing:
            raise WorkflowStopped(workflow_id=workflow_id)
        task = self._running.get(workflow_id)
        if task is not None and _stopping(task):
            task = None  # (stopped by a caller that gave up: start it afresh)
        if task is not None:
            if not follow:
                location = self._store.location(workflow_id)
                raise WorkflowAlreadyRunning(workflow_id=workflow_id, path=location)
            run = self._runs.get(workflow_id)
            if run is not None:
                _check_same_workflow(run.spec.name, definition, workflow_id)
                if given is not None:
                    _check_arguments(run, given, arguments)
            else:
                await self._check_recorded(
                    workflow_id, definition, given, arguments, self._requested.get(workflow_id)
                )
            return self._handle_of(workflow_id, task)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._queues.wake()
        claimed: asyncio.Future[None] = loop.create_future()
        if self._telemetry is not None:
            if queued is not None:  # (its wait in the queue: the run's parent)
                trace = self._telemetry.queue_wait(*queued, workflow_id, trace)
            elif trace is None:
                trace = self._telemetry.capture()  # (the caller's span: the workflow's parent)
        request = _Request(
            definition, workflow_id, arguments, parent, given, execution_timeout, trace
        )
        context = contextvars.copy_context()  # (its activities' Limits: shared by its processes)
        context.run(limit_home.set, self.directory or self._queues.limit_home)
        context.run(current_workflow.set, (workflow_id, definition.name))  # (log records)
        task = loop.create_task(
            self._execute(request, claimed, follow=follow),
            name=f"durable {workflow_id}",
            context=context,
        )
        self._running[workflow_id] = task
        self._requested[workflow_id] = request
        task.add_done_callback(functools.partial(self._task_ended, workflow_id, claimed))
        self._mail.watch()
        try:
            await asyncio.shield(claimed)
        except asyncio.CancelledError:
            if not claimed.done():  # the caller gave up before it began: nothing runs for it
                task.cancel()
            raise
        # Let it run to its first await before the caller starts the next: a loop that starts
        # 10,000 sleepers would otherwise hold all of them loaded before the first unloads.
        await asyncio.sleep(0)
        handle = self._handle_of(workflow_id, task)
        handle._started = True
        return handle

    def _handle_of(self, workflow_id: str, task: asyncio.Task[Any] | None) -> WorkflowHandle[Any]:
        """A handle of this runtime's type (durable.testing's skips virtual time)."""
        if self._seams.handle is None:
            return WorkflowHandle(workflow_id, task, self)
        handle = self._seams.handle(workflow_id, task)
        assert isinstance(handle, WorkflowHandle)
        return handle

    def _task_ended(
        self, workflow_id: str, claimed: asyncio.Future[None], task: asyncio.Task[Any]
    ) -> None:
        if self._running.get(workflow_id) is task:
            del self._running[workflow_id]
            self._requested.pop(workflow_id, None)
            self._mail.forget(workflow_id)
            self._deadlines.disarm(workflow_id)
        if not claimed.done():
            claimed.cancel()
        elif not claimed.cancelled() and claimed.exception() is not None:
            if not task.cancelled():
                task.exception()  # (the starter raised it already: retrieved, not logged)
            return
        _log_end(task)

    async def _take(
        self, request: _Request, claimed: asyncio.Future[None] | None, *, follow: bool = True
    ) -> tuple[Journal, WorkflowRun]:
        """Open the id's journal and build its run.

        While another runtime (in another process, on this store) holds it, wait for that
        one to end the workflow or let go of it (stopped, died, its lease lapsed), looking
        every event_poll_interval; then take it: a finished workflow's outcome is replayed,
        an unfinished one resumes here. `claimed` is settled once the caller may go on.
        """
        try:
            return await self._try_taking(request, claimed, follow=follow)
        except BaseException as error:
            if claimed is not None and not claimed.done():
                if isinstance(error, asyncio.CancelledError):
                    claimed.cancel()
                else:
                    claimed.set_exception(error)
            raise

    async def _try_taking(
        self, request: _Request, claimed: asyncio.Future[None] | None, *, follow: bool
    ) -> tuple[Journal, WorkflowRun]:
        workflow_id, given, arguments = request.workflow_id, request.given, request.arguments
        outage = Outage(f"workflow {workflow_id}", self._follow_interval)
        while True:
            try:
                journal = await self._open(workflow_id)
            except JournalLocked:
                if not follow:
                    location = self._store.location(workflow_id)
                    raise WorkflowAlreadyRunning(workflow_id=workflow_id, path=location) from None
                if claimed is not None and not claimed.done():
                    await self._check_recorded(workflow_id, request.definition, given, arguments)
                    claimed.set_result(None)
                await asyncio.sleep(self._follow_interval)
                continue
            except Exception as error:
                # A store that is away when a run takes its workflow again (not at a first
                # start: its caller is told) is waited for.
                if (claimed is not None and not claimed.done()) or not store_away(error):
                    raise
                await outage.wait(error)
                continue
            outage.over()
            try:
                run = self._run_of(
                    request.definition,
                    workflow_id,
                    journal,
                    arguments,
                    request.parent,
                    execution_timeout=request.execution_timeout,
                    trace=request.trace,
                )
                if given is not None and journal.records and claimed and not claimed.done():
                    _check_arguments(run, given, arguments)
            except BaseException:
                await journal.close()
                raise
            if claimed is not None and not claimed.done():
                claimed.set_result(None)
            return journal, run

    async def _check_recorded(
        self,
        workflow_id: str,
        definition: Workflow[..., Any],
        given: bytes | None,
        arguments: list[Any] | None,
        pending: _Request | None = None,
    ) -> None:
        """Refuse to join a run of another workflow, or one with other arguments (`given`).

        As read from its journal; before its start record exists, as `pending` (what the
        start this one joins asked for) says.
        """
        try:
            start = await self._start_record_of(workflow_id)
        except WorkflowNotFound:
            start = None  # (its runner has not created it yet)
        if start is None:
            if pending is None:
                return
            start = {"wf": pending.definition.name, "gen": 0}
            if pending.given is not None:
                start["args"] = decode(pending.given, path=workflow_id, offset=0)
        _check_same_workflow(str(start.get("wf")), definition, workflow_id)
        if given is None or start.get("gen", 0) != 0 or "args" not in start:
            return
        recorded = start["args"]
        if encode(recorded, context="the recorded arguments") == given:
            return
        if decode(given, path=workflow_id, offset=0) == recorded:
            return
        raise WorkflowIdInUse(
            workflow_id=workflow_id, recorded=_SHORT.repr(recorded), given=_SHORT.repr(arguments)
        )

    async def _start_record_of(self, workflow_id: str) -> dict[str, Any] | None:
        """The start record of the id's journal (None: being created); no lock taken.

        Raises:
            WorkflowNotFound: there is no such journal.
        """
        try:
            stored = await self._store.read(workflow_id)
        except JournalNotFound:
            raise WorkflowNotFound(
                workflow_id=workflow_id, directory=self._store.location(workflow_id)
            ) from None
        if not stored:
            return None
        start = records.read_journal(stored[:1], path=self._store.location(workflow_id))[0]
        return dict(start)

    async def _follow(self, workflow_id: str) -> asyncio.Task[Any]:
        """The task whose outcome is the workflow's (Runtime.handle's result()).

        This runtime's task for the id if it has one; else, when it knows the workflow,
        a new one that follows whoever runs it (and takes it over when nobody does); else
        one that watches the journal until it ends.
        """
        if self._closing:
            raise WorkflowStopped(workflow_id=workflow_id)
        self._queues.wake()
        task = self._running.get(workflow_id)
        if task is not None and not _stopping(task):
            return task
        try:
            start = await self._start_record_of(workflow_id)
        except WorkflowNotFound:
            if await self._queues.wait_admitted(workflow_id):
                return await self._follow(workflow_id)  # (started now, here or elsewhere)
            # (a queued one may have started and ended between the two looks)
            start = await self._start_record_of(workflow_id)
        definition = self._workflows.get(str(start.get("wf"))) if start is not None else None
        if definition is not None:
            handle = await self._start(definition, workflow_id, None)
            assert handle._task is not None
            return handle._task
        watching = asyncio.get_running_loop().create_task(
            self._watch(workflow_id), name=f"durable watch {workflow_id}"
        )
        self._watching.add(watching)
        watching.add_done_callback(self._watching.discard)
        return watching

    async def _watch(self, workflow_id: str) -> Any:
        """The outcome of a workflow whose code this runtime does not know, once it ends.

        Read from its journal, looking every event_poll_interval.
        """
        where = self._store.location(workflow_id)
        while True:
            journal = records.read_journal(await self._store.read(workflow_id), path=where)
            end = ending(journal) if journal else None
            if end is not None and "cont" not in end:
                spec = WorkflowSpec(str(journal[0]["wf"]), _unknown, (), Any)
                return final_outcome(workflow_id, spec, end, None)
            await asyncio.sleep(self._follow_interval)

    async def _execute(
        self, request: _Request, claimed: asyncio.Future[None], *, follow: bool
    ) -> Any:
        """The task of one id: take its journal, then run the workflow to its end.

        Through unloading while it sleeps, and new generations. Until it has the journal it
        follows the runner that holds the id elsewhere, if one does; so does a runner that
        lost its lease (fenced) to the runtime that took the workflow over.
        """
        definition, workflow_id = request.definition, request.workflow_id
        current: Journal | None = None
        grant: AnyGrant | None = None  # (a queued workflow's slots, held until its task ends)
        try:
            current, run = await self._take(request, claimed, follow=follow)
            grant = await self._queues.gate(workflow_id)
            parent = run.parent
            while True:
                await self._load(workflow_id, run)
                sleep: Suspended | None = None
                away = False  # (its store is: take it again once it answers)
                try:
                    try:
                        outcome = await run.execute()
                        if isinstance(outcome, Finished):
                            await _note(current, finished=True)
                            if grant is not None:
                                grant.finished = True
                            return outcome.unwrap()  # (WorkflowFailed, WorkflowCancelled)
                        if isinstance(outcome, ContinuedAsNew):
                            assert current is not None
                            next_start = self._next_generation(run, outcome)
                            current = await self._seams.journals.rotate(
                                self._store, current, next_start
                            )
                            run = self._run_of(  # (linked to the generation before it)
                                definition,
                                workflow_id,
                                current,
                                None,
                                previous_run=run.trace_carrier,
                            )
                            continue
                        sleep = outcome  # a long sleep: let go of all but the lock
                    finally:
                        self._runs.pop(workflow_id, None)
                except JournalFenced as fenced:
                    logger.info("workflow %s: %s", workflow_id, fenced)
                except BaseException as error:
                    away = _went_away(workflow_id, error)  # (a database restart, say)
                    if not away and not self._seams.restarts_after(error):
                        raise
                    # (a simulated crash: resume at once, as a restarted process would)
                del run
                assert current is not None
                if sleep is not None and await self._sleep(
                    current, workflow_id, sleep.wake_at, sleep.inbox_next
                ):
                    run = self._run_of(definition, workflow_id, current, request.arguments, parent)
                    continue
                await _let_go(current, away=away)
                current = None
                current, run = await self._take(replace(request, parent=parent), None)
        finally:
            if current is not None:
                await current.close()
            if grant is not None:
                self._queues.release(grant)

    async def _load(self, workflow_id: str, run: WorkflowRun) -> None:
        """Make `run` the id's loaded run, its deadline armed from its journal (each load)."""
        await self._deadlines.arm(workflow_id, run)
        self._runs[workflow_id] = run

    async def _sleep(
        self, journal: Journal, workflow_id: str, wake_at: float, inbox_next: int
    ) -> bool:
        """An unloaded sleeper's wait, with its journal suspended, not closed.

        It keeps its lock (or lease), so no other runtime takes it meanwhile. False: the
        lease lapsed meanwhile (a paused process) and another runtime may have it; or a
        simulated crash struck meanwhile (reopen and replay now). While it waits, its task
        holds this frame and _execute's only (see Mailroom.park).
        """
        mail = self._mail
        mail.expect(workflow_id)  # (before any await: a message from now on wakes it)
        try:
            await _note(journal, wake_at=wake_at, inbox_next=inbox_next)
            await journal.suspend()
            wakeup, timer = mail.park(workflow_id, wake_at)
            try:
                await wakeup
            finally:
                mail.unpark(workflow_id, timer)
            return await _resumed(journal, workflow_id)
        except BaseException as error:
            if not self._seams.restarts_after(error):
                raise
            return False

    def _next_generation(self, run: WorkflowRun, continued: ContinuedAsNew) -> bytes:
        extra: dict[str, Any] = {"gen": continued.generation + 1, "q": continued.inbox_next}
        if continued.carried:
            extra["carry"] = continued.carried
        if run.parent is not None:
            extra["parent"] = run.parent
        if run.deadline is not None:  # (the execution_timeout spans the chain)
            extra["dl"] = run.deadline
        if run.starter is not None:  # (the starter's trace context, for every generation)
            extra["tc"] = run.starter
        if run.stream_counts:  # (a stream's offsets go on from where this generation's end)
            extra["so"] = dict(
                itertools.islice(run.stream_counts.items(), records.STREAM_OFFSETS_KEPT)
            )
        clock = self._clock.time
        return start_record(run.spec.name, run.workflow_id, continued.arguments, clock, **extra)

    def _check_id(self, workflow_id: str) -> None:
        try:
            self._store.check_name(workflow_id)
        except InvalidJournalName as error:
            raise InvalidWorkflowId.of(error) from None

    async def _open(self, workflow_id: str) -> Journal:
        """Open and lock the id's journal (JournalLocked: another runner holds it)."""
        return self._seams.journals.opened(await self._store.open(workflow_id))

    def _run_of(
        self,
        definition: Workflow[..., Any],
        workflow_id: str,
        journal: Journal,
        arguments: list[Any] | None,
        parent: str | None = None,
        *,
        execution_timeout: float | _Omitted | None = OMITTED,
        trace: dict[str, str] | None = None,
        previous_run: dict[str, str] | None = None,
    ) -> WorkflowRun:
        if isinstance(execution_timeout, _Omitted):
            execution_timeout = definition.spec.execution_timeout
        run = WorkflowRun(
            spec=definition.spec,
            workflow_id=workflow_id,
            journal=journal,
            arguments=arguments,
            clock=self._clock,
            substitute=self._seams.substitute,
            suspend_after=self._suspend_after,
            location=self._store.location(workflow_id),
            inbox=self._mail.reader(workflow_id),
            children=self._children,
            parent=parent,
            record_limit=self._store.max_record_size,
            execution_timeout=execution_timeout,
            watch=self._stall_watch,
            # (file store: a record is readable once written; PostgreSQL's once committed,
            # which its readers' polls find)
            streamed=functools.partial(self._stream_news.appended, workflow_id)
            if isinstance(self._store, JournalDirectory)
            else None,
            observer=self._telemetry,
            trace=trace,
            previous_run=previous_run,
        )
        if self._closing:  # (a sleeper woken, a child started, during stop_grace)
            run.stop_starting()
        return run

    async def run(
        self,
        workflow: Callable[[Unpack[Ts]], Awaitable[R]],
        /,
        *args: *Ts,
        id: str | None = None,
        attach: bool = False,
        execution_timeout: Duration | _Omitted | None = OMITTED,
    ) -> R:
        """Run the workflow (or resume it from its journal) and return its result.

        A finished workflow returns its recorded result, or re-raises its recorded failure,
        without running anything. Cancelling this call stops the run; it resumes later.

        Raises:
            WorkflowFailed: the workflow raised; its recorded failure (with the cause).
            WorkflowCancelled: it was cancelled; WorkflowTimedOut (a WorkflowCancelled) when
                by its `execution_timeout` (see start()).
            NonDeterminismError: the code diverged from the journal; nothing was written.
            WorkflowIdInUse: `id` ran with other arguments (see start()'s `attach`); and
                whatever else start() raises.
        """
        handle = await self.start(
            workflow, *args, id=id, attach=attach, execution_timeout=execution_timeout
        )
        task = handle._task
        assert task is not None
        # Cancelling this call stops a run it started; one it joined goes on for the others.
        waiting = task if handle._started else asyncio.shield(task)
        return await _outcome_of(handle.id, waiting, task)

    async def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle to the workflow `workflow_id`, started anywhere on this store.

        Its result() waits for the workflow's outcome wherever it runs (here, or another
        process on this directory or database), and a finished one's at once; if no
        runtime holds it and this one knows its workflow, result() resumes it here, as
        recover() would. It also describes it, sends it events and cancels it.

        Raises:
            InvalidWorkflowId: the id cannot name a journal.
            WorkflowNotFound: no workflow (nor queued request) has this id here.
        """
        self._check_id(workflow_id)
        self._queues.wake()
        task = self._running.get(workflow_id)
        if task is None and not await self._queues.is_queued(workflow_id):
            await self._start_record_of(workflow_id)  # (WorkflowNotFound)
        return self._handle_of(workflow_id, task)

    async def recover(self) -> list[WorkflowHandle[Any]]:
        """Resume every unfinished workflow of the directory; their handles.

        Workflows held by another runner are skipped. Checks every journal first, so an
        unknown workflow name starts nothing. A journal that cannot be read (damaged, a link
        planted at its name, no permission) is skipped with an error on the `durable`
        logger that says why, so one bad file does not keep the others from resuming.

        Raises:
            UnknownWorkflow: a journal names a workflow this runtime does not know.
        """
        self._queues.wake()
        unfinished: list[tuple[str, Workflow[..., Any], list[Any] | None]] = []
        names = [name for name in await self._store.list() if name not in self._running]
        listed = set(names)
        orphans = [name for name in await self._queues.orphans() if name not in self._running]
        names += [name for name in orphans if name not in listed]
        async for name, stored in self._read_in_batches(names):
            try:
                if isinstance(stored, JournalNotFound) or not stored:
                    # (a queued request's whose admitter died before its start record)
                    orphan = await self._queued_request(name)
                    if orphan is not None:
                        unfinished.append((name, *orphan))
                    continue
                if isinstance(stored, JournalError):
                    raise stored
                start = decode(stored[0].payload, path=name, offset=stored[0].offset)
                last = last_standing(stored, path=name)  # (the end, past any links)
            except JournalError as error:
                logger.error("recover: workflow %s skipped: %s", name, error)
                continue
            if isinstance(last, dict) and last.get("k") == records.END and "cont" not in last:
                continue  # (an end{cont} not rotated yet: its next generation is due)
            workflow_name = start.get("wf") if isinstance(start, dict) else None
            workflow = self._workflows.get(str(workflow_name))
            if workflow is None:
                raise UnknownWorkflow(
                    workflow_id=name, name=str(workflow_name), known=sorted(self._workflows)
                )
            unfinished.append((name, workflow, None))
        handles = []
        for name, workflow, arguments in unfinished:
            try:
                handles.append(await self._start(workflow, name, arguments, follow=False))
            except WorkflowAlreadyRunning:
                logger.info("recover: workflow %s is running elsewhere; skipped", name)
            except JournalError as error:  # (damaged since it was read, say)
                logger.error("recover: workflow %s skipped: %s", name, error)
        return handles

    async def _queued_request(self, name: str) -> tuple[Workflow[..., Any], list[Any]] | None:
        """recover(): what to start an orphaned queued request with (None: none, or unusable)."""
        try:
            return await self._queues.orphaned(name)
        except Exception as error:  # (its request names an unknown workflow, or is damaged)
            logger.error("recover: queued workflow %s skipped: %r", name, error)
            return None

    async def _read_in_batches(
        self, names: list[str]
    ) -> AsyncIterator[tuple[str, list[StoredRecord] | JournalError]]:
        """Every named journal's records, RECOVER_BATCH at a time (not a thread hop each).

        A batch is let go of before the next is read: recover() reads finished journals
        too, and a directory's worth of them at once could be gigabytes.
        """
        read_many = getattr(self._store, "read_many", None)  # (a store of an older protocol)
        for first in range(0, len(names), RECOVER_BATCH):
            chunk = names[first : first + RECOVER_BATCH]
            batch = await read_many(chunk) if read_many else await self._read_each(chunk)
            for name in list(batch):  # (in order; each journal's records dropped once seen)
                yield name, batch.pop(name)

    async def _read_each(self, names: list[str]) -> dict[str, list[StoredRecord] | JournalError]:
        """read_many, one read at a time: for a store that has no read_many."""
        found: dict[str, list[StoredRecord] | JournalError] = {}
        for name in names:
            try:
                found[name] = await self._store.read(name)
            except JournalError as error:
                found[name] = error
        return found

    async def send_event(
        self, workflow_id: str, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Deliver an event to a workflow, durably, wherever and whenever it runs.

        Returns once the event is on disk: the workflow takes it at its next
        `wait_for_event(name)` (events wait, in order, until one does), now if it runs here,
        within event_poll_interval if another process runs it, on its next resume if none.

        Args:
            workflow_id: the workflow's id.
            name: the event's name, as the workflow waits for it.
            payload: any value the journal can hold (default None).
            event_id: de-duplicates: an event with an id already sent is not sent again.

        Returns:
            False if `event_id` had already been sent (nothing written), else True.

        Raises:
            WorkflowNotFound: no workflow has this id here.
            WorkflowFinished: the workflow has ended.
            SerializationError: the payload cannot be journaled.
            MessageTooLarge: the encoded event is over the store's max_record_size less
                1 KiB (its journal could never hold it); nothing was written.
            InboxFull: the workflow's inbox holds inbox_max_messages (or inbox_max_bytes)
                its runner has not taken yet; nothing was written.
        """
        self._check_id(workflow_id)
        carrier = self._telemetry.capture() if self._telemetry is not None else None
        return await self._mail.send_event(workflow_id, name, payload, event_id, carrier)

    async def cancel(
        self, workflow_id: str, reason: str = "cancelled", *, request_id: str | None = None
    ) -> bool:
        """Cancel a workflow: CancelledError is raised at its current await.

        Journaled, so a restart does not resurrect it. The workflow may catch it (run cleanup
        activities, compensate) and then ends cancelled: its result raises WorkflowCancelled.
        Its child workflows are cancelled with it.

        Args:
            workflow_id: the workflow's id.
            reason: why, journaled with the cancellation (and shown by `durable show`).
            request_id: de-duplicates: a cancellation with an id already sent to this
                workflow is not sent again (a bulk action retried after a crash).

        Returns:
            False if `request_id` had already been sent (nothing written), else True.

        Raises:
            WorkflowNotFound: no workflow has this id here.
            WorkflowFinished: the workflow has already ended.
            MessageTooLarge: the reason is too large for the journal; nothing was written.
            InboxFull: the inbox is past its bound, even with the reserve cancellations
                have beyond it (16 messages, 1 MiB); nothing was written.
        """
        self._check_id(workflow_id)
        carrier = self._telemetry.capture() if self._telemetry is not None else None
        return await self._mail.cancel(workflow_id, reason, request_id, carrier)

    async def describe(self, workflow_id: str) -> WorkflowDescription:
        """What the workflow is doing, read from its journal (no workflow code runs).

        Raises:
            WorkflowNotFound: no workflow has this id here.
        """
        self._check_id(workflow_id)
        try:
            return await describe_workflow(self._store, workflow_id)
        except WorkflowNotFound:
            queued = await self._queues.describe(workflow_id)  # (state "queued", place, why)
            if queued is None:
                raise
            return queued

    @overload
    def read_stream(
        self,
        workflow_id: str,
        stream: Stream[T],
        offset: int = 0,
        *,
        poll_interval: Duration = 0.05,
    ) -> AsyncIterator[StreamItem[T]]: ...
    @overload
    def read_stream(
        self, workflow_id: str, stream: str, offset: int = 0, *, poll_interval: Duration = 0.05
    ) -> AsyncIterator[StreamItem[Any]]: ...
    def read_stream(
        self,
        workflow_id: str,
        stream: str | Stream[Any],
        offset: int = 0,
        *,
        poll_interval: Duration = 0.05,
    ) -> AsyncIterator[StreamItem[Any]]:
        """The values of a workflow's stream from `offset` on, following it until the run ends.

        Works for a workflow running anywhere on this store (this process or another), and
        after it ended. Each item says its offset: read again from `item.offset + 1` to
        resume exactly. While the run goes on, the iterator waits for new values (looking
        every `poll_interval`, default 50 ms); it ends when the run ends, following it
        across continue_as_new (offsets go on from one generation to the next; a reader
        that resumes at an offset of a generation no longer kept starts at the oldest value
        there is). Memory is bounded by a page of the journal, however long the stream.

        Raises (while iterating):
            WorkflowNotFound: no workflow has this id here.
            StreamNotFound: the run ended and never appended to this stream.
            InvalidStreamOffset: a negative offset, or one past the end of an ended stream
                (past the end of a running one, it waits).
        """
        self._check_id(workflow_id)
        interval = to_seconds(poll_interval, what="poll_interval")
        return read_stream(
            self._store,
            workflow_id,
            stream,
            offset,
            poll_interval=interval,
            starting=lambda: workflow_id in self._running,  # (started here: it will be there)
            news=self._stream_news,
            marks=self._stream_marks,
        )

    async def close(self) -> None:
        """Stop the workflows still running (they resume later) and release the directory.

        Activities in flight get `stop_grace` to finish (their outcomes are journaled);
        meanwhile no new one starts. Then the rest is cancelled; nothing is half-written.
        """
        self._closing = True
        await self._queues.close()
        in_flight = [task for run in self._runs.values() for task in run.stop_starting()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=self._stop_grace)
        tasks = [*self._running.values(), *self._watching]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._children.settle()
        await self._deadlines.close()
        if self._stall_watch is not None:
            self._stall_watch.stop()
        await self._mail.stop()
        await self._queues.close_files()
        await self._store.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


_default_runtime: Runtime | None = None


def _log_end(task: asyncio.Task[Any]) -> None:
    """Log how a workflow that did not return ended, once; its handles still raise it.

    Taking the exception here also keeps asyncio from printing "Task exception was never
    retrieved" for a run nobody awaits (recover()'s, an un-awaited start()'s).
    """
    if task.cancelled():
        return  # (stopped by close(): it resumes from its journal)
    error = task.exception()
    if error is None:
        return
    name = task.get_name().removeprefix("durable ")
    if isinstance(error, WorkflowFailed | WorkflowCancelled):
        logger.info("workflow %s ended: %s", name, error)
    else:
        logger.error("workflow %s stopped: %s", name, error, exc_info=error)


_SHORT = reprlib.Repr()  # (argument lists shortened for an error message)
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 6
_SHORT.maxlevel = 3


def _check_arguments(run: WorkflowRun, given: bytes, arguments: list[Any] | None) -> None:
    """Refuse a run()/start() whose arguments are not those its id's journal recorded.

    A later generation's start record holds the arguments continue_as_new passed, not the
    caller's: the first generation's are gone, so such a run is never refused.
    """
    if run.generation != 0:
        return
    recorded = encode(run.arguments, context="the recorded arguments")
    if recorded == given:  # (the digests the journal names calls by, byte for byte)
        return
    # A set encodes in its iteration order, which a set of equal values in another process
    # (or built in another order) may not share: equal decoded values are the same call.
    if decode(given, path=run.workflow_id, offset=0) == run.arguments:
        return
    raise WorkflowIdInUse(
        workflow_id=run.workflow_id,
        recorded=_SHORT.repr(run.arguments),
        given=_SHORT.repr(arguments),
    )


def _went_away(workflow_id: str, error: BaseException) -> bool:
    """Whether a run stopped because its store is away (said once, on the durable logger)."""
    if not isinstance(error, Exception) or not store_away(error):
        return False
    logger.warning(
        "workflow %s: the journal store is away (%s: %s); it resumes here once it answers",
        workflow_id,
        type(error).__name__,
        error,
    )
    return True


async def _let_go(journal: Journal, *, away: bool) -> None:
    """Close a journal its run let go of.

    A store that is away cannot take its last records: they go with the run's lease, and
    the workflow resumes from what was committed when it is taken again.
    """
    try:
        await journal.close()
    except Exception as error:
        if not (away or store_away(error)):
            raise


async def _resumed(journal: Journal, workflow_id: str) -> bool:
    """Read a sleeper's journal back at its wake-up; False: take the workflow again."""
    try:
        await journal.resume()
    except JournalFenced as fenced:
        logger.info("workflow %s, unloaded while it slept: %s", workflow_id, fenced)
        return False
    except Exception as error:
        if not store_away(error):
            raise
        logger.warning(
            "workflow %s: the journal store is away at its wake-up (%s); it resumes here "
            "once it answers",
            workflow_id,
            error,
        )
        return False
    return True


async def _note(
    journal: Journal | None,
    *,
    finished: bool = False,
    wake_at: float | None = None,
    inbox_next: int | None = None,
) -> None:
    """Tell the store how the workflow stands (a hint for serve(); never fails the run)."""
    if journal is None:
        return
    try:
        await journal.note(finished=finished, wake_at=wake_at, inbox_next=inbox_next)
    except Exception:  # (a hint)
        logger.debug("could not note the state of a journal", exc_info=True)


def default_runtime() -> Runtime:
    """The runtime durable.run() and durable.start() use, created on first use."""
    global _default_runtime  # noqa: PLW0603 (the one lazily created default runtime)
    if _default_runtime is None:
        _default_runtime = Runtime()
    return _default_runtime


async def run(
    workflow: Callable[[Unpack[Ts]], Awaitable[R]],
    /,
    *args: *Ts,
    id: str | None = None,
    attach: bool = False,
    execution_timeout: Duration | _Omitted | None = OMITTED,
) -> R:
    """Run a workflow on the default runtime ($DURABLE_DIR or ./.durable); see Runtime.run.

    The default runtime is made on first use (reading $DURABLE_DIR then); for a directory
    of your own, recover() or a long-running service, open a Runtime.

    ```python
    tracking = await durable.run(order_workflow, order, id="order-42")
    ```

    Running the same id again returns the recorded result (or resumes an unfinished run
    from its journal): choose an id that names the business thing, not the attempt.
    """
    return await default_runtime().run(
        workflow, *args, id=id, attach=attach, execution_timeout=execution_timeout
    )


async def start(
    workflow: Callable[[Unpack[Ts]], Awaitable[R]],
    /,
    *args: *Ts,
    id: str | None = None,
    attach: bool = False,
    execution_timeout: Duration | _Omitted | None = OMITTED,
) -> WorkflowHandle[R]:
    """Start a workflow on the default runtime; see Runtime.start.

    ```python
    handle = await durable.start(order_workflow, order, id="order-42")
    await handle.send_event("warehouse-confirmed", {"packer": "Grace"})
    tracking = await handle.result()
    ```
    """
    return await default_runtime().start(
        workflow, *args, id=id, attach=attach, execution_timeout=execution_timeout
    )


async def enqueue(
    queue: Queue,
    workflow: Callable[[Unpack[Ts]], Awaitable[R]],
    /,
    *args: *Ts,
    id: str | None = None,
    key: str | None = None,
    priority: int = DEFAULT_PRIORITY,
    dedup_id: str | None = None,
    delay: Duration | None = None,
    on_duplicate: OnDuplicate = "return",
) -> WorkflowHandle[R]:
    """Queue a workflow on the default runtime; see Runtime.enqueue.

    ```python
    orders = durable.Queue("orders", concurrency=10)
    handle = await durable.enqueue(orders, order_workflow, order, key=order.customer_id)
    ```

    A process that only enqueues need not declare the queue; a runtime that declares it
    (`Runtime(queues=[orders])`, in any process on the store) starts the work.
    """
    return await default_runtime().enqueue(
        queue,
        workflow,
        *args,
        id=id,
        key=key,
        priority=priority,
        dedup_id=dedup_id,
        delay=delay,
        on_duplicate=on_duplicate,
    )
