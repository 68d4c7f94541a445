"""`durable list`'s filter options, and `durable bulk` (an action on every workflow matched).

The options build one durable.WorkflowFilter, which checks every value (InvalidFilter names
the field; it is reported as the option). Times: ISO 8601 (without an offset: local time),
a date, or a duration meaning that long ago ("2h", "3 days").

A bulk action asks first: it lists what it would do (as --dry-run does) and waits for a
yes, unless --yes; with no terminal to ask on (CI, a pipe) it refuses without --yes. An
action's options (fork's --at-step / --from-failure) travel in the bulk's journaled
arguments. Resume, restart and fork only write: a process with the workflows' code runs
what they leave (recover(), serve()).
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from .._bulk import ACTIONS, BulkResult
from .._definitions import Workflow
from .._engine._describe import WorkflowState
from .._errors import InvalidFilter, WorkflowNotFound
from .._query import TIME_FIELDS, WorkflowFilter
from .._runtime import Runtime
from .._runtime_parts import default_by
from ._code import load_workflows
from ._source import Source, runtime_for, source_options
from ._source import run as run_coroutine

SHOWN = 20  # workflows a confirmation names before "and N more"
_OPTION_OF = {name: "--" + name.replace("_", "-") for name in TIME_FIELDS} | {
    "state": "--status",
    "workflow_name": "--workflow",
    "id_prefix": "--id-prefix",
    "error_type": "--error-type",
    "queue": "--queue",
    "parent": "--parent",
    "cursor": "--cursor",
    "limit": "--limit",
}
FILTER_KEYS = ("workflow_name", "id_prefix", "error_type", "queue", "parent", *TIME_FIELDS)


def query_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filter options but --status (each command has its own), as keyword arguments."""
    for name in reversed(TIME_FIELDS):
        which, side = name.rsplit("_", 1)
        command = click.option(
            _OPTION_OF[name],
            name,
            metavar="TIME",
            help=f"Only workflows {which} {'at or after' if side == 'after' else 'before'} "
            "TIME (ISO 8601, local unless it has an offset; or '2h': that long ago).",
        )(command)
    for option, name, text in (
        ("--parent", "parent", "Only children of this workflow id."),
        ("--queue", "queue", "Only workflows this queue holds (waiting, or admitted and running)."),
        ("--error-type", "error_type", "Only failures of this exception type (full or last part)."),
        ("--id-prefix", "id_prefix", "Only ids that start with this."),
    ):
        command = click.option(option, name, help=text)(command)
    return click.option(
        "--workflow",
        "workflow_name",
        multiple=True,
        help="Only this workflow (by name); repeat for several.",
    )(command)


