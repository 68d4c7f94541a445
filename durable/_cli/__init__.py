"""The `durable` command line (also `python -m durable`), built on click, drawn with rich.

Reading commands (list, show, events) go through the read-only catalog: no lock, nothing
written, so they work while workflows run in other processes. send and cancel post to the
workflow's inbox, as Runtime.send_event / cancel do; verify replays journals against the
current code; ui serves the web UI. Lower layers know nothing of this module.

Workflow ids may start with '-' (`-rf`, `--help` are valid): such an id goes after `--`,
the options before it (`durable show --dir D -- -rf`), as with any POSIX command. Given
without `--`, it is an error that says so, not a guess.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.text import Text

from .._catalog import Catalog, Listing
from .._definitions import Workflow
from .._engine._describe import WorkflowState
from .._excerpts import Excerpts
from .._json_ready import plain_description, to_plain
from .._query import WorkflowFilter, WorkflowPage
from .._version import __version__
from ..testing._fork_check import fork_check_directory
from ..testing._replay_check import ReplayResult, replay_directory
from . import _render
from ._code import load_workflows as _load_workflows
from ._operation_commands import fork, restart, resume
from ._query_commands import build_filter, bulk, check_page, filter_words, query_options
from ._schedule_commands import schedule
from ._source import DIRECTORY_OPTION, JSON_OPTION, Source, source_options
from ._source import run as _run
from ._source import runtime_for as _runtime_for
from ._source import with_catalog as _with_catalog


def _console() -> Console:
    """Rich's console; piped output is 160 columns wide (not 80), so rows stay whole."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160
    return console


def _print_json(value: Any) -> None:
    click.echo(json.dumps(to_plain(value), indent=2, ensure_ascii=False))


def _dashed_ids(example: str) -> str:
    """The help's note on ids that start with '-' (valid ids, which click reads as options)."""
    return (
        "An ID (or NAME, JSON) that starts with '-' goes after `--`, the options before it: "
        f"{example}"
    )


