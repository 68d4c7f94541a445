"""A schedule served by several processes on one directory, and SIGKILLed mid-fire.

Every process starts the schedule (as an application does at start-up); one runs it, the
others follow it and take it over when it stops or dies. From the ledger the fires'
activities write (the outside world): each fire time's workflow ran in one process at a
time and ended exactly once, and no fire time between the first and the last is missing.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("schedule_app.py")


def spawn(directory: Path, ledger: Path, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(APP), str(directory), str(ledger), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.startswith("started"), (out, err)


def read_ledger(ledger: Path) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """fire id -> "began"/"ended" -> [(idempotency key, pid)]."""
    fires: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for line in ledger.read_text().splitlines():
        what, fire_id, key, pid = line.split()
        fires[fire_id][what].append((key, pid))
    return fires


def check_each_fire_once(fires: dict[str, dict[str, list[tuple[str, str]]]]) -> None:
    assert len(fires) >= 3
    for fire_id, notes in fires.items():
        assert len(notes["ended"]) <= 1, (fire_id, notes)  # never ended twice
        assert len({key for key, _ in notes["began"]}) == 1, (fire_id, notes)  # one run
    # Every fire ended, but those the last process's close() stopped mid-way (they resume
    # when a runtime starts the schedule again): its last second's.
    unfinished = sorted(fire_id for fire_id, notes in fires.items() if not notes["ended"])
    assert unfinished == sorted(fires)[len(fires) - len(unfinished) :], unfinished
    assert len(unfinished) <= 2, unfinished
    seconds = sorted(
        datetime.strptime(fire_id.split("@")[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        for fire_id in fires
    )
    gaps = [b - a for a, b in itertools.pairwise(seconds)]
    assert all(gap.total_seconds() == 1 for gap in gaps), seconds  # none missing


def wait_for(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_processes_serving_one_directory_start_each_fire_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    first = spawn(tmp_path / "journals", ledger, 3.0)
    wait_for(ledger.exists)  # (the first runs the schedule: a fire began)
    second = spawn(tmp_path / "journals", ledger, 4.0)  # (follows; takes over at 3 s)
    finish(first)
    finish(second)
    fires = read_ledger(ledger)
    check_each_fire_once(fires)
    pids = {pid for notes in fires.values() for _, pid in notes["began"]}
    assert pids == {str(first.pid), str(second.pid)}  # both ran it, one at a time
    ran = {fire_id: {pid for _, pid in notes["began"]} for fire_id, notes in fires.items()}
    assert all(len(pids_of) == 1 for pids_of in ran.values())


def test_a_fire_sigkilled_mid_way_ends_once_after_a_restart(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    doomed = spawn(tmp_path / "journals", ledger, 60.0)

    def mid_fire() -> bool:  # a fire began (journaled) and sleeps: not ended
        if not ledger.exists():
            return False
        fires = read_ledger(ledger)
        return len(fires) >= 2 and any(not notes["ended"] for notes in fires.values())

    wait_for(mid_fire)
    time.sleep(0.1)  # (its "began" outcome journaled: the kill lands in its sleep)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate(timeout=30)
    killed = {f for f, notes in read_ledger(ledger).items() if not notes["ended"]}
    assert killed
    time.sleep(1.5)  # (a fire time passes while nothing runs: caught up after restart)
    finish(spawn(tmp_path / "journals", ledger, 3.0))
    fires = read_ledger(ledger)
    check_each_fire_once(fires)
    for fire_id in killed:  # resumed after the kill (one run: one key), ended elsewhere
        (ended,) = fires[fire_id]["ended"]
        assert ended[1] != str(doomed.pid)


def test_the_process_running_a_schedule_sigkilled_mid_fire_is_taken_over(tmp_path: Path) -> None:
    """Two processes serve the schedule; the one running it dies mid-fire: the other takes
    the schedule and the cut fire over, and no fire time starts twice."""
    ledger = tmp_path / "ledger"
    doomed = spawn(tmp_path / "journals", ledger, 60.0)
    wait_for(ledger.exists)  # (it runs the schedule: a fire began)
    survivor = spawn(tmp_path / "journals", ledger, 5.0)

    def mid_fire() -> bool:  # one of the doomed process's fires began and sleeps
        fires = read_ledger(ledger)
        return len(fires) >= 2 and any(
            not notes["ended"] and notes["began"][0][1] == str(doomed.pid)
            for notes in fires.values()
        )

    wait_for(mid_fire)
    time.sleep(0.1)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate(timeout=30)
    killed = {
        fire_id
        for fire_id, notes in read_ledger(ledger).items()
        if not notes["ended"] and notes["began"][0][1] == str(doomed.pid)
    }
    assert killed
    finish(survivor)
    fires = read_ledger(ledger)
    check_each_fire_once(fires)
    began_after = {
        fire_id for fire_id, notes in fires.items() if notes["began"][0][1] == str(survivor.pid)
    }
    assert began_after  # (the survivor went on firing)
    for fire_id in killed:  # (the cut fires resumed and ended in the survivor)
        (ended,) = fires[fire_id]["ended"]
        assert ended[1] == str(survivor.pid)
