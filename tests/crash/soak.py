"""A soak of serving processes on one PostgreSQL database, under chaos.

    python -m tests.crash.soak --minutes 5 --processes 4 [--dsn DSN]

Runs P serving processes (tests/crash/soak_app.py) on one database (a throwaway cluster of
its own when no DSN is given: only then are there server restarts) for M minutes, while it
submits workflows (each with a child, an event, a retried step and a continue-as-new) and,
at random, SIGKILLs processes (a new one takes each one's place), SIGSTOPs them for longer
than the lease, restarts them (SIGTERM, then a new one), and restarts the server (fast or
immediate). Then the chaos stops, every workflow must end within a grace period, and the
ledger the activities wrote (the outside world: it survives SIGKILL and SIGSTOP) must show:

- no step whose result was recorded ran again after that result was recorded;
- every recorded result comes from an attempt that finished, and nothing recorded was lost
  (every attempt of a step saw the one recorded result of the step before it);
- no two runs of a workflow overlapped (attempts of one workflow in flight in two processes
  at once), except an attempt already in flight when its process was paused (or begun
  just before: its first line written within a second of SIGCONT), or one in
  flight when its runner's lease may have lapsed, which the runner cancelled then (it says
  so in its log, with the time): the other may start only after that time, and the
  overlap is the time the cancellation took to land (its loop's latency);
- nothing is stuck, and no serving process exited on its own.

It prints its counts and PASS or FAIL (exit status 0 or 1). It lives with the crash tests
(not in benchmarks/) because it is a test: a verdict, not a figure, built on their pieces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from durable import PostgresStore, Runtime
from durable._encoding import decode
from tests.postgres_server import Cluster, binaries, restartable_cluster

from .soak_app import child, parent

T = TypeVar("T")
ROOT = Path(__file__).parents[2]
APP = [sys.executable, "-m", "tests.crash.soak_app"]
STEPS_PER_WORKFLOW = 9  # (6 in the first generation, three of them the child's; 3 in the next)
AFTER_CONT = 1.0  # seconds: a start this soon after SIGCONT may be an attempt begun before


@dataclasses.dataclass
class Attempt:
    key: str
    pid: int
    number: int
    start: float
    prev: str
    end: float | None = None
    outcome: str | None = None

    @property
    def workflow(self) -> str:
        return self.key.split("/", 1)[0]


@dataclasses.dataclass
class Chaos:
    """What the soak did, and when (time.time()), per pid."""

    kills: dict[int, float] = dataclasses.field(default_factory=dict)
    stops: list[tuple[int, float, float]] = dataclasses.field(
        default_factory=list
    )  # pid, stop, cont
    restarts: int = 0
    server_restarts: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"fast": 0, "immediate": 0}
    )
    unexpected_exits: list[str] = dataclasses.field(default_factory=list)
    spawned: int = 0
    outages: list[tuple[float, float]] = dataclasses.field(
        default_factory=list
    )  # server restarts: from the stop's start until it accepts connections again


class Fleet:
    """The serving processes: started, killed, paused, restarted; any that exits on its own
    is noted (with the end of its log) and replaced."""

    def __init__(
        self, dsn: str, ledger: Path, logs: Path, lease: float, chaos: Chaos, step: float = 0.25
    ) -> None:
        self.dsn, self.ledger, self.logs, self.lease, self.chaos = dsn, ledger, logs, lease, chaos
        self.step = step  # (the longest an activity attempt runs, seconds)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.stopped: dict[int, float] = {}  # pid -> when to SIGCONT it (time.time())
        self.stopping: set[int] = set()  # pids sent SIGTERM
        self._log_of: dict[int, Path] = {}

    def spawn(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{self.chaos.spawned}.log"
        self.chaos.spawned += 1
        with log.open("wb") as output:
            worker = subprocess.Popen(
                [*APP, self.dsn, str(self.ledger), str(self.lease), str(self.step)],
                stdout=subprocess.DEVNULL,
                stderr=output,
                cwd=ROOT,
            )
        self._log_of[worker.pid] = log
        self.workers.append(worker)
        return worker

    def running(self) -> list[subprocess.Popen[bytes]]:
        busy = self.stopped.keys() | self.stopping
        return [w for w in self.workers if w.pid not in busy]

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        worker.send_signal(signal.SIGKILL)
        self.chaos.kills[worker.pid] = time.time()
        worker.wait()
        self.workers.remove(worker)
        self.spawn()

    def stop(self, worker: subprocess.Popen[bytes], seconds: float) -> None:
        worker.send_signal(signal.SIGSTOP)
        now = time.time()
        self.stopped[worker.pid] = now + seconds
        self.chaos.stops.append((worker.pid, now, float("inf")))

    def wake_due(self, everyone: bool = False) -> None:
        now = time.time()
        for worker in self.workers:
            cont_at = self.stopped.get(worker.pid)
            if cont_at is not None and (everyone or cont_at <= now):
                worker.send_signal(signal.SIGCONT)
                del self.stopped[worker.pid]
                for index, (pid, stopped, cont) in enumerate(self.chaos.stops):
                    if pid == worker.pid and cont == float("inf"):
                        self.chaos.stops[index] = (pid, stopped, time.time())

    async def restart(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGTERM (the runtime closes, giving its leases back), then a new process."""
        self.stopping.add(worker.pid)
        worker.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        deadline = sent + 30
        while worker.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if worker.poll() is None:
            self.chaos.unexpected_exits.append(
                f"{worker.pid} did not stop within 30 s of SIGTERM (its tasks and threads: "
                f"{self._log_of[worker.pid]})"
            )
            worker.send_signal(signal.SIGUSR1)  # (its tasks' stacks, then its threads')
            await asyncio.sleep(1)
            worker.send_signal(signal.SIGUSR2)
            await asyncio.sleep(1)
            worker.send_signal(signal.SIGKILL)
            self.chaos.kills[worker.pid] = time.time()
            worker.wait()
        self.workers.remove(worker)
        self.chaos.restarts += 1
        self.spawn()
        with (self.logs / "chaos.log").open("a") as log:
            log.write(f"  {worker.pid} stopped in {time.monotonic() - sent:.2f} s\n")

    def check_alive(self) -> None:
        for worker in list(self.workers):
            if worker.pid not in self.stopping and worker.poll() is not None:
                tail = self._log_of[worker.pid].read_text(errors="replace")[-1500:]
                self.chaos.unexpected_exits.append(
                    f"{worker.pid} exited by itself ({worker.returncode}): {tail}"
                )
                self.workers.remove(worker)
                self.spawn()

    def end(self) -> None:
        self.wake_due(everyone=True)
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


