"""Bulk actions: one action (cancel, resume, ...) on every workflow a filter matches, crash-safe.

A bulk action is itself a durable workflow, `durable.bulk`, whose id is the bulk's id: its
first step (an activity) selects the workflows, so the selection is journaled and a retry
acts on the same ones; each workflow's action is then a step of its own, journaled with
its outcome. A bulk interrupted by a crash half-way finishes when it runs again (the same
bulk id: `Runtime.bulk(..., bulk_id=)`, `durable bulk cancel --id`, or any runtime's
recover()), re-running only the step that was in flight; and that step cannot act twice,
because each action is idempotent under the bulk's id: a cancellation carries the request
id `bulk:<bulk id>`, which a workflow's inbox takes once; a resume journals it, and a
retried resume with it writes nothing; a restart or fork makes its run under an id derived
from the source's and the bulk's (`derived_id`), which a retry finds instead of making a
second run.

Actions are pluggable: ACTIONS maps a name to a BulkAction (what it does to one workflow,
given the runtime, and which workflows it cannot apply to, for the dry run and the
selection; and, for an action with options such as fork's step, the action those options
make). The options are the bulk workflow's arguments, so a retried bulk does the same.
Resume, restart and fork only write (start=False): the runs they make are run by a runtime
with the workflows' code (recover(), serve(), a handle's result()), never under the bulk.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from ._api import set_status, workflow_info
from ._definitions import Workflow, activity, workflow
from ._engine._describe import WorkflowDescription, WorkflowState
from ._errors import (
    ActionRefused,
    DurableError,
    InvalidBulkOptions,
    InvalidForkStep,
    UnknownBulkAction,
    WorkflowFinished,
)
from ._query import PAGE_MAX, WorkflowFilter, WorkflowPage
from ._storage._directory import MAX_NAME_LENGTH

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

    async def resume(
        self,
        workflow_id: str,
        *,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
        request_id: str | None = None,
    ) -> Any: ...

    async def restart(
        self,
        workflow_id: str,
        *,
        new_id: str | None = None,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
    ) -> Any: ...

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
    ) -> Any: ...

    async def _holders(self, workflow_ids: list[str]) -> dict[str, str] | None:
        """Who holds each journal now (id -> holder; None: it cannot be told)."""
        ...


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
        configure: the action as `options` make it (fork's {"at_step": 3}), raising
            InvalidBulkOptions for options it does not take; None (the default): it takes
            none.
        refuses_held: also skip, at selection, a workflow whose journal a runner holds
            (default False; resume, restart and fork: they act on an unheld journal).
    """

    name: str
    act: Callable[[BulkHost, str, BulkRequest], Awaitable[str]]
    refuses: Callable[[WorkflowDescription], str | None]
    verb: str
    configure: Callable[[Mapping[str, Any]], BulkAction] | None = None
    refuses_held: bool = False


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


def derived_id(source_id: str, bulk_id: str) -> str:
    """The id of the run a bulk restart or fork makes of `source_id`: `<source>@<bulk id>`.

    The same for a retried step, which so finds the run it made before a crash. Too long
    for an id, the source's part is cut and a digest of both keeps it unique.
    """
    made = f"{source_id}@{bulk_id}"
    if len(made) <= MAX_NAME_LENGTH:
        return made
    digest = hashlib.blake2b(made.encode(), digest_size=8).hexdigest()
    kept = MAX_NAME_LENGTH - len(digest) - len(bulk_id) - 2
    if kept < 1:  # (a bulk id near the limit itself: the digest stands for both)
        return f"{source_id[:100]}-{digest}"
    return f"{source_id[:kept]}-{digest}@{bulk_id}"


def _not_ended(described: WorkflowDescription) -> str | None:
    """Why an action on an ended run cannot take this one (resume, restart, fork)."""
    if described.state is WorkflowState.QUEUED:
        return "queued: not started yet"
    if described.ended is None:
        return f"not ended: {described.state} (cancel it first, or wait for it to end)"
    return None


def _refuses_resume(described: WorkflowDescription) -> str | None:
    if described.state is WorkflowState.COMPLETED:
        return "completed: nothing to resume (restart or fork it)"
    return _not_ended(described)


