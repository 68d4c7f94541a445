"""A queue's limits through SIGKILLs at moments hypothesis picks, three processes serving.

Three processes serve one queue (concurrency 2, at most 1 per key) on one directory; one of
them SIGKILLs itself the N-th time it reaches a chosen moment (queue_kill_app.py): while
admitting, right after an admission before the journal exists, mid-activity, while giving
a slot back, or after a workflow's end before its admission is removed. From the
activities' O_APPEND log the test checks: never more than 2 running at once nor 2 of one
key (a dead process's runs stop counting at its death line); no workflow runs in two live
processes at once, and each completes its activity once (a run cut by the kill may repeat:
activities are at least once); every workflow ends (no slot leaked); and nothing is left
waiting or admitted once all ended.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import durable
from durable._storage._queue_files import QueueFiles

from .queue_kill_app import LIMIT, job, queue

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("queue_kill_app.py")
JOBS = 8
KEYS = 3
POINTS = ["admitting", "admitted", "activity", "giving-back", "finishing"]


def _python(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(APP.parent.parent.parent)}
    return subprocess.Popen(
        [sys.executable, str(APP), *args], env=env, stdout=subprocess.PIPE, text=True
    )


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


async def _enqueue(directory: Path) -> None:
    async with durable.Runtime(directory) as runtime:
        for n in range(JOBS):
            await runtime.enqueue(queue, job, n, id=f"w-{n}", key=f"k{n % KEYS}")


def _lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def _ended(log: Path) -> set[str]:
    return {words[1] for words in _lines(log) if words[0] == "end"}


def check_log(lines: list[list[str]]) -> None:
    """The limits held, as the activities saw them (see the module docstring)."""
    running: dict[str, str] = {}  # workflow id -> the pid running its activity
    completions: dict[str, list[str]] = {}  # workflow id -> the pids that ended its activity
    dead: set[str] = set()
    for words in lines:
        if words[0] == "dead":
            running = {wid: pid for wid, pid in running.items() if pid != words[1]}
            dead.add(words[1])
            continue
        kind, workflow_id, pid = words
        if pid in dead:
            # (another of its threads wrote between its "dead" and the SIGKILL landing: that
            # activity dies with it, holding slots only until then, before any other start)
            if kind == "end":
                completions.setdefault(workflow_id, []).append(pid)
            continue
        if kind == "start":
            assert workflow_id not in running, f"{workflow_id} runs twice at once: {lines}"
            running[workflow_id] = pid
            assert len(running) <= LIMIT, f"{sorted(running)} at once over {LIMIT}: {lines}"
            key = int(workflow_id.split("-")[1]) % KEYS
            same_key = [wid for wid in running if int(wid.split("-")[1]) % KEYS == key]
            assert len(same_key) <= 1, f"{same_key} share key k{key}: {lines}"
        else:
            assert running.pop(workflow_id) == pid
            completions.setdefault(workflow_id, []).append(pid)
    assert sorted(completions) == sorted(f"w-{n}" for n in range(JOBS)), lines
    for workflow_id, pids in completions.items():
        # Once more only after a process that died: its result may not have been journaled
        # before the kill (activities are at least once), never after a live one's.
        assert all(pid in dead for pid in pids[:-1]), f"{workflow_id} ended in {pids}: {lines}"


NO_SHRINKING = [Phase.explicit, Phase.reuse, Phase.generate]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=NO_SHRINKING,
)
@given(point=st.sampled_from(POINTS), nth=st.integers(1, 3))
def test_limits_hold_through_a_sigkill_at_any_moment(
    tmp_path_factory: pytest.TempPathFactory, point: str, nth: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("kill")
    directory, log = tmp_path / "journals", tmp_path / "log"
    asyncio.run(_enqueue(directory))
    victim = _python(str(directory), str(log), "serve", point, str(nth))
    others: list[subprocess.Popen[str]] = []
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "serving"
        _wait_for(lambda: bool(_lines(log)) or victim.poll() is not None, 30, "a first start")
        others = [_python(str(directory), str(log), "serve") for _ in range(2)]
        _wait_for(lambda: len(_ended(log)) == JOBS, 60, f"every workflow to end: {_lines(log)}")
        check_log(_lines(log))
        queue_files = directory / "queues" / "kill-points"
        assert not os.listdir(queue_files / "waiting")
        # (an admission left by a process killed at its workflow's end: a live runtime
        # forgets it at its next look)
        _wait_for(lambda: not os.listdir(queue_files / "admitted"), 10, "admitted/ to empty")
    finally:
        for process in [victim, *others]:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def test_the_log_check_catches_an_overlap() -> None:
    """check_log is able to fail: three at once, and a dead process's run not counted."""
    lines = [["start", "w-0", "1"], ["start", "w-1", "2"], ["start", "w-2", "3"]]
    with pytest.raises(AssertionError, match="over 2"):
        check_log(lines)
    with pytest.raises(AssertionError, match="share key"):
        check_log([["start", "w-0", "1"], ["start", "w-3", "2"]])
    # (a line of a process after its "dead": its last moments, not a run that goes on)
    check_log(
        [
            ["start", "w-1", "1"],
            ["dead", "1"],
            ["start", "w-0", "1"],
            *[
                line
                for n in range(JOBS)
                for line in (["start", f"w-{n}", "2"], ["end", f"w-{n}", "2"])
            ],
        ]
    )
    fine = [["start", "w-0", "1"], ["dead", "1"], ["start", "w-0", "2"], ["end", "w-0", "2"]]
    with pytest.raises(AssertionError):  # (only w-0 completed)
        check_log(fine)
    every = [
        line for n in range(JOBS) for line in (["start", f"w-{n}", "2"], ["end", f"w-{n}", "2"])
    ]
    # An activity ended by a process that then died (its result maybe never journaled) may
    # run again; one a live process ended may not.
    check_log([["start", "w-0", "1"], ["end", "w-0", "1"], ["dead", "1"], *every])
    with pytest.raises(AssertionError, match="w-0 ended in"):
        check_log([["start", "w-0", "3"], ["end", "w-0", "3"], *every])


def test_processes_recovering_at_once_start_an_orphaned_admission_once(tmp_path: Path) -> None:
    """An admission whose admitter died before the journal began: three processes call
    recover() at the same moment; its activity runs once, in one of them."""
    directory, log = tmp_path / "journals", tmp_path / "log"
    asyncio.run(_enqueue(directory))
    files = QueueFiles(directory, "kill-points", create=False)
    try:
        orphans = [f"w-{n}" for n in range(JOBS)]
        for workflow_id in orphans:  # (every request admitted, none begun)
            assert files.claim(workflow_id)
    finally:
        files.close()
    env = {**os.environ, "PYTHONPATH": str(APP.parent.parent.parent)}
    recovering = [
        subprocess.Popen(
            [sys.executable, str(APP), str(directory), str(log), "recover"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for process in recovering:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in recovering:  # (go: as close together as the test can)
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        taken = []
        for process in recovering:
            assert process.stdout is not None
            taken += process.stdout.readline().split()
            assert process.wait(timeout=60) == 0
        check_log(_lines(log))  # (each completed once, never two at once, limits held)
        assert set(taken) == set(orphans)  # (each started by one; a later one may replay it)
        assert not os.listdir(directory / "queues" / "kill-points" / "admitted")
    finally:
        for process in recovering:
            if process.poll() is None:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
