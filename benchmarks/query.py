"""How fast a filtered first page comes back from a directory of 100,000 journals.

    python -m benchmarks.query [--journals 100000] [--runs 5] [--dir SCRATCH] [--quick]

The journals are written directly (real frames and records, as a run writes them: a start,
two finished steps, then an end, a failure, or a sleep), into a temporary directory, so
making 100,000 takes seconds, not the minutes real runs would. Each run measures, medians:

  cold_no_index    a new Catalog, no .catalog-index: every journal decoded (a first
                   `durable list`, or one right after the index was deleted)
  cold_index       a new Catalog with the .catalog-index the first one wrote: each journal
                   stat'ed, none decoded (every later `durable list`, a restarted UI)
  warm             the same Catalog again (the UI's live refresh): stats only
  warm_prefix      the same, filtered by id prefix: only the names that match are stat'ed
  one_changed      warm, after one journal grew (one decoded again)

The page: state "failed", workflow "charge", the first 50. Writes JSON to benchmarks/results/.

    python -m benchmarks.query --postgres [--journals 100000] [--runs 5]

The same journals as rows of a throwaway PostgreSQL cluster (or $DURABLE_TEST_POSTGRES),
written with COPY; each run, in a fresh database:

  pg_cold          no summaries yet: every journal decoded and its summary written
  pg_warm          the summaries up to date: the change check, then the page by index
  pg_one_changed   one journal's change count moved: it is read again, then the page
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.journal import write_report
from benchmarks.postgres import fresh_database, server
from durable._catalog import Catalog
from durable._catalog_index import INDEX_NAME
from durable._encoding import encode
from durable._engine import _records as records
from durable._query import WorkflowFilter
from durable._storage._format import new_format
from durable._storage._postgres import PostgresStore

T0 = 1_780_000_000.0


def _records(workflow_id: str, index: int) -> list[bytes]:
    """A small journal's records as a run leaves them: start, two steps, an end or a sleep."""
    start = T0 + index
    name = ("charge", "ship", "notify")[index % 3]
    written: list[Any] = [
        records.start(name, workflow_id, [index], start, index),
        records.done(0, "reserve", "d0", 1, now=start + 0.1, result=index),
        records.done(1, "debit", "d1", 1, now=start + 0.2, result="ok"),
    ]
    if index % 4 == 0:
        error: records.ErrorInfo = {"type": "myapp.Declined", "msg": f"card {index} declined"}
        written.append(records.end_failure(error, start + 0.3, cancelled=False))
    elif index % 4 == 1:
        written.append(records.timer(2, start + 86_400))
    else:
        written.append(records.end_result(index, start + 0.3))
    return [encode(record) for record in written]


def _journal_bytes(path: Path, index: int) -> bytes:
    """The journal file of _records."""
    file_format = new_format(path)
    data = bytearray(file_format.header)
    for payload in _records(path.name.removesuffix(".journal"), index):
        data += file_format.frame(payload, len(data))
    data += file_format.sync_mark(len(data))
    return bytes(data)


def make_directory(directory: Path, journals: int) -> None:
    directory.mkdir(mode=0o700)
    for index in range(journals):
        path = directory / f"wf-{index:07d}.journal"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, _journal_bytes(path, index))
        os.close(fd)


async def _page(catalog: Catalog, where: WorkflowFilter) -> int:
    page = await catalog.query(where, limit=50)
    assert len(page.workflows) == 50, page.total
    return page.total


