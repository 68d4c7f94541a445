"""Runtime: runs workflows over a journal directory (the default one: `_default_runtime`).

A Runtime owns its JournalDirectory (files, locks, the shared sync thread) and the tasks of
the workflows it runs on the host event loop; its jobs are parts it composes (the tasks,
recovery, serving, operations, queries), and its public methods delegate to them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, TypeVarTuple, Unpack, overload

from ._bulk import BulkAction, BulkResult, bulk_workflow
from ._deadline import Deadlines
from ._definitions import OMITTED, Workflow, _Omitted, execution_timeout_seconds
from ._durations import Duration, to_seconds
from ._encoding import encode
from ._engine._describe import WorkflowDescription
from ._engine._log_fields import durable_logger
from ._engine._replay import digest_of
from ._engine._stall import StallWatch
from ._engine._workflow_run import WorkflowRun
from ._errors import (
    InvalidJournalName,
    InvalidWorkflowId,
    WorkflowDefinitionError,
    WorkflowNotFound,
)
from ._handles import WorkflowHandle, outcome_of
from ._mail import Mailroom
from ._operations._operating import Operations, RunHandle
from ._query import WorkflowFilter, WorkflowPage
from ._querying import Queries
from ._queue_service import OnDuplicate
from ._queues import DEFAULT_PRIORITY, Queue, check_enqueue, delay_seconds
from ._reading import describe_workflow
from ._recovery import Recovery
from ._seams import PRODUCTION, RuntimeSeams
from ._serving import Serving
from ._sleepers import IdRun, Sleepers
from ._storage._directory import JournalDirectory
from ._storage._group_commit import SyncMode
from ._storage._interface import JournalStore, check_inbox_bounds
from ._streams import Stream, StreamItem, StreamMarks, StreamNews, read_stream
from ._telemetry import OpenTelemetry, observer_for
from ._workflow_tasks import WorkflowTasks

logger = durable_logger()

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_DIRECTORY = ".durable"


def default_directory() -> Path:
    """$DURABLE_DIR, else ./.durable."""
    return Path(os.environ.get("DURABLE_DIR") or DEFAULT_DIRECTORY)


def _workflow_of(candidate: object) -> Workflow[..., Any]:
    if isinstance(candidate, Workflow):
        return candidate
    raise WorkflowDefinitionError(
        f"{candidate!r} is not a durable workflow: decorate the async function with "
        "@durable.workflow before running it"
    )


class Runtime:
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
        self._running: dict[str, IdRun] = {}  # each running workflow's, loaded or not
        self._runs: dict[str, WorkflowRun] = {}  # the loaded run of each running workflow
        self._clock = _seams.clock
        follow_interval = to_seconds(event_poll_interval, what="event_poll_interval")
        sleepers = Sleepers(self._clock)  # (the unloaded ones, as rows)
        self._mail = Mailroom(
            self._store, self._runs, self._running, follow_interval, self._clock, sleepers=sleepers
        )
        self._deadlines = Deadlines(self._mail, self._clock)
        self._stream_news = StreamNews()  # wakes this process's stream readers
        self._stream_marks = StreamMarks()  # where they have been (a reconnect reads on)
        self._tasks = WorkflowTasks(
            self._store,
            self.directory,
            self._workflows,
            seams=_seams,
            mail=self._mail,
            deadlines=self._deadlines,
            running=self._running,
            runs=self._runs,
            sleepers=sleepers,
            queues=queues,
            telemetry=self._telemetry,
            stall_watch=self._stall_watch,
            suspend_after=self._suspend_after,
            follow_interval=follow_interval,
            stream_news=self._stream_news,
            register=self._register,
            handle_of=self._handle_of,
        )
        self._children = self._tasks._children  # (its parts the testing kit reaches)
        self._queues = self._tasks._queues
        self._recovery = Recovery(
            self._store,
            self._workflows,
            self._running,
            self._queues,
            start=self._start,
            park=self._tasks.park_recovered,
        )
        if self._telemetry is not None and self._queues.declared:
            where = str(self.directory) if self.directory is not None else "postgresql"
            self._telemetry.watch_queues(self._queues.waiting, where)
        # Its parts, each given what it needs of the runtime (the public methods delegate):
        self._serving = Serving(
            self._store,
            self._workflows,
            self._running,
            self._clock,
            register=self._register,
            check_id=self._check_id,
            wake_queues=self._wake_queues,
            queued_orphans=self._queued_orphans,
            queued_orphan=self._queued_orphan,
            start=self._start,
        )
        self._operations = Operations(
            self._store,
            self._workflows,
            self._running,
            self._clock,
            check_id=self._check_id,
            start=self._start,
            handle_of=self._handle_of,
        )
        self._queries = Queries(
            self,
            self._store,
            self._workflows,
            self.directory,
            check_id=self._check_id,
            start_record_of=self._start_record_of,
            start=self.start,
            handle=self.handle,
        )
        for workflow in workflows:
            self._register(_workflow_of(workflow))
        # (any runtime finishes a bulk: recover() and serve() find its workflow here)
        self._register(bulk_workflow(self, self._queries.bulk_actions))

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
        handle: WorkflowHandle[R] = await self._tasks._start(  # (as _start: one frame less)
            definition,
            workflow_id,
            arguments,
            given=None if attach else encoded,
            execution_timeout=timeout,
        )
        return handle

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

    @property
    def _closing(self) -> bool:
        """close() is under way (its handles then raise WorkflowStopped)."""
        return self._tasks.closing

    def _check_id(self, workflow_id: str) -> None:
        self._tasks._check_id(workflow_id)

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
    ) -> WorkflowHandle[Any]:
        handle: WorkflowHandle[Any] = await self._tasks._start(
            definition,
            workflow_id,
            arguments,
            parent,
            given=given,
            follow=follow,
            execution_timeout=execution_timeout,
        )
        return handle

    async def _start_record_of(self, workflow_id: str) -> dict[str, Any] | None:
        return await self._tasks._start_record_of(workflow_id)

    async def _follow(self, workflow_id: str) -> asyncio.Future[Any]:
        return await self._tasks._follow(workflow_id)

    def _handle_of(self, workflow_id: str, task: asyncio.Future[Any] | None) -> WorkflowHandle[Any]:
        """A handle of this runtime's type (durable.testing's skips virtual time)."""
        if self._seams.handle is None:
            return WorkflowHandle(workflow_id, task, self)
        handle = self._seams.handle(workflow_id, task)
        assert isinstance(handle, WorkflowHandle)
        return handle

    def _wake_queues(self) -> None:
        self._queues.wake()

    async def _queued_orphans(self) -> list[str]:
        return await self._queues.orphans()

    async def _queued_orphan(self, workflow_id: str) -> tuple[Workflow[..., Any], list[Any]] | None:
        return await self._queues.orphaned(workflow_id)

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
        return await outcome_of(handle.id, waiting, task)

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
        return await self._recovery.recover()

    async def submit(
        self,
        workflow: Callable[[Unpack[Ts]], Awaitable[Any]],
        /,
        *args: *Ts,
        id: str | None = None,
        execution_timeout: Duration | _Omitted | None = OMITTED,
    ) -> str:
        """Journal a new workflow without running it here: a serving runtime will.

        The start record is committed before this returns; the workflow id is derived as
        run() derives it when `id` is None. Submitting an id that exists changes nothing.
        `execution_timeout` is as start()'s: its deadline counts from now, run or not.

        Returns:
            The workflow id.
        """
        return await self._serving.submit(
            workflow, *args, id=id, execution_timeout=execution_timeout
        )

    async def serve(self, *, poll_interval: Duration = "1 s", batch: int = 100) -> None:
        """Run the store's workflows that want a runner, as they come, until cancelled.

        Any number of processes may serve one PostgresStore: each workflow runs in one at a
        time, workflows submitted or sent a message are picked up at once (LISTEN/NOTIFY),
        due timers wake on time, and the workflows of a process that died are taken over
        when their leases expire. On a directory it resumes unfinished journals every
        `poll_interval`. The runtime must know the workflows (Runtime(workflows=[...])).

        Args:
            poll_interval: the longest wait between two looks for work (default 1 s).
            batch: how many workflows to claim at a time (default 100).
        """
        return await self._serving.serve(poll_interval=poll_interval, batch=batch)

    async def resume(
        self,
        workflow_id: str,
        *,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
        request_id: str | None = None,
    ) -> RunHandle:
        """Resume a failed or cancelled workflow with the current code; its handle.

        Its journal is kept: a "resume" record sets the failure (or the cancellation) aside,
        and the workflow continues from the step that failed (that activity runs again,
        from its first attempt, under its retry policy), every result recorded before it
        kept. Which step that is, is read from the journal: the activity or child step
        whose error the workflow's final failure carries (it let the error through, or
        raised it again). A workflow whose own code raised after it caught a step's
        failure keeps every recorded step (the caught failure included) and runs its
        code again from where it raised. A failed child whose failure ended the workflow
        is resumed first (its own resume record, naming this parent), so the step that
        runs it again finds it going on rather than its recorded failure. A cancelled
        workflow goes on from where the cancellation reached it. Events it took after that
        point are not delivered again. Idempotent: resuming a workflow whose resumption
        stands (it has not ended since) writes nothing and returns its handle; so does a
        resume with a `request_id` already journaled, even once the resumed run has ended
        (a retry that cannot know how far the first call got: give one).

        Args:
            workflow_id: the ended workflow.
            by: who asked (journaled; default: user@host and pid).
            reason: why (journaled).
            start: run it here now if this runtime has the workflow's code (default);
                False only writes (a runtime that recovers or serves the store runs it).
            request_id: this request's id (journaled): a retry with it writes nothing.

        Raises:
            WorkflowNotFound: no such workflow.
            ActionRefused: it completed, has not ended, or a runner holds it.
            NonDeterminismError: this runtime has the workflow's code and it would not
                replay the records kept (the step and the call site); nothing was written.
            TypeError: `by`, `reason` or `request_id` is not text.
        """
        return await self._operations.resume(
            workflow_id, by=by, reason=reason, start=start, request_id=request_id
        )

    async def restart(
        self,
        workflow_id: str,
        *,
        new_id: str | None = None,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
    ) -> RunHandle:
        """Run an ended workflow again as a new run, with the same arguments; its handle.

        The new run's start record names its source, and the source's journal gets a link
        to it. Idempotent: a restart to a `new_id` that is already this restart returns
        it (finishing the link if a crash cut it short).

        Args:
            workflow_id: the ended workflow (completed, failed or cancelled).
            new_id: the new run's id (default: "<id>-restart").
            by: who asked (journaled; default: user@host and pid).
            reason: why (journaled).
            start: run it here now if this runtime has the workflow's code (default);
                False only writes (a runtime that recovers or serves the store runs it).

        Raises:
            WorkflowNotFound: no such workflow.
            ActionRefused: it has not ended, or a runner holds it.
            ActionRefused: also when `new_id` names another run.
        """
        return await self._operations.restart(
            workflow_id, new_id=new_id, by=by, reason=reason, start=start
        )

    async def fork(
        self,
        workflow_id: str,
        *,
        at_step: int | None = None,
        from_failure: bool = False,
        override: Mapping[int, Any] | None = None,
        new_id: str | None = None,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
    ) -> RunHandle:
        """A new run whose journal starts with the source's records up to a step; its handle.

        The fork replays the source's recorded outcomes of the steps before `at_step` (or
        before the step that failed) and runs live from there with the current code. With
        this runtime's code for the workflow, the copied records are replayed first (in
        memory), and a fork that would not replay is refused naming the step and the call
        site. Linked both ways, like restart(). Idempotent per `new_id`.

        Args:
            workflow_id: the ended source.
            at_step: the first step the fork runs live (0 to the source's step count).
            from_failure: instead, run live from the step whose failure ended the source
                (the same step resume() would run again: all steps kept when its own code
                raised) or where its cancellation reached it.
            override: {step: value}, one step before the live part (or the failed step):
                the fork records `value` as that activity's result instead (for debugging,
                "what if the payment had succeeded"). Needs this runtime to have the
                workflow's code, which checks the value against the activity's return
                annotation.
            new_id: the fork's id (default: "<id>-fork-<step>" or "<id>-fork-failure",
                plus "-override-<step>").
            by: who asked (journaled; default: user@host and pid).
            reason: why (journaled).
            start: run it here now if this runtime has the workflow's code (default);
                False only writes (a runtime that recovers or serves the store runs it).

        Raises:
            WorkflowNotFound: no such workflow.
            ActionRefused: it has not ended (or, from_failure, it completed), or a runner
                holds it.
            InvalidForkStep: `at_step` is past the end of the source's journal.
            InvalidOverride: the value does not encode, does not fit the annotation, or
                the step has no activity outcome before the live part.
            NonDeterminismError: the copied records would not replay with this code.
            RecordTooLarge: the override's record is past the store's limit.
            ActionRefused: also when `new_id` names another run.
            TypeError: `by` or `reason` is not text.
        """
        return await self._operations.fork(
            workflow_id,
            at_step=at_step,
            from_failure=from_failure,
            override=override,
            new_id=new_id,
            by=by,
            reason=reason,
            start=start,
        )

    async def list_workflows(
        self, where: WorkflowFilter | None = None, *, limit: int = 100, cursor: str | None = None
    ) -> WorkflowPage:
        """One page of the store's workflows that `where` matches, newest start first.

        Args:
            where: a WorkflowFilter (None: every workflow).
            limit: the page's size, 1..10,000 (default 100).
            cursor: the previous page's `next_cursor` (None: the first page).

        Returns:
            A WorkflowPage: its workflows (WorkflowDescription), `next_cursor` (None on the
            last page) and `total` (how many match). A filter that matches nothing gives an
            empty page, not an error.

        Raises:
            InvalidFilter: a bad limit or cursor (a bad filter field is refused when the
                WorkflowFilter is made).
        """
        return await self._queries.list_workflows(where, limit=limit, cursor=cursor)

    async def bulk(
        self,
        action: str,
        where: WorkflowFilter,
        *,
        by: str | None = None,
        reason: str = "bulk action",
        dry_run: bool = False,
        bulk_id: str | None = None,
        options: Mapping[str, Any] | None = None,
        actions: Mapping[str, BulkAction] | None = None,
    ) -> BulkResult:
        """Do `action` (cancel, resume, restart, fork) to every workflow `where` matches.

        The bulk runs as a durable workflow (`durable.bulk`, id `bulk_id`), so it is
        journaled with who asked (`by`) and why, and each workflow's action is journaled
        there with its outcome; each workflow journals the action itself with the same
        (`by`, `reason` and the bulk's id). Retried with the same `bulk_id` after a crash, it
        finishes what it had not done, on the workflows it had selected, and acts on none
        twice; so does any runtime's recover(). Safe while the workflows run in other
        processes: a cancellation goes to the workflow's inbox, as Runtime.cancel's does;
        resume, restart and fork skip a workflow that has not ended or that a runner holds.

        Resume, restart and fork only write (Runtime.resume(start=False) and so on): the
        runs they leave (`BulkResult.runs`) are run by a runtime with their code, here or
        in a process serving the store (recover(), serve(), or a handle's result()). A
        restart's or fork's new run is named `<source id>@<bulk id>`, so a retried step
        finds the run it made.

        Args:
            action: the action's name: "cancel", "resume", "restart", "fork" (or one of
                `actions`).
            where: which workflows (WorkflowFilter() is every workflow: say so on purpose).
            by: who or what asks (default: user@host (pid)); journaled.
            reason: why; journaled with each workflow's action.
            dry_run: act on nothing: the result says what would be done ("would cancel").
            bulk_id: the bulk's id (default: a new one, bulk-<action>-<time>-<random>).
                Given again, it finishes (or returns) that bulk, whatever `where` and
                `options` say now.
            options: the action's options, journaled with the bulk: fork takes
                {"from_failure": True} (its default: each from the step that failed) or
                {"at_step": N}; the others take none.
            actions: more actions by name, for this runtime (kept, so that a bulk resumed
                by recover() here finds them).

        Returns:
            A BulkResult: each workflow acted on and its outcome, those skipped and why (a
            finished one cannot be cancelled, a running one not resumed). A filter that
            matches nothing acts on nothing.

        Raises:
            UnknownBulkAction: no action has that name; nothing was started.
            InvalidBulkOptions: options the action does not take, or `by` or `reason` that
                is not text; nothing was started.
            InvalidWorkflowId: `bulk_id` is not a valid workflow id.
            WorkflowIdInUse: `bulk_id` names a workflow that is not a bulk of this action.
        """
        return await self._queries.bulk(
            action,
            where,
            by=by,
            reason=reason,
            dry_run=dry_run,
            bulk_id=bulk_id,
            options=options,
            actions=actions,
        )

    async def _holders(self, workflow_ids: list[str]) -> dict[str, str] | None:
        """Who holds each journal now (for bulk's selection: BulkHost)."""
        return await self._queries.holders(workflow_ids)

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
        await self._tasks.stop(self._stop_grace)
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