async def _resume(runtime: BulkHost, workflow_id: str, request: BulkRequest) -> str:
    try:
        await runtime.resume(
            workflow_id,
            by=request.by,
            reason=request.message,
            start=False,
            request_id=request.request_id,
        )
    except ActionRefused as refused:  # (it changed since the selection, or a runner has it)
        return f"skipped: {refused.state}"
    return "resumed"  # (or it was, by this bulk, before a crash: its request id is journaled)


async def _restart(runtime: BulkHost, workflow_id: str, request: BulkRequest) -> str:
    try:
        made = await runtime.restart(
            workflow_id,
            new_id=derived_id(workflow_id, request.bulk_id),
            by=request.by,
            reason=request.message,
            start=False,
        )
    except ActionRefused as refused:
        return f"skipped: {refused.state}"
    return f"restarted as {made.id}"


def _fork_of(options: Mapping[str, Any]) -> BulkAction:
    """Fork from the failed step (the default, {"from_failure": True}) or {"at_step": N}."""
    unknown = sorted(set(options) - {"at_step", "from_failure"})
    if unknown:
        raise InvalidBulkOptions(
            action="fork", problem=f"no option {unknown[0]!r}: it takes at_step or from_failure"
        )
    at_step = options.get("at_step")
    from_failure = options.get("from_failure", at_step is None)
    if not isinstance(from_failure, bool):
        raise InvalidBulkOptions(action="fork", problem="from_failure must be true or false")
    if at_step is not None and (type(at_step) is not int or at_step < 0):
        raise InvalidBulkOptions(
            action="fork", problem=f"at_step must be a whole number >= 0, not {at_step!r}"
        )
    if (at_step is None) == (not from_failure):
        raise InvalidBulkOptions(
            action="fork", problem="give at_step or from_failure (one of them)"
        )

    async def fork(runtime: BulkHost, workflow_id: str, request: BulkRequest) -> str:
        try:
            made = await runtime.fork(
                workflow_id,
                at_step=at_step,
                from_failure=from_failure,
                new_id=derived_id(workflow_id, request.bulk_id),
                by=request.by,
                reason=request.message,
                start=False,
            )
        except ActionRefused as refused:
            return f"skipped: {refused.state}"
        except InvalidForkStep as short:
            return f"skipped: it records {short.steps} step(s), so no step {short.step}"
        return f"forked as {made.id}"

    def refuses(described: WorkflowDescription) -> str | None:
        if from_failure and described.state is WorkflowState.COMPLETED:
            return "completed: nothing failed to fork from (fork it at a step instead)"
        return _not_ended(described)

    verb = "fork from the failed step" if from_failure else f"fork at step {at_step}"
    return BulkAction(
        name="fork", act=fork, refuses=refuses, verb=verb, configure=_fork_of, refuses_held=True
    )


def _no_options(name: str, action: BulkAction) -> Callable[[Mapping[str, Any]], BulkAction]:
    def configure(options: Mapping[str, Any]) -> BulkAction:
        if options:
            raise InvalidBulkOptions(
                action=name, problem=f"it takes no options ({sorted(options)})"
            )
        return action

    return configure


RESUME = BulkAction(
    name="resume", act=_resume, refuses=_refuses_resume, verb="resume", refuses_held=True
)
RESTART = BulkAction(
    name="restart", act=_restart, refuses=_not_ended, verb="restart", refuses_held=True
)
FORK = replace(_fork_of({}), verb="fork")  # (as configured: "fork from the failed step"...)
# The actions by name (Runtime.bulk(actions=) adds more for one runtime).
ACTIONS: Mapping[str, BulkAction] = MappingProxyType(
    {"cancel": CANCEL, "resume": RESUME, "restart": RESTART, "fork": FORK}
)


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did (or, dry_run, would do).

    Attributes:
        bulk_id: the bulk's id (its workflow's: `durable show <bulk_id>`).
        action: the action's name.
        dry_run: nothing was done: `outcomes` says "would <verb>" for each.
        outcomes: each workflow acted on -> its outcome ("cancelled", "resumed",
            "restarted as <id>", "forked as <id>", "skipped: <why>" if it changed since
            the selection, "error: ...").
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

    @property
    def runs(self) -> dict[str, str]:
        """The runs a resume, restart or fork left to run: workflow id -> the run's id.

        A resumed workflow's own id; a restart's or fork's new run (outcome "restarted as
        <id>", "forked as <id>"). A runtime with their code runs them: recover(), serve(),
        or a handle's result().
        """
        made: dict[str, str] = {}
        for key, outcome in self.outcomes.items():
            if outcome == "resumed":
                made[key] = key
            elif outcome.startswith(("restarted as ", "forked as ")):
                made[key] = outcome.rsplit(" ", 1)[1]
        return made


