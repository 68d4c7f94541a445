"""Replay verification: would the current code make the decisions its journals recorded?

A pre-deploy gate: every journal (finished or not) is replayed against the workflow's
current code, in memory, writing and running nothing, and each divergence is reported with
its position and the call site, as NonDeterminismError would report it in production.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._definitions import Workflow
from .._engine._records import read_journal
from .._engine._workflow_run import WorkflowRun
from .._errors import DurableError, NonDeterminismError
from .._storage._directory import SUFFIX, JournalDirectory
from .._storage._frames import StoredRecord


@dataclass(frozen=True)
class ReplayResult:
    """The verdict on one journal.

    Attributes:
        workflow_id: the journal's workflow id.
        workflow_name: the workflow its start record names.
        path: the journal file.
        error: the NonDeterminismError the current code would hit, if any; or another
            DurableError (an unreadable journal, one of another workflow).
        skipped: why it was not replayed (a workflow not given), if it was not.
    """

    workflow_id: str
    workflow_name: str
    path: Path
    error: DurableError | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        """Replayed without a divergence (a skipped journal is not ok, nor failed)."""
        return self.error is None and self.skipped is None

    @property
    def diverged(self) -> bool:
        return isinstance(self.error, NonDeterminismError)

    def __str__(self) -> str:
        if self.skipped is not None:
            return f"{self.workflow_id}: skipped ({self.skipped})"
        if self.error is not None:
            return f"{self.workflow_id}: {self.error}"
        return f"{self.workflow_id}: ok"


class _ReadOnly:
    """A journal replay reads and never writes (a write would be a bug: say so)."""

    def __init__(self, records: list[StoredRecord]) -> None:
        self.records = records
        self.closed = False

    def write(self, payload: bytes) -> None:
        raise AssertionError("replay verification must not write to a journal")

    async def append(self, payload: bytes) -> None:
        self.write(payload)

    async def flush(self) -> None:
        pass

    async def note(
        self, *, finished: bool = False, wake_at: float | None = None, inbox_next: int | None = None
    ) -> None:
        pass

    async def suspend(self) -> None:
        """Nothing to keep: a check never unloads."""

    async def resume(self) -> None:
        """Nothing to read again."""

    def check_held(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


class _NoChildren:
    """Children of a replayed workflow: their recorded outcomes replay; nothing starts."""

    def begin(
        self,
        target: Any,
        workflow_id: str,
        arguments: list[Any],
        parent: str,
        trace: dict[str, str] | None = None,
    ) -> asyncio.Future[Any]:
        raise AssertionError("replay verification must not start a child workflow")

    async def outcome(self, started: asyncio.Future[Any]) -> Any:
        raise AssertionError("replay verification must not start a child workflow")

    def cancel(self, workflow_id: str, reason: str, parent: str) -> None:
        pass

    async def end_with_parent(self, parent: str, children: list[str], reason: str) -> None:
        raise AssertionError("replay verification must not end a workflow")


def check_records(
    workflow: Workflow[..., Any], workflow_id: str, path: Path, records: list[StoredRecord]
) -> ReplayResult:
    """Replay `records` (a journal's) against `workflow`'s code."""
    run = None
    try:
        run = WorkflowRun(
            spec=workflow.spec,
            workflow_id=workflow_id,
            journal=_ReadOnly(records),
            arguments=None,
            children=_NoChildren(),
            location=str(path),
        )
        run.check_replay()
    except DurableError as error:
        return ReplayResult(workflow_id, workflow.name, path, error=error)
    return ReplayResult(workflow_id, workflow.name, path)


async def replay(
    workflow: Workflow[..., Any], journal_path: str | os.PathLike[str]
) -> ReplayResult:
    """Replay one journal file against the current code of `workflow`; the verdict.

    Nothing is written; the journal may belong to a running workflow (no lock is taken).
    """
    path = Path(journal_path)
    workflow_id = path.name.removesuffix(SUFFIX)
    async with JournalDirectory(path.parent) as directory:
        records = await directory.read(workflow_id)
    return check_records(workflow, workflow_id, path, records)


async def replay_directory(
    directory: str | os.PathLike[str], workflows: Iterable[Workflow[..., Any]]
) -> list[ReplayResult]:
    """Replay every journal of `directory` against the current code; one verdict each.

    Journals of workflows not in `workflows` are reported as skipped.
    """
    known = {workflow.name: workflow for workflow in workflows}
    results = []
    async with JournalDirectory(directory) as store:
        for workflow_id in await store.list():
            path = store.path_of(workflow_id)
            try:
                records = await store.read(workflow_id)
            except DurableError as error:
                results.append(ReplayResult(workflow_id, "?", path, error=error))
                continue
            if not records:
                results.append(ReplayResult(workflow_id, "?", path, skipped="empty journal"))
                continue
            try:  # (the schema validates the start record, as every reader's)
                start = read_journal(records[:1], path=path)[0]
            except DurableError as error:
                results.append(ReplayResult(workflow_id, "?", path, error=error))
                continue
            name = str(start["wf"])
            workflow = known.get(name)
            if workflow is None:
                skipped = f"workflow {name!r} was not given"
                results.append(ReplayResult(workflow_id, name, path, skipped=skipped))
                continue
            results.append(check_records(workflow, workflow_id, path, records))
    return results
