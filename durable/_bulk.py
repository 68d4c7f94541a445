"""Bulk actions: one action (cancel, ...) on every workflow a filter matches, crash-safe.

A bulk action is itself a durable workflow, `durable.bulk`, whose id is the bulk's id: its
first step (an activity) selects the workflows, so the selection is journaled and a retry
acts on the same ones; each workflow's action is then a step of its own, journaled with
its outcome. A bulk interrupted by a crash half-way finishes when it runs again (the same
bulk id: `Runtime.bulk(..., bulk_id=)`, `durable bulk cancel --id`, or any runtime's
recover()), re-running only the step that was in flight; and that step cannot act twice,
because each action is idempotent under the bulk's id (a cancellation carries the request
id `bulk:<bulk id>`, which a workflow's inbox takes once).

Actions are pluggable: ACTIONS maps a name to a BulkAction (what it does to one workflow,
given the runtime, and which workflows it cannot apply to, for the dry run and the
selection). Resume, restart and fork plug in here as entries of ACTIONS.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from ._api import set_status, workflow_info
from ._definitions import Workflow, activity, workflow
from ._engine._describe import WorkflowDescription, WorkflowState
from ._errors import DurableError, UnknownBulkAction, WorkflowFinished
from ._query import PAGE_MAX, WorkflowFilter, WorkflowPage

BULK_WORKFLOW = "durable.bulk"
CONCURRENCY = 16  # actions in flight at once (steps started together, journaled in order)
SKIPPED_KEPT = 1_000  # workflows skipped at selection whose reason the result keeps


class BulkHost(Protocol):
    """What a bulk action needs of the runtime (the Runtime, which this layer cannot import)."""

    async def list_workflows(
        self, where: WorkflowFilter | None = None, *, limit: int = 100, cursor: str | None = None
    ) -> WorkflowPage: ...

    async def cancel(
        self, workflow_id: str, reason: str = "cancelled", *, request_id: str | None = None
    ) -> bool: ...


@dataclass(frozen=True)
class BulkRequest:
    """Who asked for a bulk action and why; handed to the action for each workflow."""

    bulk_id: str
    action: str
    by: str
    reason: str

    @property
    def request_id(self) -> str:
        """The id that makes the action idempotent for this bulk (an inbox takes it once)."""
        return f"bulk:{self.bulk_id}"

    @property
    def message(self) -> str:
        """The reason as journaled on each workflow: what, who, and which bulk."""
        return f"{self.reason} (bulk {self.action} {self.bulk_id}, by {self.by})"


@dataclass(frozen=True)
class BulkAction:
    """One bulk action: what it does to one workflow, and which it cannot apply to.

    Attributes:
        name: how it is asked for ("cancel").
        act: does it to one workflow, idempotently under `request.request_id` (run again
            after a crash, it must not act twice); returns the outcome in a word or two
            ("cancelled", "skipped: already completed"). An exception it raises becomes
            the outcome "error: ..." (the bulk goes on with the others).
        refuses: why it cannot apply to a workflow as described (None: it can). Those it
            refuses are skipped at selection, and listed by a dry run.
        verb: the dry run's "would <verb>".
    """

    name: str
    act: Callable[[BulkHost, str, BulkRequest], Awaitable[str]]
    refuses: Callable[[WorkflowDescription], str | None]
    verb: str


async def _cancel(runtime: BulkHost, workflow_id: str, request: BulkRequest) -> str:
    try:
        await runtime.cancel(workflow_id, request.message, request_id=request.request_id)
    except WorkflowFinished as finished:
        return f"skipped: {finished.outcome}"  # (it ended between selection and now)
    return "cancelled"  # (or it was, by this bulk, before a crash: the inbox took it once)


def _refuses_cancel(described: WorkflowDescription) -> str | None:
    if described.ended is not None:
        return f"already {described.state}"
    if described.state is WorkflowState.QUEUED:
        return "queued: not started yet, so it has no journal to cancel"
    return None


CANCEL = BulkAction(name="cancel", act=_cancel, refuses=_refuses_cancel, verb="cancel")
# The actions by name. Resume, restart and fork (Runtime methods) plug in here.
ACTIONS: Mapping[str, BulkAction] = MappingProxyType({"cancel": CANCEL})


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did (or, dry_run, would do).

    Attributes:
        bulk_id: the bulk's id (its workflow's: `durable show <bulk_id>`).
        action: the action's name.
        dry_run: nothing was done: `outcomes` says "would <verb>" for each.
        outcomes: each workflow acted on -> its outcome ("cancelled", "error: ...").
        skipped: workflows the filter matched that the action cannot apply to -> why (the
            first 1,000); `skipped_total` counts them all.
        resumed: this call finished a bulk that had been started before (a retry).
    """

    bulk_id: str
    action: str
    dry_run: bool
    outcomes: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    skipped_total: int = 0
    resumed: bool = False

    @property
    def matched(self) -> int:
        """How many workflows the filter matched."""
        return len(self.outcomes) + self.skipped_total

    @property
    def errors(self) -> dict[str, str]:
        """The workflows whose action failed -> why."""
        return {key: value for key, value in self.outcomes.items() if value.startswith("error")}


