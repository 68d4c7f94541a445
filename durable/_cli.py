"""The `durable` command line (also `python -m durable`), built on click.

`durable verify DIR --workflow module:function`: replay every journal in DIR against the
current code and report each one that would hit NonDeterminismError: a pre-deploy gate.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

import click

from ._definitions import Workflow
from .testing._replay_check import ReplayResult, replay_directory


def _load_workflows(spec: str) -> list[Workflow[..., Any]]:
    """`module:name` (one workflow) or `module` (every workflow it defines at top level)."""
    module_name, _, attribute = spec.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # (as `python -m` would: the project's modules)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise click.BadParameter(f"cannot import {module_name!r}: {error}") from error
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, Workflow):
            raise click.BadParameter(
                f"{spec!r} is not a workflow (a function decorated with @durable.workflow)"
            )
        return [found]
    workflows = [value for value in vars(module).values() if isinstance(value, Workflow)]
    if not workflows:
        raise click.BadParameter(f"module {module_name!r} defines no @durable.workflow")
    return workflows


@click.group()
@click.version_option(package_name="aiodurable", prog_name="durable")
def main() -> None:
    """durable: durable execution for Python, in-process."""


@main.command()
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".durable"
)
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
def verify(directory: Path, workflow_specs: tuple[str, ...], strict: bool) -> None:
    """Replay every journal in DIRECTORY against the current code (nothing is written).

    Exits 1 if any journal would hit NonDeterminismError (or cannot be read), with the
    step, what was recorded, what the code asks for now and the call site: run it before
    deploying a change to a workflow with unfinished runs.
    """
    workflows = [workflow for spec in workflow_specs for workflow in _load_workflows(spec)]
    results = asyncio.run(replay_directory(directory, workflows))
    for result in results:
        _echo(result)
    failed = sum(result.error is not None for result in results)
    skipped = sum(result.skipped is not None for result in results)
    passed = len(results) - failed - skipped
    journals = "journal" if len(results) == 1 else "journals"
    click.echo(f"{len(results)} {journals}: {passed} ok, {failed} failed, {skipped} skipped")
    if failed or (strict and skipped):
        sys.exit(1)


def _echo(result: ReplayResult) -> None:
    if result.ok:
        click.echo(f"ok       {result.workflow_id} ({result.workflow_name})")
    elif result.skipped is not None:
        click.echo(f"skipped  {result.workflow_id}: {result.skipped}")
    else:
        label = "DIVERGED" if result.diverged else "ERROR"
        click.secho(f"{label:<8} {result.workflow_id} ({result.workflow_name})", fg="red")
        click.echo(f"         {result.error}")
