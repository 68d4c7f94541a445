"""DBOS Transact on SQLite, as shipped: async workflows and steps, durable default settings.

The system database is a SQLite file in the workload's directory, configured only by its URL:
DBOS sets no journal_mode or synchronous pragma, so SQLite's defaults apply (a rollback
journal, synchronous=FULL), and every step is one committed transaction before the workflow
moves on. Logging is turned down to warnings, which touches no durability setting.

Workflows are registered on first use, not at import, so importing this module (to ask
unavailable()) leaves DBOS's global registry alone, and a module run as __main__ registers
the same names as one imported. Replay crashes a child process (SIGKILL) once its workflow has
recorded N steps, then relaunches DBOS here: launch recovers the pending workflow, which
re-executes with the recorded step outputs.

    python -m benchmarks.peers.dbos_peer            # self-check at tiny sizes
    python -m benchmarks.peers.dbos_peer full       # the benchmark's sizes
    python -m benchmarks.peers.dbos_peer sequential 200   # one workload (e.g. under strace)
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import Unsupported, latency_summary, rss_mb, self_check

NAME = "dbos"

SLEEP_S = 3600.0  # the durable sleep of the sleeping workload, and where replay parks
SLEEPING_BUDGET_S = 180.0  # beyond this, starting `workflows` sleepers is reported infeasible
SLEEPING_IN_FLIGHT = 256  # started sleepers not yet asleep, at most (bounds DBOS's threads)
RECORD_BUDGET_S = 400.0  # replay: recording the history (the caller gives a worker 600 s)
REPLAY_BUDGET_S = 150.0  # replay: relaunch until the recovered workflow passes its steps
REPLAY_WORKFLOW_ID = "replay"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def unavailable() -> str | None:
    try:
        import dbos  # noqa: F401, PLC0415
    except ImportError as error:
        return f"cannot import dbos: {error}"
    return None


# --- workflows: registered once per process, on first use ------------------------------------


@dataclass(frozen=True)
class _Workflows:
    steps: Callable[[int], Coroutine[Any, Any, list[float]]]
    sleeper: Callable[[], Coroutine[Any, Any, None]]
    replay: Callable[[int], Coroutine[Any, Any, None]]


_workflows: _Workflows | None = None
_marks: dict[str, float] = {}  # replay: when the workflow was entered, and passed its steps
_passed = threading.Event()  # set where the replay workflow passes its recorded steps
_executed = [0]  # step bodies run in this process (replay: must stay 0, outputs are recorded)


def _mark(name: str) -> None:
    _marks[name] = time.perf_counter()
    if name == "passed":
        _passed.set()


def _define() -> _Workflows:
    """Register the benchmark's workflows with DBOS (once per process) and return them."""
    global _workflows  # noqa: PLW0603 (DBOS's registry is process-global too)
    if _workflows is not None:
        return _workflows
    from dbos import DBOS  # noqa: PLC0415 (optional dependency)

    @DBOS.step(name="bench_step")
    async def step(index: int) -> int:
        _executed[0] += 1
        return index

    @DBOS.workflow(name="bench_steps")
    async def steps_workflow(count: int) -> list[float]:
        stamps = []
        for index in range(count):
            await step(index)
            stamps.append(time.perf_counter())
        return stamps

    @DBOS.workflow(name="bench_sleeper")
    async def sleeper() -> None:
        await DBOS.sleep_async(SLEEP_S)

    @DBOS.workflow(name="bench_replay")
    async def replay_workflow(count: int) -> None:
        _mark("entered")
        for index in range(count):
            await step(index)
        _mark("passed")
        await DBOS.sleep_async(SLEEP_S)  # parks here: the first run is killed while asleep

    _workflows = _Workflows(steps_workflow, sleeper, replay_workflow)
    return _workflows


def _database(directory: Path) -> Path:
    return Path(directory).resolve() / "dbos.sqlite"


