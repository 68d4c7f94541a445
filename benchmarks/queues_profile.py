"""Where a PostgreSQL queue's time goes: round trips and CPU per enqueue and per start.

    python -m benchmarks.queues_profile [--workflows 500] [--dsn DSN] [--cprofile F]

On a fresh database (of --dsn's server, $DURABLE_TEST_POSTGRES's, else a throwaway cluster),
counts the statements durable sends (each one round trip: asyncpg's `execute` without
arguments, and every prepared `fetch*`/`execute`, which includes BEGIN, COMMIT and the pool's
reset of a connection given back) for:
  enqueue   --workflows enqueues one after another, by a runtime serving nothing
  batched   4 x --workflows enqueues, 100 at once (asyncio.gather), by the same runtime
  admit     the dispatcher's calls per admission alone (slot, claim, slot back)
  drain     those requests drained by a runtime serving the queue (concurrency 100): all a
            queued start costs, the workflow's own journal included
and the wall time, this process's CPU and the server's CPU (when it runs here) of each: CPU
is what a loaded machine's timings hide. With --cprofile, writes the enqueue and drain
phases' profiles to F-enqueue and F-drain and prints their top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import time
from collections import Counter
from collections.abc import Awaitable
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


def _stat(pid: str) -> list[str]:
    with open(f"/proc/{pid}/stat") as file:
        text = file.read()
    return text[text.rfind(")") + 2 :].split()  # (state, ppid, ...: proc(5)'s fields 3 on)


class Meter:
    """Wall time, this process's CPU and the server's CPU (its postmaster's children, live
    and reaped, read from /proc: a server on this machine) since the last reset()."""

    def __init__(self, postmaster: str | None) -> None:
        self.postmaster = postmaster
        self.reset()

    def server_cpu(self) -> float | None:
        if self.postmaster is None:
            return None
        fields = _stat(self.postmaster)
        ticks = sum(int(value) for value in fields[11:15])  # (utime stime cutime cstime)
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                child = _stat(pid)
                if child[1] == self.postmaster:
                    ticks += int(child[11]) + int(child[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def reset(self) -> None:
        SENT.clear()
        self.wall, self.cpu, self.server = (
            time.perf_counter(),
            time.process_time(),
            self.server_cpu(),
        )

    def report(self, name: str, count: int) -> None:
        wall = (time.perf_counter() - self.wall) / count * 1e3
        cpu = (time.process_time() - self.cpu) / count * 1e3
        server = self.server_cpu()
        on_server = (
            "n/a"
            if server is None or self.server is None
            else f"{(server - self.server) / count * 1e3:.2f} ms"
        )
        total = sum(SENT.values())
        print(
            f"\n{name}: {total / count:.2f} statements each; {wall:.2f} ms wall, {cpu:.2f} ms "
            f"CPU here, {on_server} CPU on the server, each"
        )
        for statement, sent in SENT.most_common(30):
            print(f"  {sent / count:6.2f}  {statement}")


async def postmaster(dsn: str) -> str | None:
    """The server's postmaster pid, when it runs on this machine and /proc shows it."""
    connection = await asyncpg.connect(dsn)
    try:
        pid = await connection.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
        )
    finally:
        await connection.close()
    try:
        return _stat(str(pid))[1]
    except OSError:
        return None


async def enqueue_phase(dsn: str, count: int, meter: Meter) -> None:
    queue = durable.Queue("bench-drain", concurrency=100)
    async with runtime_on(dsn) as runtime:
        await runtime.enqueue(queue, noop, -1)  # (connected, statements prepared)
        meter.reset()
        for index in range(count):
            await runtime.enqueue(queue, noop, index)
        meter.report("enqueue", count)


async def batched_phase(dsn: str, count: int, meter: Meter) -> None:
    queue = durable.Queue("bench-batched", concurrency=100)
    async with runtime_on(dsn) as runtime:
        await runtime.enqueue(queue, noop, -1)  # (connected, statements prepared)
        meter.reset()
        for at in range(0, count, 100):
            await asyncio.gather(
                *(runtime.enqueue(queue, noop, index) for index in range(at, min(at + 100, count)))
            )
        meter.report("enqueue, 100 at once", count)


async def drain_phase(dsn: str, count: int, meter: Meter) -> None:
    queue = durable.Queue("bench-drain", concurrency=100)
    ENDED.clear()
    async with runtime_on(dsn, queues=[queue], workflows=[noop]) as runtime:
        meter.reset()
        await runtime.recover()
        await _all_ended(count + 1)
        meter.report("drain", count + 1)


async def admit_phase(dsn: str, count: int, meter: Meter) -> None:
    await admit_cost_postgres(dsn, count, meter.reset)
    meter.report("admit", count)


def profiled(name: str, phase: Awaitable[None], profile: Path | None) -> None:
    if profile is None:
        asyncio.run(phase)  # type: ignore[arg-type]
        return
    with cProfile.Profile() as profiler:
        asyncio.run(phase)  # type: ignore[arg-type]
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
        meter = Meter(asyncio.run(postmaster(admin)))
        dsn = asyncio.run(fresh_database(admin))
        profiled("enqueue", enqueue_phase(dsn, count, meter), options.cprofile)
        profiled("drain", drain_phase(dsn, count, meter), options.cprofile)
        profiled("batched", batched_phase(dsn, count * 4, meter), options.cprofile)
        dsn = asyncio.run(fresh_database(admin))
        profiled("admit", admit_phase(dsn, count, meter), None)


if __name__ == "__main__":
    main()