class _Command(click.Command):
    """A command whose arguments may start with '-' (after `--`), saying so when they do."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # (the parser consumes the list it is given)
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            words = self._arguments(ctx, given)
            dashed = next((word for word in words if word.startswith("-") and word != "-"), None)
            if dashed is None or "--" in given:
                raise
            hint = (
                f" (did you mean {', '.join(error.possibilities)}?)" if error.possibilities else ""
            )
            suggested = " ".join(shlex.quote(word) for word in words)
            raise click.UsageError(
                f"no such option: {dashed}{hint}. If {dashed!r} is a workflow id (or an event "
                "name, or a payload), put the arguments after `--`, the options before it: "
                f"{ctx.command_path} [OPTIONS] -- {suggested}",
                ctx,
            ) from None

    def _arguments(self, ctx: click.Context, given: list[str]) -> list[str]:
        """The words of `given` that are none of our options nor their values, in order."""
        ours = {name: param for param in self.get_params(ctx) for name in param.opts}
        words: list[str] = []
        skip = False
        for arg in given:
            option = ours.get(arg.split("=", 1)[0])
            if skip:
                skip = False
            elif option is None:
                words.append(arg)
            else:  # (an option that takes a value, not given with "=", takes the next word)
                skip = (
                    isinstance(option, click.Option)
                    and not option.is_flag
                    and not option.count
                    and "=" not in arg
                )
        return words


class _Group(click.Group):
    command_class = _Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RecursionError:  # (a legal value nested some hundreds deep: rich, json)
            raise click.ClickException(
                "a value in this journal nests too deep to print here; the web UI "
                "(durable ui) shows its start and saves it whole"
            ) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="durable")
def main() -> None:
    """durable: durable execution for Python, in-process.

    Look at the workflows of a journal directory (list, show, events), talk to them (send,
    cancel), check a deploy (verify) and browse them (ui). Reading never locks or changes
    a journal: it is safe while the workflows run.

    A workflow id that starts with '-' (-rf, --help) goes after `--`, the options before
    it: durable show --dir DIR -- -rf; durable send -- --help approved '"yes"'.
    """


@main.command(name="list")
@source_options
@click.option(
    "--status",
    "state",
    type=click.Choice([str(state) for state in WorkflowState]),
    help="Only workflows in this state.",
)
@click.option("--search", help="Only ids, workflow names or statuses containing this text.")
@query_options
@click.option(
    "--limit", type=int, help="With a filter: workflows a page shows (default 100, at most 10000)."
)
@click.option("--cursor", help="With a filter: the next page (as the previous page said).")
@JSON_OPTION
def list_command(
    *,
    source: Source,
    state: str | None,
    search: str | None,
    as_json: bool,
    limit: int | None,
    cursor: str | None,
    **filters: Any,
) -> None:
    """List the workflows in the journal directory, most recently updated first.

    A workflow journaled as running an activity that no process holds now is marked
    stalled: it resumes when a runtime runs it again (run() or recover()).

    With a filter option (--workflow, --id-prefix, --error-type, --queue, --parent, a time),
    --limit or --cursor, it lists one page of the matching workflows instead, newest start
    first, and says how to ask for the next. A filter that matches nothing lists nothing
    (exit status 0); a value a filter cannot take is a usage error naming the option.
    """
    where = build_filter((state,) if state else (), filters)
    if where is not None or limit is not None or cursor is not None:
        if search is not None:
            raise click.UsageError(
                "--search lists every workflow; with filter options, use --id-prefix or "
                "--workflow instead"
            )
        check_page(limit, cursor)
        _list_page(source, where, limit or 100, cursor, as_json=as_json)
        return
    listing = _with_catalog(source, lambda catalog: catalog.listing(state=state, search=search))
    if as_json:
        _print_json(
            {
                "workflows": [
                    plain_description(d, listing.runner(d.workflow_id)) for d in listing.workflows
                ],
                "unreadable": listing.unreadable,
                "queues": [to_plain(load) for load in listing.queues],
            }
        )
        return
    console = _console()
    for load in listing.queues:
        click.echo(_render.queue_line(load))
    if listing.workflows:
        color = console.is_terminal and not console.no_color
        for line in _render.listing_lines(listing, width=console.width, color=color):
            click.echo(line, color=color)
    else:
        filtered = " matching" if state or search else ""
        click.echo(f"no{filtered} workflows in {source}")
    for name, problem in listing.unreadable.items():
        click.echo(f"{click.style('unreadable', fg='red')} {name}: {_render.safe(problem)}")


main.add_command(schedule)
main.add_command(resume)
main.add_command(restart)
main.add_command(fork)
main.add_command(bulk)


def _list_page(
    source: Source, where: WorkflowFilter | None, limit: int, cursor: str | None, *, as_json: bool
) -> None:
    """One page of a filtered listing (`durable list` with a filter option)."""

    async def read(catalog: Catalog) -> tuple[WorkflowPage, dict[str, str] | None]:
        page = await catalog.query(where, limit=limit, cursor=cursor)
        return page, await catalog.runners([d.workflow_id for d in page.workflows])

    try:
        page, runners = _with_catalog(source, read)
    except click.ClickException as error:  # (InvalidFilter: the cursor, as run() words it)
        if "cursor=" in error.message:
            raise click.BadParameter(error.message, param_hint="--cursor") from None
        raise
    listing = Listing(workflows=page.workflows, unreadable=page.unreadable, runners=runners)
    if as_json:
        rows = [plain_description(d, listing.runner(d.workflow_id)) for d in page.workflows]
        _print_json(
            {
                "workflows": rows,
                "total": page.total,
                "next_cursor": page.next_cursor,
                "unreadable": page.unreadable,
            }
        )
        return
    if page.workflows:
        console = _console()
        color = console.is_terminal and not console.no_color
        for line in _render.listing_lines(listing, width=console.width, color=color):
            click.echo(line, color=color)
        more = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
        click.echo(f"{len(page.workflows)} of {page.total} matching ({filter_words(where)}){more}")
    elif page.total:
        click.echo(f"no more matching workflows ({page.total} in all) in {source}")
    else:
        click.echo(f"no workflows matching {filter_words(where)} in {source}")
    for name, problem in page.unreadable.items():
        click.echo(f"{click.style('unreadable', fg='red')} {name}: {_render.safe(problem)}")


@main.command(epilog=_dashed_ids("durable show --dir DIR -- -rf"))
@click.argument("workflow_id", metavar="ID")
@source_options
@click.option(
    "--from",
    "first",
    type=click.IntRange(min=0),
    help="The first step to show (default: the last --limit).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Steps to show (0: all).",
)
@click.option(
    "--source",
    "code",
    is_flag=True,
    help="Show where the workflow's code asked for each step: file:line and an excerpt.",
)
@JSON_OPTION
def show(
    workflow_id: str, *, source: Source, first: int | None, limit: int, code: bool, as_json: bool
) -> None:
    """Show one workflow's history: each step with its attempts, timers, events, outcome."""
    details = _with_catalog(source, lambda catalog: catalog.details(workflow_id))
    history, described = details.history, details.description
    total = len(history.steps)
    if limit == 0:
        first, limit = 0, total
    elif first is None:
        first = max(0, total - limit)
    steps = history.steps[first : first + limit]
    if as_json:
        plain = plain_description(described, details.runner)
        shown = to_plain(history)
        if code:  # (each step's site gets its excerpt: [[line number, text], ...])
            excerpts = Excerpts()
            for step in shown["steps"]:
                if step.get("site"):
                    site = step["site"]
                    site["excerpt"] = excerpts.around(site["file"], site["line"])
        _print_json({"workflow": plain, "history": shown, "from": first})
        return
    view = _render.history_view(history, described, steps, first, details.runner)
    if code:
        view = Group(view, Text(""), _render.code_view(steps, Excerpts()))
    _console().print(view)