def new_bulk_id(action: str) -> str:
    """A fresh bulk id: bulk-<action>-<UTC time>-<random>."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"bulk-{action}-{stamp}-{secrets.token_hex(3)}"


def action_of(
    actions: Mapping[str, BulkAction], name: str, options: Mapping[str, Any] | None = None
) -> BulkAction:
    """The action called `name`, as `options` make it.

    Raises:
        UnknownBulkAction: no action has that name.
        InvalidBulkOptions: options it does not take.
    """
    if not isinstance(name, str) or name not in actions:
        raise UnknownBulkAction(action=str(name), known=sorted(actions))
    action = actions[name]
    if options is None:
        return action
    if not isinstance(options, Mapping) or not all(isinstance(key, str) for key in options):
        raise InvalidBulkOptions(action=name, problem="options must map names to values")
    if action.configure is None:
        return _no_options(name, action)(options)
    return action.configure(options)


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
        refused = {
            described.workflow_id: action.refuses(described)
            for described in page.workflows
            if described.workflow_id != exclude  # (a bulk never acts on itself)
        }
        if action.refuses_held:
            free = [key for key, why in refused.items() if why is None]
            holders = (await runtime._holders(free) if free else None) or {}
            for key, holder in holders.items():
                refused[key] = f"held by a runner ({holder}): it has not let go of it"
        for workflow_id, why in refused.items():
            if why is None:
                chosen.append(workflow_id)
                continue
            skipped_total += 1
            if len(skipped) < SKIPPED_KEPT:
                skipped[workflow_id] = why
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
) -> Workflow[..., dict[str, Any]]:
    """The `durable.bulk` workflow of one runtime (its steps call that runtime's actions).

    Its arguments are journaled: the action's name, the filter (WorkflowFilter.to_plain:
    times already resolved), who asked and why, and the action's options (none: an
    older bulk's journal has four arguments, and its steps none, so it replays). `actions`
    is looked up when a step runs, so an action added to it later (Runtime.bulk(actions=))
    is found by a resumed bulk.
    """

    @activity(name="durable.bulk.select")
    async def select_step(
        name: str, plain: dict[str, Any], bulk_id: str, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        chosen, skipped, total = await select(
            runtime, WorkflowFilter.from_plain(plain), action_of(actions, name, options), bulk_id
        )
        return {"chosen": chosen, "skipped": skipped, "skipped_total": total}

    @activity(name="durable.bulk.act")
    async def act_step(  # noqa: PLR0917 (an activity's arguments, journaled positionally)
        name: str,
        workflow_id: str,
        bulk_id: str,
        by: str,
        reason: str,
        options: dict[str, Any] | None = None,
    ) -> str:
        request = BulkRequest(bulk_id=bulk_id, action=name, by=by, reason=reason)
        try:
            return await action_of(actions, name, options).act(runtime, workflow_id, request)
        except Exception as error:
            kind = "" if isinstance(error, DurableError) else f"{type(error).__name__}: "
            return f"error: {kind}{error}"

    @workflow(name=BULK_WORKFLOW)
    async def bulk(
        name: str,
        plain: dict[str, Any],
        by: str,
        reason: str,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        bulk_id = workflow_info().workflow_id
        extra = [options] if options else []  # (the steps of a bulk without options: as before)
        selected = await select_step(name, plain, bulk_id, *extra)
        chosen: list[str] = selected["chosen"]
        outcomes: dict[str, str] = {}
        for first in range(0, len(chosen), CONCURRENCY):
            batch = chosen[first : first + CONCURRENCY]
            done = await asyncio.gather(
                *(act_step(name, workflow_id, bulk_id, by, reason, *extra) for workflow_id in batch)
            )
            outcomes.update(zip(batch, done, strict=True))
            set_status({"action": name, "done": len(outcomes), "of": len(chosen)})
        return {
            "outcomes": outcomes,
            "skipped": selected["skipped"],
            "skipped_total": selected["skipped_total"],
        }

    return bulk