def new_bulk_id(action: str) -> str:
    """A fresh bulk id: bulk-<action>-<UTC time>-<random>."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"bulk-{action}-{stamp}-{secrets.token_hex(3)}"


def action_of(actions: Mapping[str, BulkAction], name: str) -> BulkAction:
    """The action called `name` (UnknownBulkAction if none is)."""
    if not isinstance(name, str) or name not in actions:
        raise UnknownBulkAction(action=str(name), known=sorted(actions))
    return actions[name]


async def select(
    runtime: BulkHost, where: WorkflowFilter, action: BulkAction, exclude: str | None
) -> tuple[list[str], dict[str, str], int]:
    """The workflows to act on (in query order), and those skipped.

    Skipped: the first 1,000 (id -> why), and how many in all.
    """
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    skipped_total = 0
    cursor: str | None = None
    while True:
        page = await runtime.list_workflows(where, limit=PAGE_MAX, cursor=cursor)
        for described in page.workflows:
            if described.workflow_id == exclude:
                continue  # (a bulk never acts on itself)
            why = action.refuses(described)
            if why is None:
                chosen.append(described.workflow_id)
                continue
            skipped_total += 1
            if len(skipped) < SKIPPED_KEPT:
                skipped[described.workflow_id] = why
        if page.next_cursor is None:
            return chosen, skipped, skipped_total
        cursor = page.next_cursor


async def dry_run(
    runtime: BulkHost, action: BulkAction, where: WorkflowFilter, bulk_id: str
) -> BulkResult:
    """What the bulk would do, acting on nothing."""
    chosen, skipped, skipped_total = await select(runtime, where, action, None)
    return BulkResult(
        bulk_id=bulk_id,
        action=action.name,
        dry_run=True,
        outcomes=dict.fromkeys(chosen, f"would {action.verb}"),
        skipped=skipped,
        skipped_total=skipped_total,
    )


def result_of(bulk_id: str, action: str, recorded: Any, *, resumed: bool) -> BulkResult:
    """The BulkResult a bulk workflow returned (a plain dict in its journal)."""
    return BulkResult(
        bulk_id=bulk_id,
        action=action,
        dry_run=False,
        outcomes=dict(recorded["outcomes"]),
        skipped=dict(recorded["skipped"]),
        skipped_total=int(recorded["skipped_total"]),
        resumed=resumed,
    )


def bulk_workflow(
    runtime: BulkHost, actions: Mapping[str, BulkAction]
) -> Workflow[[str, dict[str, Any], str, str], dict[str, Any]]:
    """The `durable.bulk` workflow of one runtime (its steps call that runtime's actions).

    Its arguments are journaled: the action's name, the filter (WorkflowFilter.to_plain:
    times already resolved), who asked and why. `actions` is looked up when a step runs,
    so an action added to it later (Runtime.bulk(actions=)) is found by a resumed bulk.
    """

    @activity(name="durable.bulk.select")
    async def select_step(name: str, plain: dict[str, Any], bulk_id: str) -> dict[str, Any]:
        chosen, skipped, total = await select(
            runtime, WorkflowFilter.from_plain(plain), action_of(actions, name), bulk_id
        )
        return {"chosen": chosen, "skipped": skipped, "skipped_total": total}

    @activity(name="durable.bulk.act")
    async def act_step(name: str, workflow_id: str, bulk_id: str, by: str, reason: str) -> str:
        request = BulkRequest(bulk_id=bulk_id, action=name, by=by, reason=reason)
        try:
            return await action_of(actions, name).act(runtime, workflow_id, request)
        except Exception as error:
            kind = "" if isinstance(error, DurableError) else f"{type(error).__name__}: "
            return f"error: {kind}{error}"

    @workflow(name=BULK_WORKFLOW)
    async def bulk(name: str, plain: dict[str, Any], by: str, reason: str) -> dict[str, Any]:
        bulk_id = workflow_info().workflow_id
        selected = await select_step(name, plain, bulk_id)
        chosen: list[str] = selected["chosen"]
        outcomes: dict[str, str] = {}
        for first in range(0, len(chosen), CONCURRENCY):
            batch = chosen[first : first + CONCURRENCY]
            done = await asyncio.gather(
                *(act_step(name, workflow_id, bulk_id, by, reason) for workflow_id in batch)
            )
            outcomes.update(zip(batch, done, strict=True))
            set_status({"action": name, "done": len(outcomes), "of": len(chosen)})
        return {
            "outcomes": outcomes,
            "skipped": selected["skipped"],
            "skipped_total": selected["skipped_total"],
        }

    return bulk
