"""Where a command reads and writes: --dir or --store, a Runtime or a Catalog on it.

Shared by the `durable` commands (this package's __init__) and `durable schedule`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from .._catalog import Catalog, is_postgres
from .._errors import DurableError, WorkflowNotFound
from .._runtime import Runtime
from .._storage._postgres import PostgresStore

T = TypeVar("T")

DIRECTORY_OPTION = click.option(
    "--dir",
    "directory",
    envvar="DURABLE_DIR",
    default=".durable",
    show_default="$DURABLE_DIR or .durable",
    type=click.Path(file_okay=False, path_type=Path),
    help="The journal directory.",
)
STORE_OPTION = click.option(
    "--store",
    envvar="DURABLE_STORE",
    metavar="DSN",
    help="A PostgreSQL store (postgresql://user:password@host/db) instead of a directory.",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
Source = Path | str  # a journal directory, or a PostgreSQL DSN


def source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--dir and --store, handed to the command as one `source`."""

    @functools.wraps(command)
    def with_source(*args: Any, directory: Path, store: str | None, **kwargs: Any) -> Any:
        if store is not None and not is_postgres(store):
            raise click.BadParameter(
                "a PostgreSQL DSN, postgresql://user:password@host:port/database",
                param_hint="--store",
            )
        if store is None and not directory.is_dir():
            raise click.ClickException(f"no journal directory at {where(directory)}")
        return command(*args, source=store if store is not None else directory, **kwargs)

    return DIRECTORY_OPTION(STORE_OPTION(with_source))


def where(source: Source) -> str:
    """The journal directory in words: its full path, and where the command took it from.

    A directory that was not given (the default .durable) is the usual reason for "no
    journal directory" or "no workflow": the words say so, and how to give it.
    """
    if not isinstance(source, Path):
        return "the PostgreSQL store (--store)"
    context = click.get_current_context(silent=True)
    given = context.get_parameter_source("directory") if context is not None else None
    full = source.absolute()
    if given is click.core.ParameterSource.ENVIRONMENT:
        return f"{full} ($DURABLE_DIR)"
    if given is click.core.ParameterSource.DEFAULT:
        return f"{full} (the default: no --dir given, $DURABLE_DIR unset; give --dir DIRECTORY)"
    return str(full) if str(full) == str(source) else f"{full} (--dir {source})"


def with_catalog(source: Source, work: Callable[[Catalog], Awaitable[T]]) -> T:
    """Run `work` on a catalog of `source`, letting go of its connections after."""

    async def work_on() -> T:
        async with Catalog(source) as catalog:
            return await work(catalog)

    return run(work_on(), source)


def runtime_for(source: Source) -> Runtime:
    """A Runtime on `source`, to send through (as from any other process)."""
    if isinstance(source, str) and is_postgres(source):
        return Runtime(store=PostgresStore(source))
    return Runtime(source)


def run(work: Coroutine[Any, Any, T], source: Source | None = None) -> T:
    """Run one coroutine; a durable error becomes a one-line message and exit status 1.

    An unknown workflow id is told with the directory looked in (`source`), in full.
    """
    try:
        return asyncio.run(work)
    except WorkflowNotFound as error:
        if source is None:
            raise click.ClickException(str(error)) from None
        raise click.ClickException(
            f"no workflow {error.workflow_id!r} in {where(source)}; `durable list` shows the "
            "ones there (give --dir the directory the workflow was started in)"
        ) from None
    except DurableError as error:
        raise click.ClickException(str(error)) from None
