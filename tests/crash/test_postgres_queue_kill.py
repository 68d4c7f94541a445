"""A queue's slots on PostgreSQL outlive no process: two processes serve a concurrency-2
queue; one is SIGKILLed mid-activity. Its slots come back to the survivor (the server ends
its advisory locks with its connection), every request finishes (one it had admitted but
whose start record it had not committed too: started from its request once its lease
lapsed), and never more than 2 run at once, nor one request twice at once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from durable import PostgresStore, Runtime

from .pg_queue_worker import QUEUE, queued_job

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("pg_queue_worker.py")
JOBS = 10


async def enqueue_all(dsn: str) -> None:
    async with Runtime(store=PostgresStore(dsn), workflows=[queued_job]) as runtime:
        for n in range(JOBS):
            await runtime.enqueue(QUEUE, queued_job, n, id=f"queued-{n}")


async def finished(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM durable_journals WHERE done"))
    finally:
        await connection.close()


def open_steps(ledger: Path, pid: int) -> int:
    count = 0
    for line in ledger.read_text().splitlines():
        event, _, who, _ = line.split()
        if int(who) == pid:
            count += 1 if event == "start" else -1
    return count


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_process_gives_its_slots_back(postgres_dsn: str, tmp_path: Path) -> None:
    asyncio.run(enqueue_all(postgres_dsn))
    ledger = tmp_path / "ledger"
    ledger.touch()
    log = (tmp_path / "workers.log").open("w")
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), postgres_dsn, str(ledger)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=WORKER.parents[2],
        )
        for _ in range(2)
    ]
    killed = workers[0]
    try:
        # Either may hold both slots for a while: the one to kill is one with a step open.
        wait_for(
            lambda: any(open_steps(ledger, worker.pid) > 0 for worker in workers),
            30,
            "a step in flight",
        )
        killed = next(worker for worker in workers if open_steps(ledger, worker.pid) > 0)
        # (when it was sent: it died at or after that, and its slots came back only then;
        # the time wait() returns is later by however long a loaded machine takes)
        killed_at = time.time()
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        wait_for(lambda: asyncio.run(finished(postgres_dsn)) == JOBS, 30, "every job to end")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
            worker.wait(timeout=30)
        log.close()

    # Intervals of every attempt; a killed attempt ended when its process died.
    started: dict[tuple[str, int], float] = {}
    intervals: list[tuple[float, float, str]] = []
    for line in ledger.read_text().splitlines():
        event, n, pid, at = line.split()
        if event == "start":
            started[(n, int(pid))] = float(at)
        else:
            intervals.append((started.pop((n, int(pid))), float(at), n))
    assert all(pid == killed.pid for _, pid in started), started
    intervals += [(at, max(at, killed_at), n) for (n, _), at in started.items()]
    assert {n for _, _, n in intervals} == {str(n) for n in range(JOBS)}
    events = sorted(
        [(start, 1, n) for start, _, n in intervals] + [(end, -1, n) for _, end, n in intervals]
    )
    running: dict[str, int] = {}
    for _, change, n in events:
        running[n] = running.get(n, 0) + change
        assert running[n] <= 1, f"request {n} ran twice at once"
        assert sum(running.values()) <= 2, f"more than 2 at once: {running}"
    # The survivor ran the killed one's interrupted request again (its slot came back).
    assert started, "the killed process had a step in flight"
