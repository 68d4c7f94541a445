"""`durable schedule`: list and show schedules; pause, resume, trigger, backfill, delete.

Reading (list, show) goes through the catalog or a describe: no lock, nothing written.
Commands go to the schedule's inbox through a Runtime, as ScheduleHandle's do from code:
the process running the schedule takes them within its poll interval (1 s).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import click

from .._json_ready import to_plain
from .._runtime import Runtime
from .._schedules import ScheduleDescription, ScheduleHandle, describe_schedule
from ._source import JSON_OPTION, Source, runtime_for, source_options, with_catalog
from ._source import run as run_command

NEXT_OPTION = click.option(
    "--next", "upcoming", default=5, show_default=True, type=click.IntRange(0, 100),
    help="How many next fire times to show.",
)  # fmt: skip


@click.group()
def schedule() -> None:
    """Schedules: list, show, pause, resume, trigger, backfill, delete.

    A schedule runs as the workflow `schedule:NAME` in whichever process started it (and
    keeps running there); each fire is a workflow `NAME@<fire time in UTC>`.
    """


@schedule.command(name="list")
@source_options
@JSON_OPTION
def list_schedules(source: Source, as_json: bool) -> None:
    """List the schedules: definition, state, next fire, last outcome."""
    listing = with_catalog(source, lambda catalog: catalog.listing(search="schedule:"))
    found = [describe_schedule(described, 1) for described in listing.workflows]
    schedules = sorted((d for d in found if d is not None), key=lambda d: d.name)
    if as_json:
        click.echo(_json([_plain(d) for d in schedules]))
        return
    if not schedules:
        click.echo(f"no schedules in {source}")
        return
    rows = [("NAME", "WORKFLOW", "WHEN", "STATE", "NEXT FIRE", "FIRES", "LAST")]
    for described in schedules:
        last = described.recent[-1] if described.recent else None
        rows.append(
            (
                described.name,
                described.workflow,
                _when(described),
                _state(described),
                described.next_fires[0].isoformat() if described.next_fires else "-",
                str(described.fires),
                f"{last.outcome} {last.fire.isoformat()}" if last else "-",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


@schedule.command()
@click.argument("name")
@source_options
@NEXT_OPTION
@JSON_OPTION
def show(name: str, source: Source, upcoming: int, as_json: bool) -> None:
    """Show a schedule: its definition, next fire times, what runs, recent outcomes."""

    async def read(runtime: Runtime) -> ScheduleDescription:
        return await ScheduleHandle(runtime, name).describe(upcoming)

    described = _with_runtime(source, read)
    if as_json:
        click.echo(_json(_plain(described)))
        return
    spec = described.spec
    click.echo(f"schedule   {described.name} -> workflow {described.workflow}")
    click.echo(f"when       {_when(described)}")
    click.echo(f"state      {_state(described)}{f' ({described.note})' if described.note else ''}")
    click.echo(
        f"policies   catchup={spec.catchup} (limit {spec.catchup_limit}), overlap={spec.overlap}"
    )
    click.echo(f"fires      {described.fires} started, {described.missed} missed")
    click.echo(f"running    {', '.join(described.running) or '-'}")
    if described.pending:
        click.echo(f"waiting    {', '.join(when.isoformat() for when in described.pending)}")
    click.echo(
        "next       " + ("\n           ".join(w.isoformat() for w in described.next_fires) or "-")
    )
    if described.recent:
        click.echo("recent")
        for result in described.recent:
            detail = f"  {result.detail}" if result.detail else ""
            click.echo(
                f"  {result.fire.isoformat()}  {result.kind:<9} {result.outcome:<9} "
                f"{result.workflow_id or ''}{detail}"[:300]
            )


@schedule.command()
@click.argument("name")
@source_options
@click.option("--note", default="paused from the command line", show_default=True)
def pause(name: str, source: Source, note: str) -> None:
    """Stop the schedule's fires until `resume` (fire times meanwhile are not run later)."""
    _command(source, name, lambda handle: handle.pause(note), "pause")


@schedule.command()
@click.argument("name")
@source_options
def resume(name: str, source: Source) -> None:
    """Fire again, from the next fire time on."""
    _command(source, name, lambda handle: handle.resume(), "resume")


@schedule.command()
@click.argument("name")
@source_options
def trigger(name: str, source: Source) -> None:
    """Fire now (by the schedule's overlap policy)."""
    _command(source, name, lambda handle: handle.trigger(), "trigger")


@schedule.command()
@click.argument("name")
@click.argument("start")
@click.argument("end")
@source_options
def backfill(name: str, start: str, end: str, source: Source) -> None:
    """Run every past fire time in [START, END), oldest first, one at a time.

    START and END are ISO times ("2026-01-01", "2026-01-01T02:00+01:00"); without an
    offset they are in the schedule's time zone. A fire time that already ran is not run
    again.
    """

    async def post(runtime: Runtime) -> int:
        handle = ScheduleHandle(runtime, name)
        zone = (await handle.describe(0)).spec.zone()
        return await handle.backfill(_time(start, zone, "START"), _time(end, zone, "END"))

    count = _with_runtime(source, post)
    click.echo(f"backfill of {count} fire time(s) sent to schedule {name}")


@schedule.command()
@click.argument("name")
@source_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, source: Source, yes: bool) -> None:
    """Stop the schedule for good (fires running go on); starting it in code creates it again."""
    if not yes:
        click.confirm(f"delete schedule {name}?", abort=True)
    _command(source, name, lambda handle: handle.delete("deleted from the command line"), "delete")


def _command(source: Source, name: str, send: Any, what: str) -> None:
    async def post(runtime: Runtime) -> None:
        await send(ScheduleHandle(runtime, name))

    _with_runtime(source, post)
    click.echo(
        f"{what} sent to schedule {name}: the process running it takes it within a second "
        "(or when it starts again)"
    )


def _with_runtime(source: Source, work: Any) -> Any:
    async def run() -> Any:
        async with runtime_for(source) as runtime:
            return await work(runtime)

    return run_command(run())


def _time(text: str, zone: Any, label: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"not an ISO time: {text!r} (e.g. 2026-01-01 or 2026-01-01T02:00+01:00)",
            param_hint=label,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _when(described: ScheduleDescription) -> str:
    spec = described.spec
    when = f"cron {spec.cron!r} {spec.timezone}" if spec.cron else f"every {spec.every:g} s"
    return when + (f", jitter {spec.jitter:g} s" if spec.jitter else "")


def _state(described: ScheduleDescription) -> str:
    if described.deleted:
        return "deleted"
    return "paused" if described.paused else "active"


def _plain(described: ScheduleDescription) -> Any:
    plain = dataclasses.asdict(described)
    plain["spec"] = described.spec.to_plain()
    return to_plain(plain)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
