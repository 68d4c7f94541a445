"""Runtime.list_workflows and Runtime.bulk (a Runtime mixin): queries and bulk actions.

A query reads the runtime's store through a Catalog kept for the runtime's life (its
descriptions kept while journals are unchanged); a bulk action runs as the `durable.bulk`
workflow every runtime knows (`_bulk`), so any runtime of the store finishes one a crash
interrupted (recover(), serve(), or the same bulk id again).
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from ._bulk import (
    BULK_WORKFLOW,
    BulkAction,
    BulkHost,
    BulkResult,
    action_of,
    new_bulk_id,
    result_of,
)
from ._bulk import dry_run as plan_bulk
from ._catalog import Catalog
from ._definitions import Workflow
from ._errors import InvalidBulkOptions, WorkflowIdInUse, WorkflowNotFound
from ._query import WorkflowFilter, WorkflowPage
from ._storage._interface import JournalStore
from ._storage._postgres import PostgresStore


def default_by() -> str:
    """Who asks, when the caller does not say: user@host (pid)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


class Querying:
    """list_workflows() and bulk() for Runtime (which provides what is declared here)."""

    _store: JournalStore
    _workflows: dict[str, Workflow[..., Any]]
    _bulk_actions: dict[str, BulkAction]
    directory: Path | None
    _query_catalog: Catalog | None = None  # (made at the first query, kept)

    def _check_id(self, workflow_id: str) -> None:
        raise NotImplementedError

    async def _start_record_of(self, workflow_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    async def handle(self, workflow_id: str) -> Any:
        raise NotImplementedError

    async def start(self, workflow: Any, /, *args: Any, id: str | None = None) -> Any:
        raise NotImplementedError

    async def cancel(
        self, workflow_id: str, reason: str = "cancelled", *, request_id: str | None = None
    ) -> bool:
        raise NotImplementedError

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
        return await self._catalog().query(where, limit=limit, cursor=cursor)

    def _catalog(self) -> Catalog:
        """The catalog queries read (made at the first, kept for the runtime's life)."""
        if self._query_catalog is None:
            if isinstance(self._store, PostgresStore):
                self._query_catalog = Catalog("", store=self._store)
            elif self.directory is not None:
                self._query_catalog = Catalog(self.directory)
            else:
                raise TypeError(
                    "list_workflows needs a journal directory or a PostgresStore; this "
                    f"runtime's store is a {type(self._store).__name__}"
                )
        return self._query_catalog

    async def _holders(self, workflow_ids: list[str]) -> dict[str, str] | None:
        """Who holds each journal now (id -> holder; None: it cannot be told), for bulk."""
        return await self._catalog().runners(workflow_ids)

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
        for name, value in (("by", by), ("reason", reason)):  # (journaled: text, or unreadable)
            if value is not None and type(value) is not str:
                raise InvalidBulkOptions(
                    action=str(action), problem=f"{name} must be text, not {value!r}"
                )
        if actions:
            self._bulk_actions.update(actions)
        chosen = action_of(self._bulk_actions, action, options or {})
        bulk_id = bulk_id or new_bulk_id(action)
        self._check_id(bulk_id)
        if dry_run:
            host = cast(BulkHost, self)  # (the Runtime: its Operating has resume, fork...)
            return await plan_bulk(host, chosen, where, bulk_id)
        try:
            start = await self._start_record_of(bulk_id)
        except WorkflowNotFound:
            start = None
        if start is None:
            definition = self._workflows[BULK_WORKFLOW]
            plain = where.to_plain()
            who = by or default_by()
            extra = [dict(options)] if options else []  # (journaled: a retry does the same)
            handle = await self.start(definition, action, plain, who, reason, *extra, id=bulk_id)
        else:
            recorded_args = start.get("args") or [None]
            if start.get("wf") != BULK_WORKFLOW or recorded_args[0] != action:
                what = f"a bulk {recorded_args[0]}" if start.get("wf") == BULK_WORKFLOW else None
                raise WorkflowIdInUse(
                    workflow_id=bulk_id,
                    recorded=what or f"a workflow {start.get('wf')!r}",
                    given=f"a bulk {action}",
                )
            handle = await self.handle(bulk_id)
        recorded = await handle.result()
        return result_of(bulk_id, action, recorded, resumed=start is not None)
