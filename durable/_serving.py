"""Runtime.serve() and Runtime.submit(): many processes sharing one store's workflows.

A serving runtime asks its store for journals that want a runner (unfinished, not held,
due), claims them, and runs them; then waits for news (a message, a due timer, a journal
released by a runtime that stopped or died) or its poll interval. On PostgreSQL the claims
are `FOR UPDATE SKIP LOCKED` and the news is LISTEN/NOTIFY, so N processes share the work
and a workflow whose process died is taken over once its lease expires. A part a Runtime
holds (Runtime.serve and Runtime.submit delegate to it): it is given the runtime's store,
registry and running workflows, and how to start a run, and knows nothing of the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVarTuple, Unpack

from ._definitions import OMITTED, Workflow, _Omitted, execution_timeout_seconds
from ._durations import Duration, to_seconds
from ._encoding import encode
from ._engine import _records as records
from ._engine._clock import Clock
from ._engine._log_fields import durable_logger
from ._engine._replay import digest_of, start_record
from ._errors import (
    DurableError,
    JournalCorrupted,
    JournalNotFound,
    UnsafeJournalFile,
    UnsupportedJournalFormat,
    WorkflowAlreadyRunning,
    WorkflowCancelled,
    WorkflowDefinitionError,
    WorkflowFailed,
    WorkflowStopped,
)
from ._outage import Outage
from ._runtime_parts import QueuedRequest, StartRun
from ._storage._interface import JournalStore

Ts = TypeVarTuple("Ts")
logger = durable_logger()

# What makes a journal unreadable as a journal until a person acts (not a passing failure).
UNREADABLE = (JournalCorrupted, UnsupportedJournalFormat, UnsafeJournalFile)


class Serving:
    """A runtime's serving: submit() journals work, serve() runs what wants a runner."""

    def __init__(
        self,
        store: JournalStore,
        workflows: dict[str, Workflow[..., Any]],
        running: dict[str, Any],
        clock: Clock,
        *,
        register: Callable[[Workflow[..., Any]], None],
        check_id: Callable[[str], None],
        wake_queues: Callable[[], None],
        queued_orphans: Callable[[], Awaitable[list[str]]],
        queued_orphan: Callable[[str], Awaitable[QueuedRequest | None]],
        start: StartRun,
    ) -> None:
        self._store = store
        self._workflows = workflows  # (the runtime's registry, shared)
        self._running = running  # (the runtime's running tasks by id, shared)
        self._clock = clock
        self._register = register
        self._check_id = check_id
        self._wake_queues = wake_queues
        self._queued_orphans = queued_orphans  # (admitted requests whose admitter died)
        self._queued_orphan = queued_orphan
        self._start = start

    async def submit(
        self,
        workflow: Callable[[Unpack[Ts]], Awaitable[Any]],
        /,
        *args: *Ts,
        id: str | None = None,
        execution_timeout: Duration | _Omitted | None = OMITTED,
    ) -> str:
        """See Runtime.submit."""
        definition = _workflow(workflow)
        timeout = (
            definition.spec.execution_timeout
            if isinstance(execution_timeout, _Omitted)
            else execution_timeout_seconds(execution_timeout)
        )
        self._register(definition)
        arguments: list[Any] = [*args]
        encoded = encode(arguments, context=f"the arguments of workflow {definition.name!r}")
        workflow_id = id if id is not None else f"{definition.name}-{digest_of(encoded)}"
        self._check_id(workflow_id)
        journal = await self._store.open(workflow_id)
        try:
            if not journal.records:
                await journal.append(
                    start_record(
                        definition.name,
                        workflow_id,
                        arguments,
                        self._clock.time,
                        execution_timeout=timeout,
                    )
                )
        finally:
            await journal.close()
        return workflow_id

    async def serve(self, *, poll_interval: Duration = "1 s", batch: int = 100) -> None:
        """See Runtime.serve."""
        interval = to_seconds(poll_interval, what="poll_interval")
        self._wake_queues()  # (the queues it declares: their dispatchers start too)
        served: set[asyncio.Future[Any]] = set()
        outage = Outage("serve", interval)
        while True:
            try:
                candidates = await self._store.candidates(batch)
            except Exception as error:  # (the store is away: a database restart, say)
                await outage.wait(error)
                continue
            outage.over()
            try:  # (admitted requests whose admitter died before their journal began)
                orphans = await self._queued_orphans()
            except Exception as error:
                await outage.wait(error)
                continue
            names = [name for name in candidates if name not in self._running]
            names += [name for name in orphans if name not in self._running and name not in names]
            # (at once: one journal slow to open must not hold up the others)
            for task in await asyncio.gather(*(self._serve_one(name) for name in names)):
                if task is not None:
                    served.add(task)
                    task.add_done_callback(_outcome_logger(served))
            try:
                await self._store.wait_for_work(interval)
            except Exception as error:
                await outage.wait(error)

    async def _serve_one(self, name: str) -> asyncio.Future[Any] | None:
        """Start the workflow of journal `name` here, if it can be; its task, else None.

        One bad journal never stops serve() nor the rest of its batch: one that cannot be
        read as a journal is set aside (skipped until repaired or run on purpose), and any
        other failure (a store that failed mid-claim, say) is logged and tried again at the
        next look.
        """
        try:
            found = await self._to_serve(name)
            if found is None:
                return None
            workflow, arguments = found
            handle = await self._start(workflow, name, arguments, follow=False)
        except (WorkflowAlreadyRunning, WorkflowStopped):
            return None  # (another process got it first; or the runtime is closing)
        except UNREADABLE as error:
            await self._set_aside(name, error)
            return None
        except Exception as error:  # (also a store that failed under it: a lost session)
            said = error if isinstance(error, DurableError) else f"{type(error).__name__}: {error}"
            logger.warning("serve: cannot start workflow %s now: %s", name, said)
            return None
        task: asyncio.Future[Any] = handle._task
        return task

    async def _to_serve(self, name: str) -> tuple[Workflow[..., Any], list[Any] | None] | None:
        """The workflow journal `name` runs, and the arguments of one not begun (or None)."""
        try:
            stored = await self._store.read(name)
        except JournalNotFound:
            stored = []  # (an orphaned queued request's: no journal yet)
        if not stored:
            # A queued request whose admitter died before its start record: started from
            # its request. Else its creator is at it (or died before its start() returned:
            # nobody was promised it).
            return await self._queued_orphan(name)
        start = records.read_journal(stored[:1], path=self._store.location(name))[0]
        workflow_name = str(start["wf"])
        workflow = self._workflows.get(workflow_name)
        if workflow is None:
            logger.warning(
                "serve: workflow %s is a %r, which this runtime does not know (known: "
                "%s); left to a runtime that does",
                name,
                workflow_name,
                ", ".join(sorted(self._workflows)) or "none",
            )
            return None
        return workflow, None

    async def _set_aside(self, name: str, error: DurableError) -> None:
        logger.error(
            "serve: workflow %s set aside: its journal cannot be read (%s). serve() skips it "
            "until it is repaired or replaced, or run on purpose (run, start, recover)",
            name,
            error,
        )
        try:
            await self._store.set_aside(name, str(error))
        except Exception:  # (the database is away: it is tried, and set aside, again)
            logger.debug("serve: could not set workflow %s aside", name, exc_info=True)


def _workflow(candidate: object) -> Workflow[..., Any]:
    if isinstance(candidate, Workflow):
        return candidate
    raise WorkflowDefinitionError(
        f"{candidate!r} is not a workflow: decorate it with @durable.workflow"
    )


def _outcome_logger(served: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    """Forget a served workflow's task when it ends; log how it ended if unexpectedly."""

    def done(task: asyncio.Future[Any]) -> None:
        served.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None or isinstance(error, WorkflowFailed | WorkflowCancelled):
            return  # (its recorded outcome: nothing went wrong with the serving)
        if isinstance(error, WorkflowAlreadyRunning):
            logger.info("serve: %s went on in another process", _name_of(task))
            return
        logger.warning("serve: %s stopped: %s", _name_of(task), error)

    return done


def _name_of(task: asyncio.Future[Any]) -> str:
    """A served workflow's run's name, "durable <id>" (an IdRun's, as its task's was)."""
    get_name = getattr(task, "get_name", None)
    return str(get_name()) if get_name is not None else repr(task)
