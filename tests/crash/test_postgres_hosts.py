"""Many hosts on one PostgreSQL database: three serving processes share 300 workflows;
one is SIGKILLed and one SIGSTOPped mid-flight. Every workflow finishes, no step whose
result was recorded runs again, and the paused process's late results are refused."""

from __future__ import annotations

import asyncio
import platform
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import pytest

from durable import PostgresStore, Runtime
from durable._encoding import decode

from .pg_worker import job

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("pg_worker.py")
WORKFLOWS = 300


async def submit_all(dsn: str, count: int) -> None:
    async with Runtime(store=PostgresStore(dsn), workflows=[job]) as runtime:
        for number in range(count):
            await runtime.submit(job, number, id=f"job-{number:03d}")


async def finished(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM durable_journals WHERE done"))
    finally:
        await connection.close()


async def unfinished(dsn: str) -> list[object]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(
            await connection.fetch(
                "SELECT name, owner, fence, lease_until, due, now() AS now FROM durable_journals "
                "WHERE NOT done ORDER BY name LIMIT 5"
            )
        )
    finally:
        await connection.close()


async def outcomes(dsn: str) -> dict[str, object]:
    async with PostgresStore(dsn) as store:
        found = {}
        for name in await store.list():
            last = (await store.read(name))[-1]
            found[name] = decode(last.payload, path=name, offset=last.offset)
        return found


def in_flight(ledger: Path, pid: int) -> bool:
    """Whether process `pid` has a step started and not ended (steps take 0.3 s)."""
    open_steps: set[str] = set()
    for line in ledger.read_text().splitlines():
        event, key, who, _ = line.split()
        if int(who) == pid:
            (open_steps.add if event == "start" else open_steps.discard)(key)
    return bool(open_steps)


# The event loop's wait (epoll_wait, epoll_pwait, epoll_pwait2) by machine: a worker stopped
# there runs no Python at all, so no attempt of it is between its lease check and its first line.
LOOP_WAITS = {"x86_64": {232, 281, 441}, "aarch64": {22, 441}}


def stopped_in(pid: int) -> str:
    """The system call a stopped process was in ("-1": none, it ran in user space)."""
    for _ in range(200):  # (SIGSTOP is acted on asynchronously: until the state reads T)
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "T":
            return Path(f"/proc/{pid}/syscall").read_text().split()[0]
        time.sleep(0.005)
    raise AssertionError(f"process {pid} did not stop")


def pause_while_waiting(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGSTOP the worker at a moment its event loop waits, not while it runs Python.

    An attempt checks its lease, then its activity's first line runs: a pause that lands
    between the two (a few microseconds, longer while the process is preempted on a loaded
    machine) lets that attempt's side effect begin after the lease lapsed, as with any
    lease; its decision was taken in time. The test is about runners that decide after
    the lapse, so it pauses where no decision is under way; elsewhere it resumes and tries
    again. (Not on a machine whose epoll calls it does not know: paused at once.)
    """
    waits = LOOP_WAITS.get(platform.machine())
    deadline = time.monotonic() + timeout
    while True:
        process.send_signal(signal.SIGSTOP)
        if waits is None:
            return
        syscall = stopped_in(process.pid)
        if syscall.lstrip("-").isdigit() and int(syscall) in waits:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"worker never stopped in its loop's wait (last: {syscall})")
        process.send_signal(signal.SIGCONT)
        time.sleep(0.003)


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_hosts_one_killed_one_paused(postgres_dsn: str, tmp_path: Path) -> None:
    asyncio.run(submit_all(postgres_dsn, WORKFLOWS))
    ledger = tmp_path / "ledger"
    ledger.touch()
    logs = [tmp_path / f"worker-{index}.log" for index in range(3)]
    log_files = [log.open("w") for log in logs]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), postgres_dsn, str(ledger)],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            cwd=WORKER.parents[2],
        )
        for log_file in log_files
    ]
    killed, paused, _survivor = workers
    try:
        # Mid-flight: every worker has claimed workflows and started steps.
        wait_for(lambda: len(ledger.read_text().splitlines()) > 150, 60, "steps to start")
        killed.send_signal(signal.SIGKILL)
        wait_for(lambda: in_flight(ledger, paused.pid), 30, "a step of the one to pause")
        pause_while_waiting(paused, 10)
        stopped_at = time.time()
        try:
            wait_for(lambda: asyncio.run(finished(postgres_dsn)) == WORKFLOWS, 60, "all to end")
        except AssertionError:
            stuck = asyncio.run(unfinished(postgres_dsn))
            raise AssertionError(f"not finished: {stuck}; {logs[2].read_text()[-3000:]}") from None
        resumed_at = time.time()
        paused.send_signal(signal.SIGCONT)  # it wakes up believing it still runs its share
        time.sleep(2.5)  # its steps in flight end; it tries to journal them
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)
                worker.terminate()
            worker.wait(timeout=30)
        for log_file in log_files:
            log_file.close()

    # 1. Every workflow finished with a result: one pid per step.
    ends = asyncio.run(outcomes(postgres_dsn))
    assert len(ends) == WORKFLOWS
    recorded: dict[str, int] = {}
    for name, end in ends.items():
        assert isinstance(end, dict)
        assert end["k"] == "end", (name, end)
        assert len(end["r"]) == 3, (name, end)
        for index, pid in enumerate(end["r"]):
            recorded[f"{name}/{index}"] = pid

    # 2. The ledger: no step whose result was recorded ran again. An attempt whose result
    #    was never recorded (its process killed, paused, or starved past its lease) may be
    #    followed by another: at least once, with the same idempotency key.
    attempts: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
    for line in ledger.read_text().splitlines():
        event, key, pid, at = line.split()
        attempts[key].append((event, int(pid), float(at)))
    for key, events in attempts.items():
        starts = [(pid, at) for event, pid, at in events if event == "start"]
        assert len(starts) <= 3, (key, events)
        ends_of_recorded = [
            at for event, pid, at in events if event == "end" and pid == recorded.get(key)
        ]
        assert ends_of_recorded, (key, events, recorded.get(key))
        recorded_end = max(ends_of_recorded)
        assert all(at < recorded_end for _, at in starts), (key, events)
        assert starts[-1][0] == recorded[key], (key, events)
    assert set(recorded) <= set(attempts)

    # 3. The paused process's late results were refused: no step recorded the result of an
    #    attempt that ended after it was paused.
    late = {
        key
        for key, events in attempts.items()
        for event, pid, at in events
        if event == "end" and pid == paused.pid and at >= resumed_at
    }
    # Its steps in flight at the pause either end late (their results refused below) or, when
    # its lease's lapse is due before their end, are cancelled by its LeaseWatch (logged).
    paused_log = logs[1].read_text()
    cancelled_at_lapse = "is cancelled, as another process may take the workflow" in paused_log
    assert late or cancelled_at_lapse, "the paused worker had steps in flight"
    for key in late:
        assert recorded[key] != paused.pid, key
    assert "taken over" in paused_log or "may have lapsed" in paused_log, paused_log[-2000:]
    assert stopped_at < resumed_at
