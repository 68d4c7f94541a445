"""Unloaded sleepers held by name locks alone: never two runners, taken over after a death.

A process starts a dozen workflows that sleep twice (each sleep unloads them: their journals'
descriptors closed, held by the name locks; each wake-up reopens and flocks the journal) while
other processes recover and follow the same ids; the test SIGKILLs or SIGSTOPs them at
moments hypothesis picks. Checked from the activities' ledger and the processes' output, as
in test_one_runner: never two processes with an attempt of one workflow in flight at once
(unless the first was killed), every surviving process prints every real result, and a last
process finds every workflow finished.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_one_runner import NO_SHRINKING, check_ledger, check_results

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("sleeper_lock_app.py")
IDS = 12


@dataclass(frozen=True)
class Plan:
    """One process: its mode, when it starts, and what the test does to it, when."""

    mode: str
    delay: float
    fault: str  # "none", "kill" or "stop"
    fault_at: float
    stopped_for: float


plans = st.builds(
    Plan,
    mode=st.sampled_from(["start", "recover"]),
    delay=st.floats(0.0, 0.6),
    fault=st.sampled_from(["none", "kill", "stop"]),
    fault_at=st.floats(0.2, 1.2),
    stopped_for=st.floats(0.2, 1.5),
)


def launch(directory: Path, ledger: Path, mode: str, ids: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(APP), str(directory), str(ledger), mode, *ids],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def play(directory: Path, ledger: Path, chosen: list[Plan], ids: list[str]) -> list[str]:
    """Run the processes of `chosen` with their faults; the output of those not killed."""
    began = time.monotonic()
    events = sorted(
        [(plan.delay, "launch", index) for index, plan in enumerate(chosen)]
        + [(p.delay + p.fault_at, p.fault, i) for i, p in enumerate(chosen) if p.fault != "none"]
        + [
            (p.delay + p.fault_at + p.stopped_for, "continue", i)
            for i, p in enumerate(chosen)
            if p.fault == "stop"
        ]
    )
    processes: dict[int, subprocess.Popen[str]] = {}
    killed: set[int] = set()
    for at, action, index in events:
        time.sleep(max(0.0, at - (time.monotonic() - began)))
        if action == "launch":
            processes[index] = launch(directory, ledger, chosen[index].mode, ids)
            continue
        process = processes[index]
        if process.poll() is not None:
            continue
        if action == "kill":
            process.kill()
            process.wait()
            killed.add(index)
            with ledger.open("a") as file:
                file.write(f"killed - - - {process.pid}\n")
        elif action == "stop":
            process.send_signal(signal.SIGSTOP)
        else:
            process.send_signal(signal.SIGCONT)
    outputs = []
    for index, process in processes.items():
        output, errors = process.communicate(timeout=60)
        if index in killed:
            continue
        assert process.returncode == 0, f"{chosen[index]} failed:\n{errors}"
        outputs.append(output)
    return outputs


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=NO_SHRINKING,
)
@given(
    holder=plans.filter(lambda plan: plan.mode == "start"),
    others=st.lists(plans, min_size=2, max_size=2),
)
def test_sleepers_held_by_name_locks_have_one_runner(
    tmp_path_factory: pytest.TempPathFactory, holder: Plan, others: list[Plan]
) -> None:
    where = tmp_path_factory.mktemp("sleeper-locks")
    directory, ledger = where / "journals", where / "ledger"
    ids = [f"{uuid.uuid4().hex[:6]}-{n}" for n in range(IDS)]
    for output in play(directory, ledger, [holder, *others], ids):
        check_results(output, may_be_absent=True)
    final = launch(directory, ledger, "start", ids)
    output, errors = final.communicate(timeout=60)
    assert final.returncode == 0, errors
    check_results(output, may_be_absent=False)
    check_ledger(ledger, ids, exclusive=True)
