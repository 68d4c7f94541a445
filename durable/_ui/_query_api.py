"""The web UI's workflow queries and bulk actions: query parameters and bodies, validated once.

GET /api/workflows takes the filter as query parameters (status, workflow, workflow_id,
id_prefix, error_type, queue, parent, started_after, ..., cursor, limit); any of them makes
it a query (pages by cursor, newest start first) rather than the plain listing. POST
/api/bulk/{action} takes {"filter": {...the same fields...}, "reason", "dry_run",
"bulk_id", "options"} and runs Runtime.bulk, journaled as asked by the web UI (and the
caller's address). Every value goes through WorkflowFilter (InvalidFilter: 400, naming the
field); the options through the action (InvalidBulkOptions: 400; fork's {"at_step": N}).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams

from .._bulk import BulkResult
from .._catalog import Catalog, Runner
from .._errors import InvalidFilter
from .._query import FIELDS, WorkflowFilter
from .._runtime import Runtime
from ._answers import PAGE_LIMIT, REASON_LIMIT, Bounds, listing_row

# query parameter -> WorkflowFilter field (the rest are spelt alike)
_PARAMETERS = {"status": "state", "workflow": "workflow_name"}
_MANY = {"state", "workflow_name", "workflow_id"}  # (repeatable parameters)
BULK_SHOWN = 1_000  # outcomes an answer lists


def filter_of(params: QueryParams) -> WorkflowFilter | None:
    """The filter the query parameters ask for (None: none given but `status`, `search`)."""
    given: dict[str, Any] = {}
    for parameter in {*params.keys()}:
        name = _PARAMETERS.get(parameter, parameter)
        if name not in FIELDS:
            continue
        values = [value for value in params.getlist(parameter) if value != ""]
        if values:
            given[name] = values if name in _MANY else values[-1]
    if set(given) <= {"state"} and "cursor" not in params and "state" not in params:
        return None  # (the plain listing: status and search, by offset; `state` is checked)
    return WorkflowFilter(**given)


async def query_answer(
    catalog: Catalog, where: WorkflowFilter, limit: int, cursor: str | None
) -> dict[str, Any]:
    """One page of a query, as the list page shows it."""
    page = await catalog.query(where, limit=min(limit, PAGE_LIMIT), cursor=cursor)
    runners = await catalog.runners([d.workflow_id for d in page.workflows])
    bounds = Bounds()
    return {
        "directory": str(catalog.directory),
        "total": page.total,
        "next_cursor": page.next_cursor,
        "workflows": [
            listing_row(described, Runner.of(described.workflow_id, runners), bounds)
            for described in page.workflows
        ],
        "unreadable": {
            name: reason[:REASON_LIMIT]
            for name, reason in list(page.unreadable.items())[:PAGE_LIMIT]
        },
        "total_unreadable": len(page.unreadable),
    }


def bulk_request(
    body: dict[str, Any],
) -> tuple[WorkflowFilter, str, bool, str | None, dict[str, Any]]:
    """A bulk action's body: its filter, reason, dry_run, bulk_id and options.

    Raises:
        InvalidFilter: a bad filter, reason or bulk_id; options that are not an object.
    """
    plain = body.get("filter")
    if not isinstance(plain, dict) or not plain:
        raise InvalidFilter(
            field="filter",
            value=plain,
            expected="a JSON object of filter fields (a selection: {'workflow_id': [...]})",
        )
    where = WorkflowFilter.from_plain(plain)
    reason = body.get("reason") or "bulk action from the web UI"
    if not isinstance(reason, str) or len(reason) > REASON_LIMIT:
        raise InvalidFilter(field="reason", value=reason, expected="text, 1,000 characters at most")
    bulk_id = body.get("bulk_id")
    if bulk_id is not None and not isinstance(bulk_id, str):
        raise InvalidFilter(field="bulk_id", value=bulk_id, expected="text")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidFilter(field="options", value=options, expected="a JSON object")
    dry_run = body.get("dry_run")
    dry_run = False if dry_run is None else dry_run
    if dry_run is not True and dry_run is not False:  # ("yes" must not act for real)
        raise InvalidFilter(field="dry_run", value=dry_run, expected="true or false")
    return where, reason, dry_run, bulk_id, options


async def bulk_answer(
    runtime: Runtime, action: str, body: dict[str, Any], caller: str
) -> dict[str, Any]:
    """Run (or, dry_run, plan) a bulk action for the web UI; what it did."""
    where, reason, dry_run, bulk_id, options = bulk_request(body)
    done = await runtime.bulk(
        action,
        where,
        by=f"web UI ({caller})",
        reason=reason,
        dry_run=dry_run,
        bulk_id=bulk_id,
        options=options,
    )
    return _plain(done)


def _plain(done: BulkResult) -> dict[str, Any]:
    return {
        "bulk_id": done.bulk_id,
        "action": done.action,
        "dry_run": done.dry_run,
        "matched": done.matched,
        "outcomes": dict(list(done.outcomes.items())[:BULK_SHOWN]),
        "acted_on": len(done.outcomes),
        "errors": dict(list(done.errors.items())[:BULK_SHOWN]),
        "skipped": dict(list(done.skipped.items())[:BULK_SHOWN]),
        "skipped_total": done.skipped_total,
        "resumed": done.resumed,
        "runs": dict(list(done.runs.items())[:BULK_SHOWN]),
    }