@main.command(epilog=_dashed_ids("durable events --json -- -rf"))
@click.argument("workflow_id", metavar="ID")
@source_options
@JSON_OPTION
def events(workflow_id: str, source: Source, as_json: bool) -> None:
    """List the events and cancellations sent to a workflow, and whether it received each.

    Received: journaled by the run of the workflow (an event it has not waited for yet stays
    buffered in it until a wait_for_event takes it).
    """
    messages = _with_catalog(source, lambda catalog: catalog.inbox(workflow_id))
    if as_json:
        _print_json(messages)
    elif not messages:
        click.echo(f"nothing was sent to {workflow_id}")
    else:
        _console().print(_render.inbox_table(messages))


@main.command(epilog=_dashed_ids("durable send --event-id call-17 -- --help approved '\"yes\"'"))
@click.argument("workflow_id", metavar="ID")
@click.argument("name")
@click.argument("payload", metavar="[JSON]", required=False)
@source_options
@click.option("--event-id", help="De-duplicates: an event with an id already sent is not sent.")
def send(
    workflow_id: str, name: str, payload: str | None, source: Source, event_id: str | None
) -> None:
    """Send the event NAME, with an optional JSON payload, to a workflow.

    It waits in the workflow's inbox until the workflow takes it at a wait_for_event(NAME):
    at once if this process's runtime runs it, within a second from another process, on
    its next resume if none runs it.
    """
    value = None
    if payload is not None:
        try:
            value = json.loads(payload)
        except json.JSONDecodeError as error:
            raise click.BadParameter(
                f"not JSON ({error}); quote text as JSON, e.g. '\"approved\"'",
                param_hint="JSON",
            ) from None
        except RecursionError:
            raise click.BadParameter(
                "nested too deep to read; flatten the payload", param_hint="JSON"
            ) from None

    async def post() -> bool:
        async with _runtime_for(source) as runtime:
            return await runtime.send_event(workflow_id, name, value, event_id=event_id)

    if _run(post(), source):
        click.echo(f"sent event {name!r} to {workflow_id}: {_arrival(source, workflow_id)}")
    else:
        click.echo(f"not sent: event id {event_id!r} was already sent to {workflow_id}")