def _launch(directory: Path) -> None:
    """Construct and launch DBOS on a SQLite system database in `directory`, as shipped
    (or on $DURABLE_BENCH_DBOS_URL, a PostgreSQL database)."""
    from dbos import DBOS, DBOSConfig  # noqa: PLC0415

    # (benchmarks.postgres points DBOS at a PostgreSQL database instead, as shipped too)
    url = os.environ.get("DURABLE_BENCH_DBOS_URL") or f"sqlite:///{_database(directory)}"
    config: DBOSConfig = {
        "name": "bench",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()


def _destroy() -> None:
    """Shut DBOS down without waiting for workflows; parked ones are cancelled by asyncio.run.

    DBOS logs a warning for every workflow task cancelled that way (10,000 for sleeping), so
    its logger is turned down to errors once it is shut down.
    """
    from dbos import DBOS  # noqa: PLC0415

    DBOS.destroy(workflow_completion_timeout_sec=0)
    logging.getLogger("dbos").setLevel(logging.ERROR)


# --- workloads ---------------------------------------------------------------------------------


async def sequential(directory: Path, steps: int) -> dict[str, Any]:
    from dbos import DBOS  # noqa: PLC0415

    workflows = _define()
    _launch(directory)
    try:
        started = time.perf_counter()
        handle = await DBOS.start_workflow_async(workflows.steps, steps)
        stamps = await asyncio.wait_for(handle.get_result(), timeout=60 + steps * 0.05)
        elapsed = time.perf_counter() - started
    finally:
        _destroy()
    latencies = [after - before for before, after in zip([started, *stamps], stamps, strict=False)]
    return {"steps_per_s": steps / elapsed, **latency_summary(latencies)}


async def concurrent(directory: Path, workflows: int, steps: int) -> dict[str, Any]:
    from dbos import DBOS  # noqa: PLC0415

    defined = _define()
    _launch(directory)
    try:
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(DBOS.start_workflow_async(defined.steps, steps) for _ in range(workflows))
        )
        await asyncio.wait_for(
            asyncio.gather(*(handle.get_result() for handle in handles)),
            timeout=60 + workflows * steps * 0.05,
        )
        elapsed = time.perf_counter() - started
    finally:
        _destroy()
    return {"steps_per_s": workflows * steps / elapsed}