def measure(directory: Path, runs: int) -> dict[str, list[float]]:
    where = WorkflowFilter(state="failed", workflow_name="charge")
    prefix = WorkflowFilter(state="failed", id_prefix="wf-00012")
    times: dict[str, list[float]] = {
        name: [] for name in ("cold_no_index", "cold_index", "warm", "warm_prefix", "one_changed")
    }

    async def timed(name: str, catalog: Catalog, what: WorkflowFilter) -> None:
        started = time.perf_counter()
        await catalog.query(what, limit=50)
        times[name].append(time.perf_counter() - started)

    async def one_run() -> None:
        (directory / INDEX_NAME).unlink(missing_ok=True)
        await timed("cold_no_index", Catalog(directory), where)  # (and writes the index)
        assert (directory / INDEX_NAME).exists(), "the first listing wrote no index"
        catalog = Catalog(directory)
        await timed("cold_index", catalog, where)
        await timed("warm", catalog, where)
        await timed("warm_prefix", catalog, prefix)
        touched = directory / "wf-0000004.journal"
        stamp = touched.stat().st_mtime_ns + 1_000_000
        os.utime(touched, ns=(stamp, stamp))  # (its version moved: decoded again)
        await timed("one_changed", catalog, where)
        assert await _page(catalog, where) > 0

    for _ in range(runs):
        asyncio.run(one_run())
    return times


async def _fill_postgres(dsn: str, journals: int) -> None:
    """The journals as rows: the tables made by a store, then COPY."""
    async with PostgresStore(dsn) as store:
        await store.connect()
    names = [f"wf-{index:07d}" for index in range(journals)]
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "durable_journals", records=[(name,) for name in names], columns=["name"]
        )
        rows = [
            (name, 0, seq, payload)
            for index, name in enumerate(names)
            for seq, payload in enumerate(_records(name, index))
        ]
        await connection.copy_records_to_table(
            "durable_records", records=rows, columns=["name", "generation", "seq", "payload"]
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def measure_postgres(journals: int, runs: int) -> dict[str, list[float]]:
    where = WorkflowFilter(state="failed", workflow_name="charge")
    times: dict[str, list[float]] = {name: [] for name in ("pg_cold", "pg_warm", "pg_one_changed")}

    async def one_run(admin: str) -> None:
        dsn = await fresh_database(admin)
        await _fill_postgres(dsn, journals)
        async with Catalog(dsn) as catalog:
            for name in ("pg_cold", "pg_warm"):
                started = time.perf_counter()
                assert await _page(catalog, where) > 0
                times[name].append(time.perf_counter() - started)
            connection = await asyncpg.connect(dsn)
            try:
                await connection.execute(
                    "UPDATE durable_journals SET changes = changes + 1 WHERE name = 'wf-0000004'"
                )
            finally:
                await connection.close()
            started = time.perf_counter()
            await _page(catalog, where)
            times["pg_one_changed"].append(time.perf_counter() - started)

    with server() as admin:
        for _ in range(runs):
            asyncio.run(one_run(admin))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--journals", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help="where to make the journals (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL instead")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    runs, journals = (1, 1_200) if args.quick else (args.runs, args.journals)
    if args.postgres:
        times = measure_postgres(journals, runs)
        _report(times, runs, journals, args.output, "query-postgres")
        return
    scratch = Path(tempfile.mkdtemp(prefix="durable-query-", dir=args.dir and str(args.dir)))
    try:
        directory = scratch / "journals"
        started = time.perf_counter()
        make_directory(directory, journals)
        print(f"made {journals} journals in {time.perf_counter() - started:.1f} s")
        times = measure(directory, runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _report(times, runs, journals, args.output, "query-quick" if args.quick else "query")


def _report(
    times: dict[str, list[float]], runs: int, journals: int, output: Path, name: str
) -> None:
    medians = {workload: statistics.median(values) for workload, values in times.items()}
    print(f"\n{'workload':<16}{'median s':>10}")
    for workload, value in medians.items():
        print(f"{workload:<16}{value:>10.3f}")
    result = {
        "runs": runs,
        "journals": journals,
        "seconds": times,
        "medians": medians,
        "load_average_after": os.getloadavg(),  # (a shared machine: how busy it was)
    }
    write_report(result, output, f"{name}.json")


if __name__ == "__main__":
    main()