def _local(text: str | None) -> str | None:
    """A time option as the filter takes it: an ISO time without an offset is local time."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return text  # (a duration, or an error the filter words)
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()


def build_filter(states: tuple[str, ...], options: dict[str, Any]) -> WorkflowFilter | None:
    """The filter the options ask for (None: no option given), or a usage error."""
    given = {key: options.get(key) for key in FILTER_KEYS}
    given["workflow_name"] = tuple(given["workflow_name"] or ()) or None
    for name in TIME_FIELDS:
        given[name] = _local(given[name])
    if not states and all(value is None for value in given.values()):
        return None
    try:
        return WorkflowFilter(state=states or None, **given)
    except InvalidFilter as error:
        raise click.BadParameter(str(error), param_hint=_OPTION_OF.get(error.field)) from None


def check_page(limit: int | None, cursor: str | None) -> None:
    """--limit and --cursor as a query takes them (the query checks the cursor's text)."""
    if limit is not None and not 1 <= limit <= 10_000:
        raise click.BadParameter("a whole number 1..10000", param_hint="--limit")


def filter_words(where: WorkflowFilter | None) -> str:
    """The filter in words, for messages."""
    if where is None or where.empty:
        return "every workflow"
    return ", ".join(f"{key}={value}" for key, value in where.to_plain().items())


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def with_filter(command: Callable[..., Any]) -> Callable[..., Any]:
    """--status (repeatable) and the filter options, handed over as one `where`."""

    @functools.wraps(command)
    def built(*args: Any, states: tuple[str, ...], **kwargs: Any) -> Any:
        options = {key: kwargs.pop(key) for key in FILTER_KEYS}
        return command(*args, where=build_filter(states, options), **kwargs)

    return click.option(
        "--status",
        "states",
        multiple=True,
        type=click.Choice([str(state) for state in WorkflowState]),
        help="Only workflows in this state; repeat for several.",
    )(query_options(built))


_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
# (--workflow is the filter's, by name: the code comes with --code, as `durable fork -w`.)
_CODE_OPTION = click.option(
    "--code",
    "code_specs",
    multiple=True,
    metavar="MODULE[:NAME]",
    help="The workflows' current code (module:function, or a module; repeat for several): "
    "each is checked first that what it keeps replays with it (refused, naming the step "
    "and file:line, if not).",
)
# Each action's own options: (click option, how it goes into Runtime.bulk's options).
_ACTION_OPTIONS: dict[str, list[_Decorator]] = {
    "resume": [_CODE_OPTION],
    "fork": [
        _CODE_OPTION,
        click.option(
            "--at-step",
            type=click.IntRange(min=0),
            help="Fork each at this step (the first it runs live), not from its failure.",
        ),
        click.option(
            "--from-failure",
            is_flag=True,
            help="Fork each from the step that failed (the default without --at-step).",
        ),
    ],
}
_NEXT = "a process with the workflows' code runs them (recover(), serve(), or a handle's result())"


def _options_of(action: str, given: dict[str, Any]) -> dict[str, Any]:
    """Runtime.bulk's options from an action's own command-line options."""
    given.pop("code_specs", None)
    if action != "fork":
        return {}
    at_step, from_failure = given.pop("at_step"), given.pop("from_failure")
    if at_step is not None and from_failure:
        raise click.UsageError("give --at-step N or --from-failure, not both")
    return {"at_step": at_step} if at_step is not None else {"from_failure": True}


def bulk_command(action: str, verb: str) -> click.Command:
    """The `durable bulk <action>` command (one per entry of ACTIONS)."""

    def bulk_action(
        *,
        source: Source,
        where: WorkflowFilter | None,
        every: bool,
        reason: str,
        by: str | None,
        bulk_id: str | None,
        dry_run: bool,
        yes: bool,
        **own: Any,
    ) -> None:
        workflows = [
            workflow for spec in own.get("code_specs", ()) for workflow in load_workflows(spec)
        ]
        options = _options_of(action, own)
        if where is None and not every and bulk_id is None:
            raise click.UsageError(
                f"say which workflows to {verb}: give a filter (--status, --workflow, "
                "--id-prefix, ...), or --all for every workflow"
            )
        run_coroutine(
            _bulk(
                source=source,
                action=action,
                verb=verb,
                where=where or WorkflowFilter(),
                reason=reason,
                by=by,
                bulk_id=bulk_id,
                dry_run=dry_run,
                yes=yes,
                options=options,
                workflows=workflows,
            )
        )

    bulk_action.__doc__ = (
        f"{verb.capitalize()} every workflow the filter options below match.\n\n"
        "Lists what it would do and asks first (--yes: do not ask; without a terminal it "
        "refuses unless --yes). Runs as a durable workflow, journaled with who asked and "
        "why: interrupted, run the same command with --id BULK_ID to finish it (nothing is "
        "done twice). A filter that matches nothing does nothing, and exits 0."
        + (
            ""
            if action == "cancel"
            else "\n\nIt acts only on workflows that have ended and that no process holds; "
            f"the others are listed as skipped, with why. It only writes: {_NEXT}."
        )
    )
    options: list[_Decorator] = [
        *_ACTION_OPTIONS.get(action, []),
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
        click.option("--dry-run", is_flag=True, help="List what it would do; do nothing."),
        click.option("--id", "bulk_id", help="The bulk's id: given again, it finishes that bulk."),
        click.option("--by", help="Who asks (default: user@host (pid)); journaled."),
        click.option("--reason", default=f"bulk {verb} from the command line", show_default=True),
        click.option("--all", "every", is_flag=True, help="Every workflow: no filter."),
        with_filter,
        source_options,
    ]
    command: Callable[..., Any] = bulk_action
    for option in options:
        command = option(command)
    return click.command(name=action)(command)


async def _bulk(
    *,
    source: Source,
    action: str,
    verb: str,
    where: WorkflowFilter,
    reason: str,
    by: str | None,
    bulk_id: str | None,
    dry_run: bool,
    yes: bool,
    options: dict[str, Any],
    workflows: list[Workflow[..., Any]],
) -> None:
    runtime = runtime_for(source)
    for workflow in workflows:  # (the replay check of what each keeps: Runtime.resume/fork)
        runtime._register(workflow)
    async with runtime:
        if bulk_id is not None and not dry_run and await _exists(runtime, bulk_id):
            click.echo(
                f"finishing bulk {bulk_id} (its own filter and options, as journaled when it began)"
            )
            _report(await runtime.bulk(action, where, bulk_id=bulk_id, options=options), verb)
            return
        planned = await runtime.bulk(action, where, dry_run=True, options=options)
        if not planned.outcomes:
            skipped = f" ({planned.skipped_total} matched but cannot be)" if planned.matched else ""
            click.echo(f"nothing to {verb}: no workflow matching {filter_words(where)}{skipped}")
            return
        _plan(planned, verb)
        if dry_run:
            return
        if not yes:
            if not _stdin_is_terminal():
                raise click.UsageError(
                    f"not asking for confirmation: stdin is not a terminal. Add --yes to {verb} "
                    f"these {len(planned.outcomes)} workflows (--dry-run lists them)"
                )
            click.confirm(f"{verb} these {len(planned.outcomes)} workflows?", abort=True)
        bulk_id = bulk_id or planned.bulk_id
        click.echo(f"bulk {bulk_id}: interrupted? run this command again with --id {bulk_id}")
        done = await runtime.bulk(
            action, where, by=by or default_by(), reason=reason, bulk_id=bulk_id, options=options
        )
    _report(done, verb)


async def _exists(runtime: Runtime, bulk_id: str) -> bool:
    try:
        await runtime.describe(bulk_id)
    except WorkflowNotFound:
        return False
    return True


def _plan(planned: BulkResult, verb: str) -> None:
    ids = list(planned.outcomes)
    how = planned.outcomes[ids[0]].removeprefix("would ")  # (fork: "fork at step 2")
    click.echo(f"would {verb} {len(ids)} workflows{f' ({how})' if how != verb else ''}:")
    for workflow_id in ids[:SHOWN]:
        click.echo(f"  {workflow_id}")
    if len(ids) > SHOWN:
        click.echo(f"  ... and {len(ids) - SHOWN} more (--dry-run --json... see durable list)")
    if planned.skipped_total:
        click.echo(
            f"skipped {planned.skipped_total} that cannot be: e.g. "
            + ", ".join(f"{key} ({why})" for key, why in list(planned.skipped.items())[:3])
        )


def _in_short(outcome: str) -> str:
    """An outcome as counted: "error", "restarted" (as whichever id), or itself."""
    if outcome.startswith("error"):
        return "error"
    return outcome.split(" as ", 1)[0]


def _report(done: BulkResult, verb: str) -> None:
    counts = Counter(_in_short(outcome) for outcome in done.outcomes.values())
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    click.echo(f"bulk {done.bulk_id}: {summary or f'nothing to {verb}'}")
    made = {key: run for key, run in done.runs.items() if key != run}
    for workflow_id, run in list(made.items())[:SHOWN]:
        click.echo(f"  {workflow_id} -> {run}")
    if len(made) > SHOWN:
        click.echo(f"  ... and {len(made) - SHOWN} more (durable show {done.bulk_id})")
    if done.runs:
        click.echo(f"{len(done.runs)} to run: {_NEXT}")
    for workflow_id, error in done.errors.items():
        click.secho(f"  {workflow_id}: {error}", fg="red")
    if done.errors:
        sys.exit(1)


@click.group()
def bulk() -> None:
    """Act on every workflow a filter matches (cancel, resume, restart, fork), crash-safe."""


for _action in ACTIONS:  # (an entry of ACTIONS each, a command each)
    bulk.add_command(bulk_command(_action, ACTIONS[_action].verb))
