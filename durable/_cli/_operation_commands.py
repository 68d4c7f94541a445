"""`durable resume / restart / fork`: an operator's actions on one ended workflow.

Each says what it is about to do and asks first (--yes skips the question), then acts
through Runtime.resume / restart / fork with start=False: the command writes, and a
process that runs the workflow's code (recover(), serve()) runs the result. With
--workflow, the code is loaded to check first that what is kept replays (and an
override's type).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import click

from .._runtime import Runtime
from ._code import load_workflows
from ._source import Source, runtime_for, source_options, with_catalog
from ._source import run as run_work

WORKFLOW_OPTION = click.option(
    "--workflow",
    "-w",
    "--code",
    "workflow_specs",
    multiple=True,
    metavar="MODULE[:NAME]",
    help="The workflow's current code (module:function, or a module): checks first that "
    "what is kept replays with it.",
)
BY_OPTION = click.option("--by", help="Who asks (journaled; default: user@host and pid).")
REASON_OPTION = click.option("--reason", help="Why (journaled).")
YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def _act(
    source: Source, specs: tuple[str, ...], action: Callable[[Runtime], Awaitable[Any]]
) -> str:
    """Run `action` on a runtime of `source` that knows the given code; the id it made."""
    workflows = [workflow for spec in specs for workflow in load_workflows(spec)]

    async def work() -> str:
        runtime = runtime_for(source)
        for workflow in workflows:
            runtime._register(workflow)
        async with runtime:
            handle = await action(runtime)
            return str(handle.id)

    return run_work(work())


def _confirm(source: Source, workflow_id: str, what: str, yes: bool) -> None:
    described = with_catalog(source, lambda catalog: catalog.describe(workflow_id))
    if yes:
        return
    state = str(described.state)
    if described.error:
        state = f"{state}: {described.error.splitlines()[0][:120]}"
    click.confirm(f"{what} {workflow_id} ({described.workflow_name}, {state})?", abort=True)


_NEXT = "a process with its code runs it (recover(), serve(), or run() of the id)"


@click.command(epilog="Example: durable resume --reason 'API fixed' order-17")
@click.argument("workflow_id", metavar="ID")
@source_options
@WORKFLOW_OPTION
@BY_OPTION
@REASON_OPTION
@YES_OPTION
def resume(
    *,
    workflow_id: str,
    source: Source,
    workflow_specs: tuple[str, ...],
    by: str | None,
    reason: str | None,
    yes: bool,
) -> None:
    """Resume a failed or cancelled workflow from the step that failed.

    Its journal is kept; a journaled record sets the failure aside, and the step that
    failed runs again (under its retry policy) when a process runs the workflow.
    """
    _confirm(source, workflow_id, "resume", yes)
    done = _act(
        source,
        workflow_specs,
        lambda runtime: runtime.resume(workflow_id, by=by, reason=reason, start=False),
    )
    click.echo(f"resumed {done}: {_NEXT}")


@click.command(epilog="Example: durable restart --new-id order-17-again order-17")
@click.argument("workflow_id", metavar="ID")
@source_options
@click.option("--new-id", help="The new run's id (default: ID-restart).")
@BY_OPTION
@REASON_OPTION
@YES_OPTION
def restart(
    *,
    workflow_id: str,
    source: Source,
    new_id: str | None,
    by: str | None,
    reason: str | None,
    yes: bool,
) -> None:
    """Run an ended workflow again as a new run with the same arguments (linked to it)."""
    _confirm(source, workflow_id, "restart", yes)
    done = _act(
        source,
        (),
        lambda runtime: runtime.restart(
            workflow_id, new_id=new_id, by=by, reason=reason, start=False
        ),
    )
    click.echo(f"restarted {workflow_id} as {done}: {_NEXT}")


def _override(text: str | None) -> dict[int, Any] | None:
    if text is None:
        return None
    step, equals, value = text.partition("=")
    if not equals or not step.strip().isdigit():
        raise click.BadParameter("STEP=JSON, e.g. 2='{\"amount\": 10}'", param_hint="--override")
    try:
        return {int(step): json.loads(value)}
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON ({error})", param_hint="--override") from None


@click.command(epilog="Example: durable fork --from-failure -w shop.orders order-17")
@click.argument("workflow_id", metavar="ID")
@source_options
@click.option("--at-step", type=click.IntRange(min=0), help="The first step it runs live.")
@click.option("--from-failure", is_flag=True, help="Run live from the step that failed.")
@click.option("--override", metavar="STEP=JSON", help="Record this result for one step.")
@click.option("--new-id", help="The fork's id (default: ID-fork-STEP or ID-fork-failure).")
@WORKFLOW_OPTION
@BY_OPTION
@REASON_OPTION
@YES_OPTION
def fork(
    *,
    workflow_id: str,
    source: Source,
    at_step: int | None,
    from_failure: bool,
    override: str | None,
    new_id: str | None,
    workflow_specs: tuple[str, ...],
    by: str | None,
    reason: str | None,
    yes: bool,
) -> None:
    """A new run that replays ID's recorded steps up to a step, and runs live from there.

    Give --at-step N or --from-failure. With --workflow, the copied steps are replayed
    with that code first: a fork that would not replay is refused (step, file:line).
    --override needs --workflow (the value is checked against the activity's type).
    """
    if (at_step is None) == (not from_failure):
        raise click.UsageError("give --at-step N or --from-failure (one of them)")
    overridden = _override(override)
    where = "the step that failed" if from_failure else f"step {at_step}"
    _confirm(source, workflow_id, f"fork (live from {where})", yes)
    done = _act(
        source,
        workflow_specs,
        lambda runtime: runtime.fork(
            workflow_id,
            at_step=at_step,
            from_failure=from_failure,
            override=overridden,
            new_id=new_id,
            by=by,
            reason=reason,
            start=False,
        ),
    )
    click.echo(f"forked {workflow_id} as {done}: {_NEXT}")