@main.command(epilog=_dashed_ids("durable cancel --yes -- -x"))
@click.argument("workflow_id", metavar="ID")
@source_options
@click.option("--reason", default="cancelled from the command line", show_default=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def cancel(workflow_id: str, source: Source, reason: str, yes: bool) -> None:
    """Cancel a workflow: CancelledError is raised at its current await.

    Its except and finally blocks (and saga compensations) run; then it ends cancelled.
    Journaled: a restart does not resurrect it.
    """
    described = _with_catalog(source, lambda catalog: catalog.describe(workflow_id))
    if described.ended is not None:
        raise click.ClickException(
            f"workflow {workflow_id!r} has already {described.state}: nothing to cancel"
        )
    if not yes:
        click.confirm(
            f"cancel {workflow_id} ({described.workflow_name}, {described.state})?", abort=True
        )

    async def post() -> None:
        async with _runtime_for(source) as runtime:
            await runtime.cancel(workflow_id, reason)

    _run(post())
    click.echo(f"cancellation sent to {workflow_id}: {_arrival(source, workflow_id)}")


def _arrival(source: Source, workflow_id: str) -> str:
    """When the workflow will take what was just posted to its inbox, in words."""
    runner = _with_catalog(source, lambda catalog: catalog.runner(workflow_id))
    if runner.holder is not None:
        return f"process {runner.holder} runs it and takes it within its poll interval (1 s)"
    if not runner.known:
        return "a process running it takes it within a second; otherwise it waits for a resume"
    return (
        "no process holds it now; it takes it when a runtime resumes it (one that unloaded "
        "it while it sleeps or waits wakes it for this)"
    )


@main.command()
@source_options
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8233, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other than loopback (anyone who can reach it can read the journals).",
)
@click.option(
    "--code",
    "code_specs",
    multiple=True,
    metavar="MODULE[:NAME]",
    help="The workflows' current code (repeatable): a resume or fork is checked against it "
    "first, and a fork's override needs it (to check the value's type). Nothing runs it.",
)
def ui(
    source: Source, host: str, port: int, allow_remote: bool, code_specs: tuple[str, ...]
) -> None:
    """Serve the web UI: the workflows, their timelines, events and cancellation.

    Listens on 127.0.0.1 unless told otherwise. Every API request, reads as much as
    sending an event or cancelling, needs the token printed at start-up (it is in the
    printed address, and the page keeps it).
    """
    workflows = [workflow for spec in code_specs for workflow in _load_workflows(spec)]
    try:
        from .._ui import is_loopback, serve  # noqa: PLC0415 (the UI's libraries load only here)
    except ImportError as error:  # (the `ui` extra is not installed: say what to install)
        raise click.ClickException(str(error)) from None

    if not is_loopback(host) and not allow_remote:
        raise click.UsageError(
            f"--host {host} is not a loopback address: anyone who can reach it could read "
            "every journal. Pass --allow-remote as well if that is what you want."
        )
    if not is_loopback(host):
        click.secho(
            f"warning: listening on {host}: the journals are readable from the network",
            fg="yellow",
            err=True,
        )
    try:
        serve(source, host=host, port=port, workflows=workflows)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error}; try another --port"
        ) from None
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument(
    "positional_directory",
    metavar="[DIRECTORY]",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
)
@DIRECTORY_OPTION
@click.option(
    "--workflow",
    "-w",
    "workflow_specs",
    multiple=True,
    required=True,
    metavar="MODULE[:NAME]",
    help="The workflow's current code, as module:function (or a module: all of its "
    "workflows). Repeat for several.",
)
@click.option("--strict", is_flag=True, help="Fail on journals of workflows not given, too.")
@click.option(
    "--fork-check",
    is_flag=True,
    help="Also re-run a sample of finished workflows from their recorded arguments through "
    "the code, with recorded activity results: every divergence, with step and call site.",
)
@click.option(
    "--sample",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many finished workflows --fork-check re-runs.",
)
def verify(  # noqa: PLR0917 (click passes each option)
    positional_directory: Path | None,
    directory: Path,
    workflow_specs: tuple[str, ...],
    strict: bool,
    fork_check: bool,
    sample: int,
) -> None:
    """Replay every journal in DIRECTORY (or --dir) against the current code.

    Nothing is written.

    Exits 1 if any journal would hit NonDeterminismError (or cannot be read), with the
    step, what was recorded, what the code asks for now and the call site: run it before
    deploying a change to a workflow with unfinished runs. A finished workflow's replayed
    result must equal the recorded one (the first difference is shown).

    --fork-check re-runs a sample of finished workflows from their recorded arguments
    through the code, each activity answered by its recorded result (nothing real runs),
    and lists every divergence: exit 1 if any.
    """
    directory = positional_directory or directory
    if not directory.is_dir():
        raise click.BadParameter(f"no journal directory at {directory}", param_hint="DIRECTORY")
    workflows = [workflow for spec in workflow_specs for workflow in _load_workflows(spec)]
    results = asyncio.run(replay_directory(directory, workflows))
    if not results:  # (a gate that checked nothing must not pass: a wrong directory, say)
        raise click.ClickException(
            f"no journals in {directory.absolute()}: nothing to verify (give the directory "
            "the workflows run in: DIRECTORY, --dir or $DURABLE_DIR)"
        )
    for result in results:
        _echo(result)
    failed = sum(result.error is not None for result in results)
    skipped = sum(result.skipped is not None for result in results)
    passed = len(results) - failed - skipped
    journals = "journal" if len(results) == 1 else "journals"
    click.echo(f"{len(results)} {journals}: {passed} ok, {failed} failed, {skipped} skipped")
    held = not (failed or (strict and skipped))
    if results and not passed:  # (a gate that checked nothing must not pass)
        click.echo("no journal was verified: give the workflows they belong to (--workflow)")
        held = False
    if fork_check and not _fork_checked(directory, workflows, sample):
        held = False
    if not held:
        sys.exit(1)


def _fork_checked(directory: Path, workflows: list[Workflow[..., Any]], sample: int) -> bool:
    """Run the fork check and print it; whether every re-run held."""
    checked = asyncio.run(fork_check_directory(directory, workflows, sample=sample))
    for result in checked:
        if result.ok:
            click.echo(f"ok       {result.workflow_id} (re-run)")
        elif result.skipped is not None:
            click.echo(f"skipped  {result.workflow_id}: {result.skipped}")
        else:
            click.secho(f"DIVERGED {result.workflow_id} (re-run)", fg="red")
            for found in result.divergences:
                click.echo(f"         {found}")
    diverged = sum(bool(result.divergences) for result in checked)
    click.echo(f"fork check: {len(checked)} re-run, {diverged} diverged")
    return diverged == 0


def _echo(result: ReplayResult) -> None:
    if result.ok:
        click.echo(f"ok       {result.workflow_id} ({result.workflow_name})")
    elif result.skipped is not None:
        click.echo(f"skipped  {result.workflow_id}: {result.skipped}")
    else:
        label = "DIVERGED" if result.diverged else "ERROR"
        click.secho(f"{label:<8} {result.workflow_id} ({result.workflow_name})", fg="red")
        click.echo(f"         {result.error}")
