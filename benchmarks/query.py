"""How fast a filtered first page comes back from a directory of 100,000 journals.

    python -m benchmarks.query [--journals 100000] [--runs 5] [--quick]

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

from benchmarks.journal import write_report
from durable._catalog import Catalog
from durable._catalog_index import INDEX_NAME
from durable._encoding import encode
from durable._engine import _records as records
from durable._query import WorkflowFilter
from durable._storage._format import new_format

T0 = 1_780_000_000.0


def _journal_bytes(path: Path, index: int) -> bytes:
    """A small journal as a run leaves it: start, two steps, then an end or a sleep."""
    file_format = new_format(path)
    start = T0 + index
    workflow_id = path.name.removesuffix(".journal")
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
    data = bytearray(file_format.header)
    for record in written:
        data += file_format.frame(encode(record), len(data))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--journals", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    runs, journals = (1, 1_200) if args.quick else (args.runs, args.journals)
    scratch = Path(tempfile.mkdtemp(prefix="durable-query-"))
    try:
        directory = scratch / "journals"
        started = time.perf_counter()
        make_directory(directory, journals)
        print(f"made {journals} journals in {time.perf_counter() - started:.1f} s")
        times = measure(directory, runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{'workload':<16}{'median s':>10}")
    for name, value in medians.items():
        print(f"{name:<16}{value:>10.3f}")
    result = {"runs": runs, "journals": journals, "seconds": times, "medians": medians}
    write_report(result, args.output, "query-quick.json" if args.quick else "query.json")


if __name__ == "__main__":
    main()