async def retrying(what: Callable[[], Awaitable[T]], attempts_until: float) -> T:
    """Await what() until it succeeds (the server may be restarting), or the deadline."""
    while True:
        try:
            return await what()
        except Exception:
            if time.monotonic() > attempts_until:
                raise
            await asyncio.sleep(0.2)


async def submitter(
    dsn: str, prefix: str, rate: float, until: float, submitted: list[str], lease: float
) -> None:
    """Submit a workflow every 1/rate s until `until` (monotonic); send each its "go" event
    a random 0-2 s later. Through server restarts: each call is retried (both idempotent)."""
    pending: list[tuple[float, str]] = []
    async with Runtime(store=PostgresStore(dsn, lease=lease), workflows=[parent, child]) as rt:
        number = 0
        next_at = time.monotonic()
        while time.monotonic() < until or pending:
            now = time.monotonic()
            if now >= next_at and now < until:
                workflow_id = f"{prefix}-{number:05d}"
                submit = functools.partial(rt.submit, parent, number, 0, [], id=workflow_id)
                await retrying(submit, now + 120)
                submitted.append(workflow_id)
                pending.append((now + random.uniform(0, 2), workflow_id))
                number += 1
                next_at += 1 / rate
            for entry in [p for p in pending if p[0] <= now]:
                send = functools.partial(rt.send_event, entry[1], "go", "yes", event_id="go")
                await retrying(send, now + 120)
                pending.remove(entry)
            await asyncio.sleep(0.02)


