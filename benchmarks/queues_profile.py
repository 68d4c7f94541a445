"""Where a PostgreSQL queue's time goes: round trips and CPU per enqueue and per start.

    python -m benchmarks.queues_profile [--workflows 500] [--dsn DSN] [--cprofile F]

On a fresh database (of --dsn's server, $DURABLE_TEST_POSTGRES's, else a throwaway cluster),
counts the statements durable sends (each one round trip: asyncpg's `execute` without
arguments, and every prepared `fetch*`/`execute`, which includes BEGIN, COMMIT and the pool's
reset of a connection given back) for:
  enqueue   --workflows enqueues one after another, by a runtime serving nothing
  admit     the dispatcher's calls per admission alone (slot, claim, slot back)
  drain     those requests drained by a runtime serving the queue (concurrency 100): all a
            queued start costs, the workflow's own journal included
and the wall time and process CPU of each. With --cprofile, writes the enqueue and drain
phases' profiles to F-enqueue and F-drain and prints their top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import asyncpg

import durable
from benchmarks.postgres import fresh_database
from benchmarks.queues import (
    ENDED,
    _all_ended,
    admin_dsn,
    admit_cost_postgres,
    noop,
    runtime_on,
)

SENT: Counter[str] = Counter()


def count_statements() -> None:
    """Count every statement asyncpg's connections send, by its first words."""
    plain, prepared = asyncpg.Connection.execute, asyncpg.Connection._execute

    async def execute(self: Any, query: str, *args: Any, **options: Any) -> Any:
        if not args:
            SENT[" ".join(query.split()[:3])[:48]] += 1
        return await plain(self, query, *args, **options)

    async def _execute(self: Any, query: str, *args: Any, **options: Any) -> Any:
        SENT[" ".join(query.split()[:3])[:48]] += 1
        return await prepared(self, query, *args, **options)

    asyncpg.Connection.execute = execute
    asyncpg.Connection._execute = _execute


async def enqueue_phase(dsn: str, count: int) -> None:
    queue = durable.Queue("bench-drain", concurrency=100)
    async with runtime_on(dsn) as runtime:
        await runtime.enqueue(queue, noop, -1)  # (connected, statements prepared)
        SENT.clear()
        for index in range(count):
            await runtime.enqueue(queue, noop, index)


async def drain_phase(dsn: str, count: int) -> None:
    queue = durable.Queue("bench-drain", concurrency=100)
    ENDED.clear()
    async with runtime_on(dsn, queues=[queue], workflows=[noop]) as runtime:
        SENT.clear()
        await runtime.recover()
        await _all_ended(count + 1)


def measured(
    name: str, count: int, phase: Callable[[], Awaitable[Any]], profile: Path | None
) -> None:
    profiler = cProfile.Profile() if profile else None
    context: AbstractContextManager[Any] = profiler if profiler else nullcontext()
    wall, cpu = time.perf_counter(), time.process_time()
    with context:
        asyncio.run(phase())  # type: ignore[arg-type]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    total = sum(SENT.values())
    print(f"\n{name}: {total / count:.2f} statements each; {wall / count * 1e3:.2f} ms wall, "
          f"{cpu / count * 1e3:.2f} ms CPU each (this process)")  # fmt: skip
    for statement, sent in SENT.most_common(12):
        print(f"  {sent / count:6.2f}  {statement}")
    if profiler is not None and profile is not None:
        out = Path(f"{profile}-{name}")
        profiler.dump_stats(out)
        pstats.Stats(str(out)).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--dsn", default=None, help="a PostgreSQL admin DSN")
    parser.add_argument("--cprofile", type=Path, default=None, help="profiles' file prefix")
    options = parser.parse_args()
    count = options.workflows
    count_statements()
    with admin_dsn("postgres", options.dsn) as admin:
        assert admin is not None
        dsn = asyncio.run(fresh_database(admin))
        measured("enqueue", count, lambda: enqueue_phase(dsn, count), options.cprofile)
        measured("drain", count, lambda: drain_phase(dsn, count), options.cprofile)
        other = asyncio.run(fresh_database(admin))

        measured("admit", count, lambda: admit_cost_postgres(other, count, SENT.clear), None)


if __name__ == "__main__":
    main()
