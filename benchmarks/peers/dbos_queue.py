"""DBOS Transact's Queue on SQLite or PostgreSQL, as shipped: the work benchmarks.queues measures.

    python -m benchmarks.peers.dbos_queue WORKFLOWS DIRECTORY [DSN]   # prints one JSON line

Run in a process of its own (DBOS's registry and its launch are process-global), by
`python -m benchmarks.queues` when DBOS is installed (the `bench` extra). The system database
is a SQLite file in DIRECTORY with DBOS's defaults (no pragma set: synchronous=FULL), or with
DSN the PostgreSQL database DSN (`system_database_url`: a fresh database of its own), the
queue `DBOS.register_queue(name, concurrency=100)` with its default polling interval (1 s),
as shipped.
Requests are enqueued by a DBOSClient (DBOS's way to enqueue from outside the serving
process), so the drain starts from a full queue, as the durable figure's does:

  enqueue_seq_per_s      WORKFLOWS // 10 enqueues one after another
  enqueue_batched_per_s  WORKFLOWS enqueues, 100 at once (asyncio.gather)
  drain_queue_per_s      those WORKFLOWS drained by a launched DBOS serving the queue
                         (concurrency 100): from launch to the last workflow's end
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ENDED: set[int] = set()
WIDTH = 100  # enqueues in flight at once, as benchmarks.queues' batched figure


async def _gathered(calls: list[Any]) -> None:
    for at in range(0, len(calls), WIDTH):
        await asyncio.gather(*calls[at : at + WIDTH])


async def measure(count: int, directory: Path, dsn: str | None = None) -> dict[str, float]:
    from dbos import DBOS, DBOSClient, DBOSConfig  # noqa: PLC0415 (optional dependency)

    @DBOS.workflow(name="queued-noop")
    async def noop(index: int) -> int:
        ENDED.add(index)
        return index

    url = dsn or f"sqlite:///{directory.resolve() / 'dbos.sqlite'}"
    config: DBOSConfig = {"name": "bench-queues", "system_database_url": url}
    config["log_level"] = "WARNING"
    DBOS(config=config)
    DBOS.launch()  # (creates the schema; then shut down: the client enqueues with none serving)
    DBOS.destroy(workflow_completion_timeout_sec=0)

    client = DBOSClient(system_database_url=url)
    enqueue = client.enqueue_async
    sequential = max(count // 10, 10)
    began = time.perf_counter()
    for index in range(sequential):
        await enqueue({"queue_name": "bench-enqueue", "workflow_name": "queued-noop"}, index)
    seq_rate = sequential / (time.perf_counter() - began)
    options = {"queue_name": "bench-drain", "workflow_name": "queued-noop"}
    began = time.perf_counter()
    await _gathered([enqueue(options, index) for index in range(count)])  # type: ignore[arg-type]
    batched_rate = count / (time.perf_counter() - began)
    client.destroy()

    DBOS(config=config)
    began = time.perf_counter()
    DBOS.launch()
    await DBOS.register_queue_async("bench-drain", concurrency=100)
    while len(ENDED) < count:
        await asyncio.sleep(0.01)
    drained = count / (time.perf_counter() - began)
    DBOS.destroy(workflow_completion_timeout_sec=0)
    logging.getLogger("dbos").setLevel(logging.ERROR)
    return {
        "enqueue_seq_per_s": seq_rate,
        "enqueue_batched_per_s": batched_rate,
        "drain_queue_per_s": drained,
    }


def main() -> None:
    count, directory = int(sys.argv[1]), Path(sys.argv[2])
    dsn = sys.argv[3] if len(sys.argv) > 3 else None
    directory.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(measure(count, directory, dsn))))


if __name__ == "__main__":
    main()