async def chaos_loop(
    fleet: Fleet,
    cluster: Cluster | None,
    until: float,
    gap: tuple[float, float],
    script: list[tuple[float, str]] | None = None,
) -> None:
    """Random actions every `gap` s until `until`; or, given a script, its (seconds after
    the start, action) in order ("kill", "stop", "restart", "server fast", "server
    immediate")."""
    actions = ["kill", "stop", "restart"] + (["server"] if cluster is not None else [])
    weights = [0.3, 0.35, 0.2] + ([0.15] if cluster is not None else [])
    began = time.monotonic()
    planned = list(script or [])
    next_at = began + (planned[0][0] if planned else random.uniform(*gap))
    background: set[asyncio.Future[None]] = set()
    server: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server.set_result(None)
    while time.monotonic() < until:
        fleet.wake_due()
        fleet.check_alive()
        if time.monotonic() < next_at:
            await asyncio.sleep(0.05)
            continue
        if script is None:
            next_at = time.monotonic() + random.uniform(*gap)
            action = random.choices(actions, weights)[0]
        elif planned:
            action = planned.pop(0)[1]
            next_at = began + planned[0][0] if planned else float("inf")
        running = fleet.running()
        with (fleet.logs / "chaos.log").open("a") as log:
            log.write(f"{time.monotonic() - began:.2f} {action}\n")
        if action == "kill" and running:
            fleet.kill(random.choice(running))
        elif action == "stop" and len(running) > 1:  # (one always runs)
            fleet.stop(random.choice(running), random.uniform(1.2, 2.5) * fleet.lease)
        elif action == "restart" and running:  # (meanwhile the loop goes on: SIGCONTs)
            background.add(asyncio.ensure_future(fleet.restart(random.choice(running))))
        elif action.startswith("server") and cluster is not None and server.done():
            mode = action.split()[1] if " " in action else random.choice(["fast", "immediate"])
            server = asyncio.ensure_future(restart_server(cluster, mode, fleet.chaos))
            background.add(server)
            fleet.chaos.server_restarts[mode] += 1
    await asyncio.gather(*background)
    fleet.wake_due(everyone=True)


async def restart_server(cluster: Cluster, mode: str, chaos: Chaos) -> None:
    down = time.time()
    await asyncio.to_thread(cluster.restart, mode)
    chaos.outages.append((down, time.time()))


