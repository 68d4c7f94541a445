"""One runner per workflow, whatever several processes do to the same ids.

Three processes `run`, `start` and `recover` (then follow with `handle`) the same two
workflows at once, on a directory and on PostgreSQL, while the test SIGKILLs or SIGSTOPs
them at moments hypothesis picks. Each workflow runs an activity, sleeps long enough to be
unloaded, and runs another. Checked, from the ledger the activities write (the outside
world) and what every process prints:

- on a directory, never two processes with an attempt of one workflow in flight at once
  (unless the first was killed): an unloaded sleeper keeps its lock, a paused process keeps
  it too; on PostgreSQL, no step starts again once the workflow moved past it;
- every process that was not killed prints the workflow's real result for every id, never
  WorkflowAlreadyRunning: handles follow the run wherever it is, and take it over;
- a last process (`run`) finds every workflow finished with that result, or finishes it.
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
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("one_runner_app.py")
STEPS = ["a", "b"]
# Each example runs processes for seconds: shrinking a failure would take many minutes, and
# the plan hypothesis prints is small enough to read as it is.
NO_SHRINKING = [Phase.explicit, Phase.reuse, Phase.generate]


@dataclass(frozen=True)
class Plan:
    """One process: how it takes the ids, when it starts, and what the test does to it."""

    mode: str
    delay: float
    fault: str  # "none", "kill" or "stop"
    fault_at: float
    stopped_for: float


plans = st.builds(
    Plan,
    mode=st.sampled_from(["run", "start", "recover"]),
    delay=st.floats(0.0, 0.4),
    fault=st.sampled_from(["none", "kill", "stop"]),
    fault_at=st.floats(0.3, 1.2),
    stopped_for=st.floats(0.2, 1.6),
)


def launch(store: str, ledger: Path, mode: str, ids: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(APP), store, str(ledger), mode, *ids],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def play(store: str, ledger: Path, chosen: list[Plan], ids: list[str]) -> list[str]:
    """Run the processes of `chosen` with their faults; the output of those not killed."""
    began = time.monotonic()
    events = sorted(
        [(plan.delay, "launch", index) for index, plan in enumerate(chosen)]
        + [
            (plan.delay + plan.fault_at, plan.fault, index)
            for index, plan in enumerate(chosen)
            if plan.fault != "none"
        ]
        + [
            (plan.delay + plan.fault_at + plan.stopped_for, "continue", index)
            for index, plan in enumerate(chosen)
            if plan.fault == "stop"
        ]
    )
    processes: dict[int, subprocess.Popen[str]] = {}
    killed: set[int] = set()
    for at, action, index in events:
        time.sleep(max(0.0, at - (time.monotonic() - began)))
        if action == "launch":
            processes[index] = launch(store, ledger, chosen[index].mode, ids)
            continue
        process = processes[index]
        if process.poll() is not None:
            continue
        if action == "kill":
            process.kill()
            process.wait()
            killed.add(index)
            with ledger.open("a") as file:  # (after it died: nothing of it follows)
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


def check_results(output: str, *, may_be_absent: bool) -> None:
    for line in output.splitlines():
        kind, workflow_id, value = [*line.split(" ", 2), ""][:3]
        if kind == "ABSENT" and may_be_absent:
            continue
        assert kind == "RESULT", f"a handle did not get the outcome: {line}"
        assert value == f"{workflow_id}:ab", line


def check_ledger(ledger: Path, ids: list[str], *, exclusive: bool) -> None:
    lines = [line.split() for line in ledger.read_text().splitlines()]
    killed = {pid for event, *_, pid in lines if event == "killed"}
    for workflow_id in ids:
        in_flight: dict[str, str] = {}  # pid -> step
        starts: list[tuple[int, str, str, str]] = []
        for index, (event, wid, step, key, pid) in enumerate(lines):
            if wid != workflow_id:
                continue
            if event == "start":
                others = {p: s for p, s in in_flight.items() if p != pid and p not in killed}
                if exclusive:
                    assert not others, (
                        f"{workflow_id}: process {pid} started {step} while {others} "
                        "had an attempt in flight: two runners"
                    )
                in_flight[pid] = step
                starts.append((index, step, key, pid))
            elif event == "end":
                in_flight.pop(pid, None)
        for position, step in enumerate(STEPS):
            runs = [(index, key) for index, name, key, _ in starts if name == step]
            assert runs, f"{workflow_id}: {step} never ran"
            assert len({key for _, key in runs}) == 1, f"{step} ran with different keys"
            if position + 1 < len(STEPS):
                moved_on = min(i for i, name, _, _ in starts if name == STEPS[position + 1])
                late = [i for i, _ in runs if i > moved_on]
                assert not late, f"{workflow_id}: {step} ran again after it had moved past"


def scenario(store: str, ledger: Path, chosen: list[Plan], *, exclusive: bool) -> None:
    ids = [f"{uuid.uuid4().hex[:8]}-{n}" for n in (1, 2)]  # (one database for the examples)
    outputs = play(store, ledger, chosen, ids)
    for output in outputs:
        check_results(output, may_be_absent=True)  # (recover, before the others created it)
    final = launch(store, ledger, "run", ids)  # (creates them if every process recovered)
    output, errors = final.communicate(timeout=60)
    assert final.returncode == 0, errors
    check_results(output, may_be_absent=False)
    check_ledger(ledger, ids, exclusive=exclusive)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=NO_SHRINKING,
)
@given(chosen=st.lists(plans, min_size=3, max_size=3))
def test_one_runner_on_a_directory(
    tmp_path_factory: pytest.TempPathFactory, chosen: list[Plan]
) -> None:
    where = tmp_path_factory.mktemp("one-runner")
    scenario(str(where / "journals"), where / "ledger", chosen, exclusive=True)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=NO_SHRINKING,
)
@given(chosen=st.lists(plans, min_size=3, max_size=3))
def test_one_runner_on_postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str, chosen: list[Plan]
) -> None:
    where = tmp_path_factory.mktemp("one-runner-pg")
    scenario(postgres_dsn, where / "ledger", chosen, exclusive=False)