def _sleeps_recorded(database: Path) -> int:
    """How many durable sleeps DBOS has committed (read-only, from its SQLite file)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        row = connection.execute(
            "SELECT count(*) FROM operation_outputs WHERE function_name = 'DBOS.sleep'"
        ).fetchone()
        return int(row[0])
    finally:
        connection.close()


async def sleeping(directory: Path, workflows: int) -> dict[str, Any]:
    """Start `workflows` sleepers; start_s runs until every sleep is committed (all parked).

    Starts are awaited with a bound on how many sleepers may be started but not yet asleep:
    each start and each sleep is a blocking call DBOS runs on its executor (no thread limit)
    against a 20-connection pool with a 30 s checkout timeout, and the threads it grows stay
    resident (a bound of 1,024 instead of 256 adds ~40 MiB at 2,000 sleepers, same speed).
    Gives up (Unsupported) after SLEEPING_BUDGET_S.
    """
    from dbos import DBOS  # noqa: PLC0415

    defined = _define()
    database = _database(directory)
    before = rss_mb()
    _launch(directory)
    launched_rss = rss_mb()
    started_count = 0
    asleep = 0
    try:
        started = time.perf_counter()
        deadline = started + SLEEPING_BUDGET_S
        while asleep < workflows:
            if time.perf_counter() > deadline:
                elapsed = time.perf_counter() - started
                raise Unsupported(
                    f"DBOS started {started_count:,} and parked {asleep:,} of {workflows:,} "
                    f"sleeping workflows in {elapsed:.0f} s (~{asleep / elapsed:,.0f}/s); "
                    f"all would take ~{workflows / max(asleep / elapsed, 1e-9):,.0f} s"
                )
            room = min(workflows - started_count, SLEEPING_IN_FLIGHT - (started_count - asleep))
            if room > 0:
                await asyncio.wait_for(
                    asyncio.gather(
                        *(DBOS.start_workflow_async(defined.sleeper) for _ in range(room))
                    ),
                    timeout=max(1.0, deadline - time.perf_counter()) + 30,
                )
                started_count += room
            await asyncio.sleep(0.02)
            asleep = await asyncio.to_thread(_sleeps_recorded, database)
        elapsed = time.perf_counter() - started
        grown = rss_mb() - before
    finally:
        _destroy()  # the sleepers stay parked on this loop; asyncio.run cancels them
    return {
        "start_s": elapsed,
        "rss_mb": grown,
        "rss_mb_launch": launched_rss - before,  # DBOS's own threads and engine, no workflows
    }


def _replay_child(directory: str, steps: int) -> None:
    """In a child process: run the replay workflow past `steps` steps into its sleep, then die.

    Prints "ready" once the steps and the sleep are committed, and SIGKILLs itself: a crash,
    leaving the workflow PENDING with `steps` recorded step outputs. Prints "slow RATE" and
    exits instead if recording at DBOS's rate would not fit in RECORD_BUDGET_S.
    """
    from dbos import DBOS, SetWorkflowID  # noqa: PLC0415

    async def run() -> None:
        workflows = _define()
        _launch(Path(directory))
        started = time.perf_counter()
        with SetWorkflowID(REPLAY_WORKFLOW_ID):
            await DBOS.start_workflow_async(workflows.replay, steps)
        while not _passed.is_set():
            await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            rate = _executed[0] / elapsed
            if elapsed > RECORD_BUDGET_S or (
                elapsed > 10 and steps / max(rate, 1e-9) > RECORD_BUDGET_S
            ):
                print(f"slow {rate:.1f}", flush=True)
                os._exit(3)
        while await asyncio.to_thread(_sleeps_recorded, _database(Path(directory))) < 1:
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(run())


async def replay(directory: Path, steps: int) -> dict[str, Any]:
    """Resume a crashed workflow holding `steps` recorded steps, by relaunching DBOS.

    A child process records the history through DBOS as shipped and is SIGKILLed while its
    workflow sleeps; DBOS.launch() here then recovers the PENDING workflow. events_per_s is
    steps / (time from the recovered workflow's re-entry until it passes its recorded steps):
    DBOS's re-execution against its recorded outputs (one SELECT per step, no step body runs).
    resume_s adds what comes before it: launch, the recovery scan, and the internal queue's
    poll (1 s by default) that dispatches the recovered workflow (dispatch_s).
    """
    code = (
        "import sys; from benchmarks.peers import dbos_peer; "
        "dbos_peer._replay_child(sys.argv[1], int(sys.argv[2]))"
    )
    try:
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", code, str(Path(directory).resolve()), str(steps)],
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=RECORD_BUDGET_S + 60,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"recording {steps:,} steps timed out") from error
    slow = [line for line in child.stdout.splitlines() if line.startswith("slow ")]
    if slow:
        rate = float(slow[0].split()[1])
        raise Unsupported(
            f"recording {steps:,} steps through DBOS as shipped would take "
            f"~{steps / max(rate, 1e-9):,.0f} s at {rate:,.0f} steps/s, over this adapter's "
            f"{RECORD_BUDGET_S:.0f} s budget"
        )
    if "ready" not in child.stdout or child.returncode != -signal.SIGKILL:
        tail = " | ".join(child.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"first run failed (exit {child.returncode}): {tail}")

    _define()
    started = time.perf_counter()
    _launch(directory)  # recovers the pending workflow
    try:
        passed = await asyncio.to_thread(_passed.wait, REPLAY_BUDGET_S)
        if not passed:
            raise RuntimeError(f"recovery did not pass {steps:,} recorded steps in time")
    finally:
        _destroy()
    if _executed[0]:
        raise RuntimeError(f"recovery re-ran {_executed[0]} step bodies instead of replaying")
    replaying = _marks["passed"] - _marks["entered"]
    return {
        "events_per_s": steps / replaying,
        "resume_s": _marks["passed"] - started,
        "dispatch_s": _marks["entered"] - started,
    }


# --- self-check --------------------------------------------------------------------------------


def _main(argv: list[str]) -> None:
    self_check("benchmarks.peers.dbos_peer", argv, unavailable)


if __name__ == "__main__":
    _main(sys.argv[1:])
