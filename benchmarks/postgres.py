"""durable and DBOS on the same PostgreSQL server, in the same run: steps per second.

    python -m benchmarks.postgres [--runs 5] [--steps 200] [--quick]

Starts a throwaway PostgreSQL cluster (Debian's postgresql, as the test suite does; or
uses $DURABLE_TEST_POSTGRES), and for each run a fresh database per system:
  durable_sequential / dbos_sequential   one workflow of --steps trivial steps
  durable_concurrent / dbos_concurrent   100 workflows of 20 steps at once
Both commit every step before the workflow moves on, in their default settings: durable
one transaction per batch of steps (group commit across workflows), DBOS one transaction
per step (its step output insert). Needs the bench extra for DBOS (reported as skipped
without it). Medians; writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

import durable
from benchmarks.journal import write_report
from durable import PostgresStore, Runtime
from tests.postgres_server import binaries, throwaway_cluster


@durable.activity(name="step")
async def step(index: int) -> int:
    return index


@durable.workflow(name="bench")
async def steps_workflow(count: int) -> int:
    for index in range(count):
        await step(index)
    return count


@contextlib.contextmanager
def server() -> Iterator[str]:
    if dsn := os.environ.get("DURABLE_TEST_POSTGRES"):
        yield dsn
        return
    bindir = binaries()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries here (apt-get install postgresql)")
    with throwaway_cluster(bindir) as dsn:
        yield dsn


async def fresh_database(admin: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return admin.rsplit("/", 1)[0] + f"/{name}"


async def durable_sequential(dsn: str, steps: int) -> float:
    async with Runtime(store=PostgresStore(dsn)) as runtime:
        await runtime.run(steps_workflow, 1, id="warm-up")
        started = time.perf_counter()
        await runtime.run(steps_workflow, steps, id="sequential")
        return steps / (time.perf_counter() - started)


async def durable_concurrent(dsn: str, workflows: int, steps: int) -> float:
    async with Runtime(store=PostgresStore(dsn, pool_size=20)) as runtime:
        await runtime.run(steps_workflow, 1, id="warm-up")
        started = time.perf_counter()
        handles = [
            await runtime.start(steps_workflow, steps, id=f"c-{index}")
            for index in range(workflows)
        ]
        await asyncio.gather(*(handle.result() for handle in handles))
        return workflows * steps / (time.perf_counter() - started)


def dbos_rate(dsn: str, workload: str, *args: int) -> float | str:
    """DBOS on `dsn` (its system database), through the peers' adapter."""
    try:
        from benchmarks.peers import dbos_peer  # noqa: PLC0415 (needs the bench extra)
    except ImportError as error:
        return f"skipped: {error}"
    if (why := dbos_peer.unavailable()) is not None:
        return f"skipped: {why}"
    os.environ["DURABLE_BENCH_DBOS_URL"] = dsn
    try:
        with tempfile.TemporaryDirectory() as scratch:
            run = getattr(dbos_peer, workload)
            result: dict[str, Any] = asyncio.run(run(Path(scratch), *args))
    finally:
        del os.environ["DURABLE_BENCH_DBOS_URL"]
    return float(result["steps_per_s"])


async def commits(dsn: str) -> int:
    """Transactions committed in the database so far (the statistics lag: wait a moment)."""
    await asyncio.sleep(1.5)
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await connection.close()


def commits_per_step(admin: str, steps: int) -> dict[str, Any]:
    """What each system commits per step of one sequential workflow (pg_stat_database)."""
    found: dict[str, Any] = {}
    for name in ("durable", "dbos"):
        dsn = asyncio.run(fresh_database(admin))
        before = asyncio.run(commits(dsn))
        if name == "durable":
            asyncio.run(durable_sequential(dsn, steps))
        elif isinstance(dbos_rate(dsn, "sequential", steps), str):
            found[name] = "skipped"
            continue
        # (less the polling connections' own commits, measured over an idle while)
        after = asyncio.run(commits(dsn))
        found[name] = round((after - before) / steps, 2)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--dir", type=Path, default=None, help="(unused: the database is)")
    args = parser.parse_args()
    runs, steps, workflows, each = (
        (1, 20, 10, 5) if args.quick else (args.runs, args.steps, 100, 20)
    )
    rates: dict[str, list[Any]] = {
        "durable_sequential": [],
        "dbos_sequential": [],
        "durable_concurrent": [],
        "dbos_concurrent": [],
    }
    with server() as admin:
        for _ in range(runs):
            dsn = asyncio.run(fresh_database(admin))
            rates["durable_sequential"].append(asyncio.run(durable_sequential(dsn, steps)))
            rates["dbos_sequential"].append(
                dbos_rate(asyncio.run(fresh_database(admin)), "sequential", steps)
            )
            dsn = asyncio.run(fresh_database(admin))
            rates["durable_concurrent"].append(
                asyncio.run(durable_concurrent(dsn, workflows, each))
            )
            rates["dbos_concurrent"].append(
                dbos_rate(asyncio.run(fresh_database(admin)), "concurrent", workflows, each)
            )
        per_step = commits_per_step(admin, steps)
    medians: dict[str, Any] = {}
    for name, values in rates.items():
        numbers = [value for value in values if isinstance(value, float)]
        medians[name] = statistics.median(numbers) if numbers else values[0]
    print(f"\n{'workload':<22}{'steps/s':>12}  ratio")
    for name, value in medians.items():
        ratio = ""
        if name.startswith("durable_") and isinstance(value, float):
            peer = medians[name.replace("durable_", "dbos_")]
            if isinstance(peer, float):
                ratio = f"{value / peer:.1f}x DBOS"
        shown = f"{value:>12,.0f}" if isinstance(value, float) else f"  {value}"
        print(f"{name:<22}{shown}  {ratio}")
    print(f"commits per sequential step: {per_step}")
    result = {
        "commits_per_step": per_step,
        "runs": runs,
        "steps": steps,
        "concurrent": [workflows, each],
        "steps_per_s": rates,
        "medians": medians,
    }
    write_report(result, args.output, "postgres-quick.json" if args.quick else "postgres.json")


if __name__ == "__main__":
    main()
