"""Runtime.serve() and Runtime.submit(): many processes sharing one store's workflows.

A serving runtime asks its store for journals that want a runner (unfinished, not held,
due), claims them, and runs them; then waits for news (a message, a due timer, a journal
released by a runtime that stopped or died) or its poll interval. On PostgreSQL the claims
are `FOR UPDATE SKIP LOCKED` and the news is LISTEN/NOTIFY, so N processes share the work
and a workflow whose process died is taken over once its lease expires. A Runtime mixin:
it knows the runtime's store, registry and running workflows, nothing of the CLI.
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
from ._storage._interface import JournalStore

Ts = TypeVarTuple("Ts")
logger = durable_logger()

# What makes a journal unreadable as a journal until a person acts (not a passing failure).
UNREADABLE = (JournalCorrupted, UnsupportedJournalFormat, UnsafeJournalFile)


class Serving:
    """serve() and submit() for Runtime (which provides what is declared here)."""

    _store: JournalStore
    _workflows: dict[str, Workflow[..., Any]]
    _running: dict[str, asyncio.Task[Any]]
    _clock: Clock

    def _register(self, workflow: Workflow[..., Any]) -> None:
        raise NotImplementedError

    def _check_id(self, workflow_id: str) -> None:
        raise NotImplementedError

    def _wake_queues(self) -> None:
        raise NotImplementedError

    async def _queued_orphans(self) -> list[str]:
        raise NotImplementedError

    async def _queued_orphan(self, workflow_id: str) -> tuple[Workflow[..., Any], list[Any]] | None:
        raise NotImplementedError

    async def _start(
        self,
        definition: Workflow[..., Any],
        workflow_id: str,
        arguments: list[Any] | None,
        *,
        follow: bool = True,
    ) -> Any:  # (a WorkflowHandle: _runtime is the layer above)
        raise NotImplementedError

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
        interval = to_seconds(poll_interval, what="poll_interval")
        self._wake_queues()  # (the queues it declares: their dispatchers start too)
        served: set[asyncio.Task[Any]] = set()
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

    async def _serve_one(self, name: str) -> asyncio.Task[Any] | None:
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
        task: asyncio.Task[Any] = handle._task
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


def _outcome_logger(served: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    """Forget a served workflow's task when it ends; log how it ended if unexpectedly."""

    def done(task: asyncio.Task[Any]) -> None:
        served.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None or isinstance(error, WorkflowFailed | WorkflowCancelled):
            return  # (its recorded outcome: nothing went wrong with the serving)
        if isinstance(error, WorkflowAlreadyRunning):
            logger.info("serve: %s went on in another process", task.get_name())
            return
        logger.warning("serve: %s stopped: %s", task.get_name(), error)

    return done
