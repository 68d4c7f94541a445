"""Queues on the file store or PostgreSQL: enqueue throughput, dequeue-to-start, a limit's cost.

    python -m benchmarks.queues [--workflows 10000] [--runs 3] [--quick] [--dir D] [--output O]
    python -m benchmarks.queues --store postgres [--dsn DSN] [--workflows 10000] [--runs 3]

Measured per run (medians over runs):
  enqueue_seq_per_s      enqueues one after another (each waits for its own sync)
  enqueue_batched_per_s  100 enqueues at once (asyncio.gather): they share syncs
  drain_start_per_s      --workflows trivial workflows started directly (runtime.start, 100 at
                         once) until the last one ended: the baseline, no queue
  drain_queue_per_s      the same workflows queued first, then drained by a runtime serving the
                         queue (concurrency 100): from the serving runtime's start to the last
                         workflow's end
  limit_overhead_ms      (drain_queue - drain_start) / workflows: what queueing costs per start
  admit_us               the dispatcher's critical section per admission, timed alone: on
                         files (lock, a slot's flock, the claim's record appended to the
                         queue's request log, giving the slot back); on PostgreSQL (a
                         slot's advisory lock, the claim's transaction, unlocking the slot:
                         round trips to the server)
  enqueue_to_start_ms    on an idle queue, from enqueue() returning to the workflow's code
                         running (median of 200)

With --store postgres each figure is taken on a fresh database of one server: --dsn's (an
admin DSN: databases are created on it), $DURABLE_TEST_POSTGRES's, else a throwaway cluster
of Debian's postgresql started for the run (as benchmarks.postgres does). The stores are
durable.PostgresStore as shipped (pool of 10); the serving runtime's dispatcher is started
by recover(), as serve() does.

Beside them, when DBOS Transact is installed (the `bench` extra) and unless --no-peers:
the same enqueue and drain figures of DBOS's queue (concurrency 100, as shipped: SQLite for
the file store, its own fresh database on the same server for PostgreSQL), measured in a
process of its own in the same run (benchmarks/peers/dbos_queue.py), as dbos_* and the
ratios durable/DBOS as vs_dbos_*.

Writes JSON to benchmarks/results/queues.json, queues-postgres.json with --store postgres
(queues-quick.json, queues-postgres-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import durable
from benchmarks.journal import write_report
from durable._storage._queue_files import QueueFiles, Request

STARTED: dict[int, float] = {}
ENDED: set[int] = set()

Place = Path | str  # a file store's directory, or a PostgreSQL database's DSN


@durable.workflow(name="queued-noop")
async def noop(index: int) -> int:
    STARTED[index] = time.perf_counter()
    ENDED.add(index)
    return index


def runtime_on(place: Place, **options: Any) -> durable.Runtime:
    """A runtime on `place`'s store, as shipped (PostgresStore: its default pool of 10)."""
    if isinstance(place, Path):
        return durable.Runtime(place, **options)
    return durable.Runtime(store=durable.PostgresStore(place), **options)


async def _all_ended(count: int) -> None:
    while len(ENDED) < count:
        await asyncio.sleep(0.005)


async def _gathered(calls: list[Any], width: int = 100) -> list[Any]:
    done = []
    for at in range(0, len(calls), width):
        done += await asyncio.gather(*calls[at : at + width])
    return done


