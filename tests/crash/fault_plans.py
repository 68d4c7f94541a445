"""Processes launched, killed and paused on a plan hypothesis picks; what they must show.

Shared by the crash tests where several processes take the same workflow ids at once
(test_one_runner, test_sleeper_locks): each process is an app script that writes every
activity attempt's "start"/"end" line (step, idempotency key, pid) to a ledger, the outside
world that survives SIGKILL and SIGSTOP, and prints "RESULT <id> <value>" per id (or
"ERROR ...", or "ABSENT <id>" where it may not exist yet).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hypothesis import Phase
from hypothesis import strategies as st

# Each example runs processes for seconds: shrinking a failure would take many minutes, and
# the plan hypothesis prints is small enough to read as it is.
NO_SHRINKING = [Phase.explicit, Phase.reuse, Phase.generate]
ROOT = Path(__file__).parents[2]


@dataclass(frozen=True)
class Plan:
    """One process: how it takes the ids, when it starts, and what the test does to it."""

    mode: str
    delay: float
    fault: str  # "none", "kill" or "stop"
    fault_at: float
    stopped_for: float


def plans(
    modes: list[str], *, delay: float, fault_at: tuple[float, float], stopped_for: float
) -> st.SearchStrategy[Plan]:
    """Plans of processes in one of `modes`, launched within `delay` seconds of the first."""
    return st.builds(
        Plan,
        mode=st.sampled_from(modes),
        delay=st.floats(0.0, delay),
        fault=st.sampled_from(["none", "kill", "stop"]),
        fault_at=st.floats(*fault_at),
        stopped_for=st.floats(0.2, stopped_for),
    )


def launch(app: str, store: str, ledger: Path, mode: str, ids: list[str]) -> subprocess.Popen[str]:
    """Start the app (a module under tests.crash, run with -m from the repository)."""
    return subprocess.Popen(
        [sys.executable, "-m", f"tests.crash.{app}", store, str(ledger), mode, *ids],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def play(app: str, store: str, ledger: Path, chosen: list[Plan], ids: list[str]) -> list[str]:
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
            processes[index] = launch(app, store, ledger, chosen[index].mode, ids)
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


def finish(app: str, store: str, ledger: Path, mode: str, ids: list[str]) -> None:
    """A last process, left alone, finds every workflow finished (or finishes it)."""
    final = launch(app, store, ledger, mode, ids)
    output, errors = final.communicate(timeout=60)
    assert final.returncode == 0, errors
    check_results(output, may_be_absent=False)


def check_results(output: str, *, may_be_absent: bool) -> None:
    """Every line a process printed is the real result ("<id>:ab") of its workflow."""
    for line in output.splitlines():
        kind, workflow_id, value = [*line.split(" ", 2), ""][:3]
        if kind == "ABSENT" and may_be_absent:
            continue
        assert kind == "RESULT", f"a handle did not get the outcome: {line}"
        assert value == f"{workflow_id}:ab", line


def check_ledger(ledger: Path, ids: list[str], steps: list[str], *, exclusive: bool) -> None:
    """Each step ran with one key, none ran again once the next began; `exclusive`: never
    two live processes with an attempt of one workflow in flight at once."""
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
        for position, step in enumerate(steps):
            runs = [(index, key) for index, name, key, _ in starts if name == step]
            assert runs, f"{workflow_id}: {step} never ran"
            assert len({key for _, key in runs}) == 1, f"{step} ran with different keys"
            if position + 1 < len(steps):
                moved_on = min(i for i, name, _, _ in starts if name == steps[position + 1])
                late = [i for i, _ in runs if i > moved_on]
                assert not late, f"{workflow_id}: {step} ran again after it had moved past"
