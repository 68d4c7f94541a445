"""Errors of an operator's actions: resume, restart, fork, queries and bulk actions."""

from __future__ import annotations

from pathlib import Path

from ._base import DurableError
from ._journal import JournalError


class ActionRefused(DurableError):
    """resume / restart / fork of a workflow in a state the action does not take.

    `state`: what the workflow is ("running in another process", "completed", "not
    ended"...); `hint`: what to do instead. Nothing was written.
    """

    def __init__(self, *, workflow_id: str, action: str, state: str, hint: str) -> None:
        self.workflow_id = workflow_id
        self.action = action
        self.state = state
        super().__init__(
            f"cannot {action} workflow {workflow_id!r}: it is {state}. {hint}. Nothing was written"
        )


class InvalidForkStep(DurableError, ValueError):
    """fork(at_step=N) where the source's journal records fewer steps than N."""

    def __init__(self, *, workflow_id: str, step: int, steps: int) -> None:
        self.workflow_id = workflow_id
        self.step = step
        self.steps = steps
        super().__init__(
            f"cannot fork workflow {workflow_id!r} at step {step}: its journal records "
            f"{steps} step(s) (0 to {steps - 1}), so a fork may start live at step 0 to "
            f"{steps}. Nothing was written"
        )


class InvalidOverride(DurableError, ValueError):
    """fork(override={step: value}) with a value the fork cannot record for that step.

    It does not encode, does not fit the activity's return annotation, or the step is not
    an activity (or child) step with an outcome before the fork's live part. Nothing was
    written.
    """

    def __init__(self, *, workflow_id: str, step: int, problem: str) -> None:
        self.workflow_id = workflow_id
        self.step = step
        self.problem = problem
        super().__init__(
            f"cannot override step {step} of a fork of workflow {workflow_id!r}: {problem}. "
            "Nothing was written"
        )


class ForkIncomplete(JournalError):
    """A fork's journal holds fewer copied records than its start record announces.

    The fork that wrote it stopped half-way (a crash); running it would start live too
    early. Run the same fork again (same new id): it completes the copy.
    """

    def __init__(
        self, *, path: Path | str, workflow_id: str, source: str, have: int, want: int
    ) -> None:
        self.workflow_id = workflow_id
        self.source = source
        super().__init__(
            path=path,
            message=f"workflow {workflow_id!r} is a fork of {source!r} whose copy stopped "
            f"half-way ({have} of {want} records): run the same fork again (same new id) to "
            "complete it; nothing of it has run",
        )


class InvalidFilter(DurableError, ValueError):
    """A workflow query's filter field, page cursor or limit that cannot be right.

    Raised where the filter is built (code, `durable list` options, the web UI's query
    parameters), before anything is read; `field` names the field as the caller spelt it.
    """

    def __init__(self, *, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        shown = repr(value)
        shown = shown if len(shown) <= 200 else shown[:199] + "…"
        super().__init__(
            f"workflow filter: {field}={shown} is not allowed; {field} must be {expected}. "
            "Nothing was read or changed"
        )


class UnknownBulkAction(DurableError, LookupError):
    """A bulk action asked for by a name no action has (see durable.bulk)."""

    def __init__(self, *, action: str, known: list[str]) -> None:
        self.action = action
        self.known = known
        super().__init__(
            f"no bulk action {action!r}: the actions are {', '.join(known)}. Nothing was changed"
        )


class InvalidBulkOptions(DurableError, ValueError):
    """A bulk action's options that it does not take (an unknown name, a bad value).

    Raised before anything is selected or started (Runtime.bulk, `durable bulk`, the web
    UI's POST /api/bulk/{action}); `action` names the action, `problem` what is wrong.
    """

    def __init__(self, *, action: str, problem: str) -> None:
        self.action = action
        self.problem = problem
        super().__init__(f"bulk {action}: {problem}. Nothing was changed")