async def journal_rows(dsn: str, prefix: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(
            await connection.fetch(
                "SELECT name, done, fence FROM durable_journals WHERE name LIKE $1 ORDER BY name",
                f"{prefix}-%",
            )
        )
    finally:
        await connection.close()


async def outcomes(dsn: str, names: list[str]) -> dict[str, object]:
    async with PostgresStore(dsn) as store:
        found: dict[str, object] = {}
        for name in names:
            last = (await store.read(name))[-1]
            found[name] = decode(last.payload, path=name, offset=last.offset)
        return found


def read_ledger(ledger: Path) -> list[Attempt]:
    attempts: list[Attempt] = []
    open_ones: dict[tuple[str, int, int], Attempt] = {}
    for line in ledger.read_text().splitlines():
        event, key, pid, number, at, extra = line.split()
        identity = (key, int(pid), int(number))
        if event == "start":
            attempt = Attempt(key, int(pid), int(number), float(at), extra)
            attempts.append(attempt)
            open_ones[identity] = attempt
        elif (attempt_of := open_ones.pop(identity, None)) is not None:
            attempt_of.end, attempt_of.outcome = float(at), extra
    return attempts


LAPSE = re.compile(
    r"^\S+ \S+ (?P<pid>\d+) workflow (?P<workflow>\S+): this runner's lease may have lapsed "
    r"\(at (?P<at>[\d.]+), time.time\(\)\): activity '[^']*' attempt (?P<attempt>\d+)"
)


@dataclasses.dataclass(frozen=True)
class Lapse:
    """A runner cancelled an attempt in flight: its lease may have lapsed at `at` (its log)."""

    pid: int
    workflow: str
    attempt: int
    at: float


def read_lapses(workdir: Path) -> list[Lapse]:
    """The cancellations for a lapsed lease the serving processes logged."""
    return [
        Lapse(int(m["pid"]), m["workflow"], int(m["attempt"]), float(m["at"]))
        for log in sorted(workdir.glob("worker-*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if (m := LAPSE.match(line))
    ]


@dataclasses.dataclass
class Verdict:
    failures: list[str]
    counts: dict[str, object]


def check(
    attempts: list[Attempt],
    ends: Mapping[str, object],
    chaos: Chaos,
    steps: int = STEPS_PER_WORKFLOW,
    lapses: Sequence[Lapse] = (),
) -> Verdict:
    """The ledger checks (see the module), from the attempts and the workflows' outcomes
    (and the runners' cancellations of attempts in flight as their leases lapsed)."""
    failures: list[str] = []
    recorded: dict[str, tuple[int, int]] = {}  # key -> (pid, attempt) of its recorded result
    for name, end in ends.items():
        if not (isinstance(end, dict) and end.get("k") == "end" and "cont" not in end):
            failures.append(f"{name} did not end: {end!r}"[:300])
            continue
        result = end.get("r")
        if not isinstance(result, list) or len(result) != steps:
            failures.append(f"{name} ended with {result!r}"[:300])
            continue
        for key, made_by in result:
            pid, number = made_by.split(":")
            recorded[key] = (int(pid), int(number))
    by_key: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_key[attempt.key].append(attempt)
    continued = defaultdict(list)  # pid -> [(stopped, continued)]
    for pid, stopped, cont in chaos.stops:
        continued[pid].append((stopped, cont))

    def begun_before_a_pause(attempt: Attempt, before: float) -> bool:
        return any(
            stopped < before and cont <= attempt.start <= cont + AFTER_CONT
            for stopped, cont in continued[attempt.pid]
        )

    excused = 0
    for key, (pid, number) in recorded.items():
        finished = [
            a.end
            for a in by_key.get(key, [])
            if a.pid == pid and a.number == number and a.outcome == "ok" and a.end is not None
        ]
        if not finished:
            failures.append(
                f"{key}: its recorded result ({pid}:{number}) is of no finished attempt"
            )
            continue
        recorded_end = max(finished)
        for attempt in by_key[key]:
            if attempt.start > recorded_end:
                if begun_before_a_pause(attempt, recorded_end):
                    excused += 1
                else:
                    failures.append(f"{key} ran again after its result was recorded: {attempt}")
    for attempt in attempts:
        if attempt.prev == "-":
            continue
        prev_key, prev_result = attempt.prev.split("=")
        pid, number = prev_result.split(":")
        if prev_key in recorded and recorded[prev_key] != (int(pid), int(number)):
            failures.append(
                f"{attempt.key} ({attempt.pid}) went on from {attempt.prev}, but "
                f"{recorded[prev_key]} was recorded (a recorded result lost, or one never "
                "recorded used)"
            )

    # Overlaps: attempts of one workflow in flight in two processes at once.
    def in_flight_until(attempt: Attempt) -> float:
        if attempt.end is not None:
            return attempt.end
        return chaos.kills.get(attempt.pid, float("inf"))

    def paused_during(attempt: Attempt) -> bool:
        until = in_flight_until(attempt)
        return any(attempt.start <= s <= until for s, _ in continued[attempt.pid])

    def lapsed_during(first: Attempt, second: Attempt) -> float | None:
        """When `first`'s runner said its lease may have lapsed and cancelled it, if it
        did and `second` started after that (else None: not excused)."""
        if first.outcome != "cancel" or first.end is None:
            return None
        for lapse in lapses:
            if (
                (lapse.pid, lapse.workflow, lapse.attempt)
                == (first.pid, first.workflow, first.number)
                and first.start <= lapse.at <= first.end
                and lapse.at <= second.start
            ):
                return lapse.at
        return None

    by_workflow: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_workflow[attempt.workflow].append(attempt)
    overlaps = 0
    late_overlaps = 0
    cancelled_late: list[float] = []  # (how long a lapse's cancellation took, when it overlapped)
    for workflow, its in by_workflow.items():
        its.sort(key=lambda a: a.start)
        for index, first in enumerate(its):
            for second in its[index + 1 :]:
                if second.start >= in_flight_until(first):
                    continue
                if second.pid == first.pid or paused_during(first) or paused_during(second):
                    continue
                if any(begun_before_a_pause(a, a.start) for a in (first, second)):
                    late_overlaps += 1  # (checked before the pause, its first line after it)
                    continue
                if (lapsed_at := lapsed_during(first, second)) is not None:
                    assert first.end is not None
                    cancelled_late.append(first.end - lapsed_at)
                    continue
                overlaps += 1
                if overlaps <= 10:
                    failures.append(f"{workflow}: two runs at once: {first} and {second}")
    if overlaps > 10:
        failures.append(f"... {overlaps} overlaps in all")
    failures += [f"a serving process: {what}" for what in chaos.unexpected_exits]
    counts: dict[str, object] = {
        "attempts": len(attempts),
        "steps recorded": len(recorded),
        "steps attempted in more than one process": sum(
            1 for key in recorded if len({a.pid for a in by_key.get(key, [])}) > 1
        ),
        "late starts of a paused process (excused)": excused,
        "overlaps with a late start of a paused process (excused)": late_overlaps,
        "attempts cancelled as their lease lapsed": len(lapses),
        "of which overlapped a new runner's (excused)": len(cancelled_late),
        "their longest cancellation after the lapse (s)": round(max(cancelled_late, default=0), 3),
    }
    return Verdict(failures, counts)


@dataclasses.dataclass
class Report:
    failures: list[str]
    figures: dict[str, object]
    chaos: Chaos


@contextlib.contextmanager
def database(dsn: str | None) -> Iterator[tuple[str, Cluster | None]]:
    """The given DSN; else a fresh throwaway cluster (its `postgres` database) to restart."""
    if dsn is not None:
        yield dsn, None
        return
    bindir = binaries()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries here: give --dsn, or apt-get install postgresql")
    with restartable_cluster(bindir) as cluster:
        yield cluster.dsn, cluster


async def soak(
    dsn: str,
    cluster: Cluster | None,
    *,
    seconds: float,
    processes: int,
    lease: float,
    step_seconds: float = 0.25,
    rate: float,
    grace: float,
    workdir: Path,
    gap: tuple[float, float] = (1.0, 3.0),
    script: list[tuple[float, str]] | None = None,
    out: Callable[[str], Any] = print,
) -> Report:
    say = out  # (a callable taking a line)
    prefix = f"soak-{uuid.uuid4().hex[:6]}"
    ledger = workdir / "ledger"
    ledger.touch()
    chaos = Chaos()
    fleet = Fleet(dsn, ledger, workdir, lease, chaos, step_seconds)
    submitted: list[str] = []
    started = time.monotonic()
    async with PostgresStore(dsn):  # (the tables, before the fleet races to make them)
        pass
    for _ in range(processes):
        fleet.spawn()
    until = started + seconds
    try:
        await asyncio.gather(
            submitter(dsn, prefix, rate, until, submitted, lease),
            chaos_loop(fleet, cluster, until, gap, script),
        )
        say(f"chaos over after {time.monotonic() - started:.0f} s; waiting for the workflows")
        stuck: list[str] = []
        grace_until = time.monotonic() + grace
        while True:
            fleet.check_alive()
            rows = await retrying(lambda: journal_rows(dsn, prefix), grace_until)
            stuck = [row["name"] for row in rows if not row["done"]]
            if not stuck or time.monotonic() > grace_until:
                break
            await asyncio.sleep(0.5)
        ended_after = time.monotonic() - until
        fleet.check_alive()
    finally:
        fleet.end()
    parents = list(submitted)
    (workdir / "chaos.json").write_text(json.dumps(dataclasses.asdict(chaos)))  # (post-mortems)
    ends = await outcomes(dsn, parents)
    attempts = read_ledger(ledger)
    verdict = check(attempts, ends, chaos, lapses=read_lapses(workdir))
    if stuck:
        verdict.failures.append(f"{len(stuck)} workflows stuck after {grace:.0f} s: {stuck[:10]}")
    claims = sum(int(row["fence"]) for row in rows)

    def logged(what: str) -> int:
        return sum(log.read_text(errors="replace").count(what) for log in workdir.glob("worker-*"))

    figures = {
        "minutes": round(seconds / 60, 2),
        "serving processes": processes,
        "lease (s)": lease,
        "longest step (s)": step_seconds,
        "workflows": len(parents),
        "journals (with children)": len(rows),
        "SIGKILLs": len(chaos.kills),
        "SIGSTOPs (longer than the lease)": len(chaos.stops),
        "restarts (SIGTERM)": chaos.restarts,
        "server restarts fast": chaos.server_restarts["fast"],
        "server restarts immediate": chaos.server_restarts["immediate"],
        "claims (sum of fences)": claims,
        "takeovers (a runner told its journal was taken over)": logged("was taken over"),
        "leases lapsed (a runner told its lease may have lapsed)": logged("may have lapsed"),
        "store outages logged (serve, poller)": logged("journal store is unavailable"),
        **verdict.counts,
        "all ended within (s) of the chaos's end": round(ended_after, 1),
    }
    for name, value in figures.items():
        say(f"  {name}: {value}")
    for failure in verdict.failures[:30]:
        say(f"FAILURE: {failure}")
    if any("two runs at once" in failure for failure in verdict.failures):
        for down, back in chaos.outages:
            say(f"  the server was away from {down:.6f} to {back:.6f} (time.time())")
        for line in what_the_runners_said(workdir, verdict.failures):
            say(f"  said: {line}")
    say("PASS" if not verdict.failures else f"FAIL ({len(verdict.failures)} failures)")
    return Report(verdict.failures, figures, chaos)


def what_the_runners_said(workdir: Path, failures: list[str], most: int = 60) -> list[str]:
    """The serving processes' log lines about the workflows of overlap failures (leases
    lapsed, takeovers, outages, with their times and pids): the sequence of events a "two
    runs at once" needs to be judged (a runner that held the workflow, or a late attempt of
    one whose lease had lapsed), kept in the failure's output."""
    workflows = {f.split(":", 1)[0] for f in failures if "two runs at once" in f}
    if not workflows:
        return []
    said = [
        line[:400]
        for log in sorted(workdir.glob("worker-*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if any(f"workflow {name}:" in line or f"'{name}'" in line for name in workflows)
        or "journal store is unavailable" in line
        or "journal store answers again" in line
    ]
    return sorted(said)[:most]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.crash.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--dsn", default=None, help="a database of your own (no server restarts)")
    parser.add_argument("--lease", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument("--rate", type=float, default=1.5, help="workflows submitted a second")
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=0.25,
        help="the longest an activity attempt runs (default 0.25; near the lease, attempts "
        "are often in flight as leases lapse)",
    )
    parser.add_argument("--grace", type=float, default=90.0, help="seconds for all to end")
    parser.add_argument("--keep", type=Path, default=None, help="keep the ledger and logs here")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # (asyncpg's pool, during server restarts)
    with database(options.dsn) as (dsn, cluster):
        workdir = options.keep or Path(tempfile.mkdtemp(prefix="durable-soak-"))
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"soak: {options.processes} processes, {options.minutes} min, ledger in {workdir}")
        report = asyncio.run(
            soak(
                dsn,
                cluster,
                seconds=options.minutes * 60,
                processes=options.processes,
                lease=options.lease,
                step_seconds=options.step_seconds,
                rate=options.rate,
                grace=options.grace,
                workdir=workdir,
            )
        )
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
