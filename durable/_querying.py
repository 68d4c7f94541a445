"""Runtime.list_workflows and Runtime.bulk: queries and bulk actions, a part a Runtime holds.

A query reads the runtime's store through a Catalog kept for the runtime's life (its
descriptions kept while journals are unchanged); a bulk action runs as the `durable.bulk`
workflow every runtime knows (`_bulk`), so any runtime of the store finishes one a crash
interrupted (recover(), serve(), or the same bulk id again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from ._bulk import ACTIONS as BULK_ACTIONS
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
from ._runtime_parts import default_by
from ._storage._interface import JournalStore
from ._storage._postgres import PostgresStore


class Queries:
    """A runtime's queries and bulk actions (Runtime.list_workflows and Runtime.bulk)."""

    def __init__(
        self,
        host: BulkHost,
        store: JournalStore,
        workflows: dict[str, Workflow[..., Any]],
        directory: Path | None,
        *,
        check_id: Callable[[str], None],
        start_record_of: Callable[[str], Awaitable[dict[str, Any] | None]],
        start: Callable[..., Awaitable[Any]],
        handle: Callable[[str], Awaitable[Any]],
    ) -> None:
        self._host = host  # (the Runtime: bulk's steps call its cancel, resume, fork...)
        self._store = store
        self._workflows = workflows  # (the runtime's registry, shared)
        self.directory = directory
        # The actions bulk() knows by name (more may be added; the runtime's `durable.bulk`
        # workflow reads the same dict, so a bulk recover() resumes finds them too).
        self.bulk_actions: dict[str, BulkAction] = dict(BULK_ACTIONS)
        self._query_catalog: Catalog | None = None  # (made at the first query, kept)
        self._check_id = check_id
        self._start_record_of = start_record_of
        self._start = start  # (Runtime.start)
        self._handle = handle  # (Runtime.handle)

    async def list_workflows(
        self, where: WorkflowFilter | None = None, *, limit: int = 100, cursor: str | None = None
    ) -> WorkflowPage:
        """See Runtime.list_workflows."""
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

    async def holders(self, workflow_ids: list[str]) -> dict[str, str] | None:
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
        """See Runtime.bulk."""
        for name, value in (("by", by), ("reason", reason)):  # (journaled: text, or unreadable)
            if value is not None and type(value) is not str:
                raise InvalidBulkOptions(
                    action=str(action), problem=f"{name} must be text, not {value!r}"
                )
        if actions:
            self.bulk_actions.update(actions)
        chosen = action_of(self.bulk_actions, action, options or {})
        bulk_id = bulk_id or new_bulk_id(action)
        self._check_id(bulk_id)
        if dry_run:
            return await plan_bulk(self._host, chosen, where, bulk_id)
        try:
            start = await self._start_record_of(bulk_id)
        except WorkflowNotFound:
            start = None
        if start is None:
            definition = self._workflows[BULK_WORKFLOW]
            plain = where.to_plain()
            who = by or default_by()
            extra = [dict(options)] if options else []  # (journaled: a retry does the same)
            handle = await self._start(definition, action, plain, who, reason, *extra, id=bulk_id)
        else:
            recorded_args = start.get("args") or [None]
            if start.get("wf") != BULK_WORKFLOW or recorded_args[0] != action:
                what = f"a bulk {recorded_args[0]}" if start.get("wf") == BULK_WORKFLOW else None
                raise WorkflowIdInUse(
                    workflow_id=bulk_id,
                    recorded=what or f"a workflow {start.get('wf')!r}",
                    given=f"a bulk {action}",
                )
            handle = await self._handle(bulk_id)
        recorded = await handle.result()
        return result_of(bulk_id, action, recorded, resumed=start is not None)