async def enqueue_rates(place: Place, count: int) -> tuple[float, float]:
    queue = durable.Queue("bench-enqueue", concurrency=1)
    async with runtime_on(place) as runtime:  # (serves nothing: measures enqueue only)
        sequential = max(count // 10, 10)
        began = time.perf_counter()
        for index in range(sequential):
            await runtime.enqueue(queue, noop, index)
        seq_rate = sequential / (time.perf_counter() - began)
        began = time.perf_counter()
        await _gathered([runtime.enqueue(queue, noop, index) for index in range(count)])
        batched_rate = count / (time.perf_counter() - began)
    return seq_rate, batched_rate


async def drain_direct(place: Place, count: int) -> float:
    ENDED.clear()
    async with runtime_on(place, workflows=[noop]) as runtime:
        began = time.perf_counter()
        await _gathered([runtime.start(noop, index) for index in range(count)])
        await _all_ended(count)
        return time.perf_counter() - began


async def drain_queue(place: Place, count: int) -> float:
    queue = durable.Queue("bench-drain", concurrency=100)
    async with runtime_on(place) as producer:
        await _gathered([producer.enqueue(queue, noop, index) for index in range(count)])
    ENDED.clear()
    async with runtime_on(place, queues=[queue], workflows=[noop]) as runtime:
        began = time.perf_counter()
        await runtime.recover()  # (its dispatcher starts)
        await _all_ended(count)
        return time.perf_counter() - began


def admit_cost(directory: Path, count: int) -> float:
    """Microseconds per admission's critical section (lock, slot, claim: an append, slot
    back)."""
    files = QueueFiles(directory, "bench-admit")
    slots = files.slots(100)
    for index in range(count):
        files.create(Request(f"w{index}", 5, index, 0.0, 0.0, None, None, b"\x80"))
    began = time.perf_counter()
    for index in range(count):
        with files.locked():
            slot = slots.take()
            assert slot is not None
            files.claim(f"w{index}")
        slots.give_back(slot)
    cost = (time.perf_counter() - began) / count * 1e6
    slots.close()
    files.close()
    return cost


async def admit_cost_postgres(
    dsn: str, count: int, timing: Callable[[], object] = lambda: None
) -> float:
    """Microseconds per admission on PostgreSQL: the dispatcher's calls, as it makes them
    (`timing` is called once the requests are in, as the timing begins)."""
    from durable._storage._postgres_queues import (  # noqa: PLC0415
        PostgresQueues,
        slot_prefix,
    )

    store = durable.PostgresStore(dsn)
    tables = PostgresQueues(store, lambda: None)

    async def request(index: int) -> None:
        await tables.enqueue(
            f"w{index}", "bench-admit", priority=5, delay=0.0, key=None, dedup_id=None,
            workflow="queued-noop", payload=b"\x80",
        )  # fmt: skip

    await store.connect()
    try:
        await _gathered([request(index) for index in range(count)])
        prefix = slot_prefix("bench-admit")
        timing()
        began = time.perf_counter()
        for _ in range(count):
            slot = await tables.take(prefix, 100)
            assert slot is not None
            row, _, _ = await tables.claim("bench-admit", ["queued-noop"], None, None)
            assert row is not None
            await tables.give_back(prefix, slot)
        cost = (time.perf_counter() - began) / count * 1e6
    finally:
        await tables.close()
        await store.close()
    return cost


async def enqueue_to_start(place: Place, count: int) -> float:
    queue = durable.Queue("bench-latency", concurrency=10)
    delays = []
    async with runtime_on(place, queues=[queue], workflows=[noop]) as runtime:
        await runtime.recover()  # (its dispatcher runs)
        for index in range(count):
            STARTED.pop(index, None)
            handle = await runtime.enqueue(queue, noop, index)
            returned = time.perf_counter()
            await handle.result()
            delays.append((STARTED[index] - returned) * 1000)
    return statistics.median(delays)


def dbos_figures(scratch: Path, count: int, dsn: str | None = None) -> dict[str, float]:
    """DBOS's queue on the same work, in a process of its own (see peers/dbos_queue.py):
    on SQLite in `scratch`, or on the PostgreSQL database `dsn`."""
    shutil.rmtree(scratch / "dbos", ignore_errors=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.peers.dbos_queue",
            str(count),
            str(scratch / "dbos"),
            *([dsn] if dsn else []),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


class Places:
    """Where each figure of a run is taken: fresh directories, or fresh databases."""

    def __init__(self, scratch: Path, admin: str | None) -> None:
        self.scratch, self.admin = scratch, admin

    def fresh(self, name: str) -> Place:
        if self.admin is None:
            shutil.rmtree(self.scratch / name, ignore_errors=True)
            return self.scratch / name
        from benchmarks.postgres import fresh_database  # noqa: PLC0415 (needs asyncpg)

        return asyncio.run(fresh_database(self.admin))


def one_run(places: Places, count: int, latency_count: int) -> dict[str, float]:
    result: dict[str, float] = {}
    seq_rate, batched_rate = asyncio.run(enqueue_rates(places.fresh("enqueue"), count))
    result["enqueue_seq_per_s"] = seq_rate
    result["enqueue_batched_per_s"] = batched_rate
    direct = asyncio.run(drain_direct(places.fresh("direct"), count))
    queued = asyncio.run(drain_queue(places.fresh("queue"), count))
    result["drain_start_per_s"] = count / direct
    result["drain_queue_per_s"] = count / queued
    result["limit_overhead_ms"] = (queued - direct) / count * 1000
    admit = places.fresh("admit")
    if isinstance(admit, Path):
        result["admit_us"] = admit_cost(admit, min(count, 5000))
    else:
        result["admit_us"] = asyncio.run(admit_cost_postgres(admit, min(count, 2000)))
    latency = places.fresh("latency")
    result["enqueue_to_start_ms"] = asyncio.run(enqueue_to_start(latency, latency_count))
    return result


def with_peer(result: dict[str, float], places: Places, count: int) -> dict[str, float]:
    """`result` with DBOS's figures of the same run and durable's ratios to them."""
    dsn = None if places.admin is None else places.fresh("dbos")
    assert dsn is None or isinstance(dsn, str)
    for name, value in dbos_figures(places.scratch, count, dsn).items():
        result[f"dbos_{name}"] = value
        result[f"vs_dbos_{name}"] = result[name] / value
    return result


@contextlib.contextmanager
def admin_dsn(store: str, dsn: str | None) -> Iterator[str | None]:
    """None for the file store; else a PostgreSQL admin DSN (--dsn, or a throwaway server)."""
    if store == "files":
        yield None
    elif dsn is not None:
        yield dsn
    else:
        from benchmarks.postgres import server  # noqa: PLC0415 (needs asyncpg)

        with server() as found:
            yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--store", choices=("files", "postgres"), default="files")
    parser.add_argument("--dsn", default=None, help="a PostgreSQL admin DSN (--store postgres)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--no-peers", action="store_true", help="skip DBOS's queue")
    options = parser.parse_args()
    if options.dsn is not None and options.store != "postgres":
        parser.error("--dsn needs --store postgres")
    peers = not options.no_peers and importlib.util.find_spec("dbos") is not None
    count, runs, latency = options.workflows, options.runs, 200
    if options.quick:  # (on PostgreSQL smaller still: each figure creates a database)
        count, runs, latency = (200, 1, 10) if options.store == "files" else (50, 1, 5)
    scratch = options.dir or Path(tempfile.mkdtemp(prefix="durable-queues-"))
    scratch.mkdir(parents=True, exist_ok=True)
    results = []
    with admin_dsn(options.store, options.dsn) as admin:
        places = Places(scratch, admin)
        for _ in range(runs):
            result = one_run(places, count, latency)
            results.append(with_peer(result, places, count) if peers else result)
    medians = {key: statistics.median(run[key] for run in results) for key in results[0]}
    for key, value in medians.items():
        print(f"{key:24} {value:12.3f}")
    report: dict[str, object] = {
        "store": options.store,
        "workflows": count,
        "runs": results,
        "medians": medians,
    }
    name = "queues" if options.store == "files" else "queues-postgres"
    write_report(report, options.output, f"{name}-quick.json" if options.quick else f"{name}.json")
    if options.dir is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
