"""WorkflowTasks: one task per workflow id in a runtime, which takes the id's journal.

A Runtime's start, run, recover and serve all come here: the id's task opens and locks
its journal (or, while another runtime holds it, follows that run until it ends or lets
go), builds the WorkflowRun, runs it through its generations, unloads it while it sleeps
(keeping the lock) and loads it again at its wake-up. A second start of an id joins its
task. The tasks' collaborators (the mailroom, deadlines, children, queue gate) are given
to it or made here; the Runtime above holds it and knows nothing of how a run is taken.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._children import ChildRunner
from ._deadline import Deadlines
from ._definitions import OMITTED, Workflow, _Omitted
from ._encoding import decode, encode
from ._engine import _records as records
from ._engine._log_fields import current_workflow, durable_logger
from ._engine._outcomes import ContinuedAsNew, Finished, Suspended, final_outcome
from ._engine._replay import start_record
from ._engine._set_aside import ending
from ._engine._specs import WorkflowSpec
from ._engine._stall import StallWatch
from ._engine._workflow_run import WorkflowRun
from ._errors import (
    InvalidJournalName,
    InvalidWorkflowId,
    JournalFenced,
    JournalLocked,
    JournalNotFound,
    WorkflowAlreadyRunning,
    WorkflowIdInUse,
    WorkflowNotFound,
    WorkflowStopped,
    store_away,
)
from ._id_runs import IdRuns
from ._limits import limit_home
from ._mail import Mailroom
from ._outage import Outage
from ._queue_service import AnyGrant, make_queue_service
from ._queues import Queue
from ._runtime_parts import HandleOf
from ._seams import RuntimeSeams
from ._sleepers import UNLOADED, IdRun, Parked, Sleepers, Unloaded, parked_at
from ._storage._directory import JournalDirectory
from ._storage._interface import Journal, JournalStore
from ._streams import StreamNews

if TYPE_CHECKING:
    from ._otel import OpenTelemetryObserver

from ._journal_holding import let_go, note, went_away
from ._start_checks import SHORT, check_arguments, check_same_workflow

logger = durable_logger()


class WorkflowTasks:
    """A runtime's workflow tasks, one per id, and the runs they have loaded."""

    def __init__(
        self,
        store: JournalStore,
        directory: Path | None,
        workflows: dict[str, Workflow[..., Any]],
        *,
        seams: RuntimeSeams,
        mail: Mailroom,
        deadlines: Deadlines,
        running: dict[str, IdRun],
        runs: dict[str, WorkflowRun],
        sleepers: Sleepers,
        queues: Iterable[Queue],
        telemetry: OpenTelemetryObserver | None,
        stall_watch: StallWatch | None,
        suspend_after: float | None,
        follow_interval: float,
        stream_news: StreamNews,
        register: Callable[[Workflow[..., Any]], None],
        handle_of: HandleOf,
    ) -> None:
        self._store = store
        self.directory = directory
        self._workflows = workflows  # (the runtime's registry, shared)
        self._seams = seams
        self._clock = seams.clock
        self._mail = mail
        self._deadlines = deadlines
        self._running = running  # each id's run, loaded or not (shared with the mailroom)
        self._sleepers = sleepers  # the unloaded ones' rows (shared likewise)
        self._runs = runs  # the loaded run of each running workflow (shared likewise)
        self._telemetry = telemetry
        self._stall_watch = stall_watch
        self._suspend_after = suspend_after
        self._follow_interval = follow_interval
        self._stream_news = stream_news
        self._register = register
        self._handle_of = handle_of
        self._loop: asyncio.AbstractEventLoop | None = None  # the host loop it runs on
        self._requested: dict[str, _Request] = {}  # what started each id's task here
        self._watching: set[asyncio.Task[Any]] = set()  # (handles of workflows it cannot run)
        self._closing = False  # stop() is under way: runs loaded from now on start nothing
        self._children = ChildRunner(self)
        self._queues = make_queue_service(self, store, directory, queues, self._clock)
        self._ids = IdRuns(
            running,
            self._requested,
            sleepers,
            deadlines,
            reload=self._reload,
            release=self._queues.release,
            restarts_after=seams.restarts_after,
        )

    @property
    def closing(self) -> bool:
        """Whether stop() has begun: nothing starts from now on."""
        return self._closing

    async def stop(self, grace: float) -> None:
        """Stop every task: activities in flight get `grace` to finish, then all is cancelled.

        The workflows resume from their journals on the next run (here or elsewhere).
        """
        self._closing = True
        await self._queues.close()
        in_flight = [task for run in self._runs.values() for task in run.stop_starting()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace)
        tasks: list[asyncio.Future[Any]] = [*self._running.values(), *self._watching]
        for task in tasks:
            task.cancel()  # (an unloaded one's row is let go of: cancel_parked)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._ids.settle()  # (journals of starts cancelled before their task began)
        self._sleepers.close()
        await self._children.settle()

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
    ) -> Any:  # (a WorkflowHandle: _runtime is the layer above)
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
                check_same_workflow(run.spec.name, definition, workflow_id)
                if given is not None:
                    check_arguments(run, given, arguments)
            else:
                await self._check_recorded(
                    workflow_id, definition, given, arguments, self._requested.get(workflow_id)
                )
            return self._handle_of(workflow_id, task)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._queues.wake()
        if self._telemetry is not None:
            if queued is not None:  # (its wait in the queue: the run's parent)
                trace = self._telemetry.queue_wait(*queued, workflow_id, trace)
            elif trace is None:
                trace = self._telemetry.capture()  # (the caller's span: the workflow's parent)
        request = _Request(
            definition, workflow_id, arguments, parent, given, execution_timeout, trace
        )
        context = self._context_of(workflow_id, definition.name)
        # A new (or small) journal is taken here, before the task exists: no future for the
        # caller to wait on, no task switch. Else (held elsewhere, a large journal, the
        # directory's first open) the task takes it, and the caller waits until it has.
        journal = context.run(self._open_now, workflow_id)
        taken = None if journal is None else await self._run_now(journal, request)
        claimed: asyncio.Future[None] | None = None if taken else loop.create_future()
        outcome = IdRun(workflow_id, self._ids, loop, claimed=claimed, context=context)
        outcome.taken = taken  # (until its task begins: see IdRuns)
        self._running[workflow_id] = outcome
        self._requested[workflow_id] = request
        self._ids.carry(outcome, self._execute(request, outcome, follow=follow))
        self._mail.watch()
        if claimed is not None:
            try:
                await asyncio.shield(claimed)
            except asyncio.CancelledError:
                if not claimed.done():  # the caller gave up before it began: nothing runs
                    outcome.cancel()
                raise
            outcome.claimed = None  # (its starter went on: nothing to tell it any more)
        # Let it run to its first await before the caller starts the next: a loop that starts
        # 10,000 sleepers would otherwise hold all of them loaded before the first unloads.
        await asyncio.sleep(0)
        if outcome.taken is not None:  # its task was cancelled before it began (close())
            raise asyncio.CancelledError
        handle = self._handle_of(workflow_id, outcome)
        handle._started = True
        return handle

    async def park_recovered(self, definition: Workflow[..., Any], workflow_id: str) -> Any:
        """recover(): an unloaded sleeper's journal held and parked as a row, not replayed.

        Its journal is opened (locked) as any start's; if it ends with a park record (see
        parked_at) it is suspended again and parked until that record's time, with no run
        built. None (its journal let go of again): start it as usual, with a replay.
        Raises WorkflowAlreadyRunning for an id held anywhere, as recover()'s starts do.
        """
        self._check_id(workflow_id)
        if self._closing:
            raise WorkflowStopped(workflow_id=workflow_id)
        location = self._store.location(workflow_id)
        if workflow_id in self._running:
            raise WorkflowAlreadyRunning(workflow_id=workflow_id, path=location)
        if self._queues.declared or await self._queues.is_queued(workflow_id):
            return None  # (a queued one waits for its slot, in its task: start it)
        try:
            journal = await self._open(workflow_id)
        except JournalLocked:
            raise WorkflowAlreadyRunning(workflow_id=workflow_id, path=location) from None
        parked = parked_at(journal.records, path=location)
        if parked is None or workflow_id in self._running:
            await journal.close()
            return None
        wake_at, inbox_next, parent = parked
        loop = asyncio.get_running_loop()
        self._loop = loop
        context = self._context_of(workflow_id, definition.name)
        outcome = IdRun(workflow_id, self._ids, loop, claimed=None, context=context)
        self._running[workflow_id] = outcome
        self._requested[workflow_id] = _Request(definition, workflow_id, None, parent)
        self._sleepers.expect(workflow_id)  # (mail from now on wakes it)
        self._mail.watch()
        try:
            await note(journal, wake_at=wake_at, inbox_next=inbox_next)
            await journal.suspend()
        except BaseException:
            self._sleepers.forget(workflow_id)
            del self._running[workflow_id], self._requested[workflow_id]
            await journal.close()
            raise
        if self._telemetry is not None:
            self._telemetry.parked(workflow_id, definition.name)
        row = Parked(outcome, wake_at, journal=journal, grant=None, parent=parent)
        if not self._sleepers.park(row):
            self._ids.awaken(row)  # (mail came meanwhile)
        elif await self._has_mail(workflow_id, inbox_next):
            self._sleepers.notify(workflow_id)  # (mail it has not taken: a replay takes it)
        return self._handle_of(workflow_id, outcome)

    async def _has_mail(self, workflow_id: str, first: int) -> bool:
        """Whether the id's inbox holds a message at `first` or later (if in doubt, True)."""
        if not self._store.may_have_mail(workflow_id):
            return False
        try:
            return bool(await self._store.inbox(workflow_id, first))
        except Exception:  # (an inbox that does not read: the run's replay says why)
            return True

    def _reload(self, outcome: IdRun) -> Coroutine[Any, Any, Any]:
        """The coroutine of the task that loads a parked row again (IdRuns.awaken)."""
        return self._execute(self._requested[outcome.workflow_id], outcome, follow=True)

    def _context_of(self, workflow_id: str, name: str) -> contextvars.Context:
        """What the id's tasks run in: its activities' Limits, its log records' fields."""
        context = contextvars.copy_context()
        context.run(limit_home.set, self.directory or self._queues.limit_home)
        context.run(current_workflow.set, (workflow_id, name))
        return context

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
                    check_arguments(run, given, arguments)
            except BaseException:
                await journal.close()
                raise
            if claimed is not None and not claimed.done():
                claimed.set_result(None)
            return journal, run

    def _open_now(self, workflow_id: str) -> Journal | None:
        """The id's journal, opened on this thread if its store can (a new or small one).

        None: it cannot here (the store needs a thread, or another runner holds the id):
        the task takes it (_take), following whoever holds it.
        """
        store = self._store
        if not isinstance(store, JournalDirectory):
            return None
        try:
            opened = store.open_now(workflow_id)
        except JournalLocked:
            return None
        return None if opened is None else self._seams.journals.opened(opened)

    async def _run_now(self, journal: Journal, request: _Request) -> tuple[Journal, WorkflowRun]:
        """The run of a journal its starter opened (_open_now), checked as _take checks it."""
        try:
            run = self._run_of(
                request.definition,
                request.workflow_id,
                journal,
                request.arguments,
                request.parent,
                execution_timeout=request.execution_timeout,
                trace=request.trace,
            )
            if request.given is not None and journal.records:
                check_arguments(run, request.given, request.arguments)
        except BaseException:
            await journal.close()
            raise
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
        check_same_workflow(str(start.get("wf")), definition, workflow_id)
        if given is None or start.get("gen", 0) != 0 or "args" not in start:
            return
        recorded = start["args"]
        if encode(recorded, context="the recorded arguments") == given:
            return
        if decode(given, path=workflow_id, offset=0) == recorded:
            return
        raise WorkflowIdInUse(
            workflow_id=workflow_id, recorded=SHORT.repr(recorded), given=SHORT.repr(arguments)
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

    async def _follow(self, workflow_id: str) -> asyncio.Future[Any]:
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
            started: asyncio.Future[Any] | None = handle._task
            assert started is not None
            return started
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

    async def _execute(self, request: _Request, outcome: IdRun, *, follow: bool) -> Any:
        """The id's task while it is loaded: take its journal, run the workflow to its end.

        Through new generations. Until it has the journal it follows the runner that holds
        the id elsewhere, if one does; so does a runner that lost its lease (fenced) to the
        runtime that took the workflow over. A long sleep parks it as a row (UNLOADED: the
        task ends, the id's run goes on); the task that loads it again starts with the row.
        """
        workflow_id = request.workflow_id
        current: Journal | None = None
        grant: AnyGrant | None = None  # (a queued workflow's slots, held until it ends)
        try:
            current, grant, run = await self._begin(request, outcome, follow=follow)
            parent = run.parent
            while True:
                await self._load(workflow_id, run)
                sleep: Suspended | None = None
                away = False  # (its store is: take it again once it answers)
                try:
                    try:
                        result = await run.execute()
                        if isinstance(result, Finished):
                            await note(current, finished=True)
                            if grant is not None:
                                grant.finished = True
                            return result.unwrap()  # (WorkflowFailed, WorkflowCancelled)
                        if isinstance(result, ContinuedAsNew):
                            current, run = await self._next_run(request, current, run, result)
                            continue
                        sleep = result  # a long sleep: let go of all but the lock
                    finally:
                        self._runs.pop(workflow_id, None)
                except JournalFenced as fenced:
                    logger.info("workflow %s: %s", workflow_id, fenced)
                except BaseException as error:
                    away = went_away(workflow_id, error)  # (a database restart, say)
                    if not away and not self._seams.restarts_after(error):
                        raise
                    # (a simulated crash: resume at once, as a restarted process would)
                del run
                assert current is not None
                if sleep is not None:
                    after = await self._sleep(outcome, current, grant, request, parent, sleep)
                    if isinstance(after, Unloaded):
                        current = grant = None  # (the row holds them now)
                        return after
                    if after is not None:  # (mail came as it was being unloaded: go on)
                        run = after
                        continue
                await let_go(current, away=away)
                current = None
                current, run = await self._take(replace(request, parent=parent), None)
        finally:
            if current is not None:
                await current.close()
            if grant is not None:
                self._queues.release(grant)

    async def _begin(
        self, request: _Request, outcome: IdRun, *, follow: bool
    ) -> tuple[Journal, AnyGrant | None, WorkflowRun]:
        """Its journal, queue grant and run: taken (a start), or a parked row's, reloaded."""
        row, outcome.row = outcome.row, None  # (taken: its task closes its journal now)
        if row is None:
            taken, outcome.taken = outcome.taken, None  # (its starter's: see _start)
            if taken is not None:
                current, run = taken
            else:
                current, run = await self._take(request, outcome.claimed, follow=follow)
            try:
                return current, await self._queues.gate(request.workflow_id), run
            except BaseException:
                await current.close()
                raise
        journal: Journal | None = row.journal
        grant, parent = row.grant, row.parent
        try:
            assert journal is not None
            reloaded = await self._resume(journal, request, parent)
            if reloaded is not None:
                return journal, grant, reloaded
            await let_go(journal, away=False)
            journal = None
            journal, run = await self._take(replace(request, parent=parent), None)
            return journal, grant, run
        except BaseException:
            if journal is not None:
                await journal.close()
            if grant is not None:
                self._queues.release(grant)
            raise

    async def _load(self, workflow_id: str, run: WorkflowRun) -> None:
        """Make `run` the id's loaded run, its deadline armed from its journal (each load)."""
        await self._deadlines.arm(workflow_id, run)
        self._runs[workflow_id] = run

    async def _sleep(  # noqa: PLR0917 (what a row holds)
        self,
        outcome: IdRun,
        journal: Journal,
        grant: AnyGrant | None,
        request: _Request,
        parent: str | None,
        sleep: Suspended,
    ) -> WorkflowRun | Unloaded | None:
        """Park a sleeper as a row (UNLOADED: the row holds its journal and grant now).

        Else its run again (mail came as it was being unloaded), or None: take it again.
        """
        row = Parked(outcome, sleep.wake_at, journal=journal, grant=grant, parent=parent)
        unloaded = await self._ids.unload(row, sleep.inbox_next)
        if unloaded:
            return UNLOADED
        if unloaded is None:
            return await self._resume(journal, request, parent)
        return None

    async def _resume(
        self, journal: Journal, request: _Request, parent: str | None
    ) -> WorkflowRun | None:
        """A sleeper's run again, its journal read back; None: take the workflow again.

        None when the lease lapsed meanwhile (a paused process) and another runtime may
        have it, or a simulated crash struck (reopen and replay now).
        """
        if not await self._ids.resume(journal, request.workflow_id):
            return None
        definition, arguments = request.definition, request.arguments
        return self._run_of(definition, request.workflow_id, journal, arguments, parent)

    async def _next_run(
        self,
        request: _Request,
        journal: Journal | None,
        run: WorkflowRun,
        continued: ContinuedAsNew,
    ) -> tuple[Journal, WorkflowRun]:
        """Its next generation's journal and run (linked to the generation before it)."""
        assert journal is not None
        definition = request.definition
        next_start = self._next_generation(run, continued)
        journal = await self._seams.journals.rotate(self._store, journal, next_start)
        trace = run.trace_carrier
        return journal, self._run_of(definition, run.workflow_id, journal, None, previous_run=trace)

    def _next_generation(self, run: WorkflowRun, continued: ContinuedAsNew) -> bytes:
        # (the deadline and the starter's trace context span the chain; a stream's offsets
        # go on from where this generation's end)
        offsets = itertools.islice(run.stream_counts.items(), records.STREAM_OFFSETS_KEPT)
        return start_record(
            run.spec.name,
            run.workflow_id,
            continued.arguments,
            self._clock.time,
            generation=continued.generation + 1,
            inbox_next=continued.inbox_next,
            carry=continued.carried or None,
            parent=run.parent,
            deadline=run.deadline,
            trace=run.starter,
            stream_offsets=dict(offsets) if run.stream_counts else None,
        )

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


def _stopping(task: IdRun) -> bool:
    """Whether an id's task was stopped, or is being stopped, by a cancellation."""
    return task.cancelled() or (not task.done() and task.cancelling() > 0)


def _unknown(*args: Any) -> None:
    """The function of a workflow this runtime does not know (a handle only reads it)."""
