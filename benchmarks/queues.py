"""Queues on the file store: enqueue throughput, dequeue-to-start, a concurrency limit's cost.

    python -m benchmarks.queues [--workflows 10000] [--runs 3] [--quick] [--dir D] [--output O]

Measured per run (medians over runs):
  enqueue_seq_per_s      enqueues one after another (each waits for its own sync)
  enqueue_batched_per_s  100 enqueues at once (asyncio.gather): they share syncs
  drain_start_per_s      --workflows trivial workflows started directly (runtime.start, 100 at
                         once) until the last one ended: the baseline, no queue
  drain_queue_per_s      the same workflows queued first, then drained by a runtime serving the
                         queue (concurrency 100): from the serving runtime's start to the last
                         workflow's end
  limit_overhead_ms      (drain_queue - drain_start) / workflows: what queueing costs per start
  admit_us               the dispatcher's critical section per admission (lock, a slot's flock,
                         the claim's rename, giving the slot back), timed alone
  enqueue_to_start_ms    on an idle queue, from enqueue() returning to the workflow's code
                         running (median of 200)

Beside them, when DBOS Transact is installed (the `bench` extra) and unless --no-peers:
the same enqueue and drain figures of DBOS's queue (SQLite, concurrency 100, as shipped),
measured in a process of its own in the same run (benchmarks/peers/dbos_queue.py), as
dbos_* and the ratios durable/DBOS as vs_dbos_*.

Writes JSON to benchmarks/results/queues.json (queues-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import durable
from benchmarks.journal import write_report
from durable._storage._queue_files import QueueFiles, Request

STARTED: dict[int, float] = {}
ENDED: set[int] = set()


@durable.workflow(name="queued-noop")
async def noop(index: int) -> int:
    STARTED[index] = time.perf_counter()
    ENDED.add(index)
    return index


async def _all_ended(count: int) -> None:
    while len(ENDED) < count:
        await asyncio.sleep(0.005)


async def _gathered(calls: list[Any], width: int = 100) -> list[Any]:
    done = []
    for at in range(0, len(calls), width):
        done += await asyncio.gather(*calls[at : at + width])
    return done


async def enqueue_rates(directory: Path, count: int) -> tuple[float, float]:
    queue = durable.Queue("bench-enqueue", concurrency=1)
    async with durable.Runtime(directory) as runtime:  # (serves nothing: measures enqueue only)
        sequential = max(count // 10, 10)
        began = time.perf_counter()
        for index in range(sequential):
            await runtime.enqueue(queue, noop, index)
        seq_rate = sequential / (time.perf_counter() - began)
        began = time.perf_counter()
        await _gathered([runtime.enqueue(queue, noop, index) for index in range(count)])
        batched_rate = count / (time.perf_counter() - began)
    return seq_rate, batched_rate


async def drain_direct(directory: Path, count: int) -> float:
    ENDED.clear()
    async with durable.Runtime(directory, workflows=[noop]) as runtime:
        began = time.perf_counter()
        await _gathered([runtime.start(noop, index) for index in range(count)])
        await _all_ended(count)
        return time.perf_counter() - began


async def drain_queue(directory: Path, count: int) -> float:
    queue = durable.Queue("bench-drain", concurrency=100)
    async with durable.Runtime(directory) as producer:
        await _gathered([producer.enqueue(queue, noop, index) for index in range(count)])
    ENDED.clear()
    async with durable.Runtime(directory, queues=[queue], workflows=[noop]) as runtime:
        began = time.perf_counter()
        await runtime.recover()  # (its dispatcher starts)
        await _all_ended(count)
        return time.perf_counter() - began


def admit_cost(directory: Path, count: int) -> float:
    """Microseconds per admission's critical section (lock, slot, claim, slot back)."""
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


async def enqueue_to_start(directory: Path, count: int) -> float:
    queue = durable.Queue("bench-latency", concurrency=10)
    delays = []
    async with durable.Runtime(directory, queues=[queue], workflows=[noop]) as runtime:
        await runtime.recover()  # (its dispatcher runs)
        for index in range(count):
            STARTED.pop(index, None)
            handle = await runtime.enqueue(queue, noop, index)
            returned = time.perf_counter()
            await handle.result()
            delays.append((STARTED[index] - returned) * 1000)
    return statistics.median(delays)


def dbos_figures(scratch: Path, count: int) -> dict[str, float]:
    """DBOS's queue on the same work, in a process of its own (see peers/dbos_queue.py)."""
    shutil.rmtree(scratch / "dbos", ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers.dbos_queue", str(count), str(scratch / "dbos")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


async def one_run(scratch: Path, count: int, latency_count: int) -> dict[str, float]:
    result: dict[str, float] = {}
    for name in ("enqueue", "direct", "queue", "admit", "latency"):
        shutil.rmtree(scratch / name, ignore_errors=True)
    seq_rate, batched_rate = await enqueue_rates(scratch / "enqueue", count)
    result["enqueue_seq_per_s"] = seq_rate
    result["enqueue_batched_per_s"] = batched_rate
    direct = await drain_direct(scratch / "direct", count)
    queued = await drain_queue(scratch / "queue", count)
    result["drain_start_per_s"] = count / direct
    result["drain_queue_per_s"] = count / queued
    result["limit_overhead_ms"] = (queued - direct) / count * 1000
    result["admit_us"] = admit_cost(scratch / "admit", min(count, 5000))
    result["enqueue_to_start_ms"] = await enqueue_to_start(scratch / "latency", latency_count)
    return result


def with_peer(result: dict[str, float], scratch: Path, count: int) -> dict[str, float]:
    """`result` with DBOS's figures of the same run and durable's ratios to them."""
    for name, value in dbos_figures(scratch, count).items():
        result[f"dbos_{name}"] = value
        result[f"vs_dbos_{name}"] = result[name] / value
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--no-peers", action="store_true", help="skip DBOS's queue")
    options = parser.parse_args()
    peers = not options.no_peers and importlib.util.find_spec("dbos") is not None
    count, runs, latency = options.workflows, options.runs, 200
    if options.quick:
        count, runs, latency = 200, 1, 10
    scratch = options.dir or Path(tempfile.mkdtemp(prefix="durable-queues-"))
    scratch.mkdir(parents=True, exist_ok=True)
    results = []
    for _ in range(runs):
        result = asyncio.run(one_run(scratch, count, latency))
        results.append(with_peer(result, scratch, count) if peers else result)
    medians = {key: statistics.median(run[key] for run in results) for key in results[0]}
    for key, value in medians.items():
        print(f"{key:24} {value:12.3f}")
    report: dict[str, object] = {"workflows": count, "runs": results, "medians": medians}
    write_report(report, options.output, "queues-quick.json" if options.quick else "queues.json")
    if options.dir is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
