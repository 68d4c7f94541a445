"""Resume, restart and fork, SIGKILLed while they act (and while what they made runs).

A process makes a failed order; another acts on it (tests/operations/app.py) and is
killed a moment after it says it is acting; a third retries the same action to the end.
Checks: the result; the source journal holds one resume record, or one link to the new
run; the new run's journal holds one start record and its whole copy; reserve, whose
result was recorded before the failure, never ran again (a resume or a fork keeps it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable._engine import _records as records
from durable._reading import read_workflow
from durable._storage._directory import JournalDirectory

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "operations" / "app.py"
DONE = ["reserved o", "pay-o", "shipped o after pay-o"]
NEW_ID = {"resume": "o1", "restart": "o1-restart", "fork": "o1-fork-failure"}


def run_app(directory: Path, calls: Path, action: str, kill_after: float | None) -> str | None:
    """Run the app's `action`; SIGKILL it `kill_after` s after it says "acting"."""
    env = {**os.environ, "OPS_CALLS": str(calls), "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, str(APP), str(directory), action, "o1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        if kill_after is not None:
            line = process.stdout.readline()
            if line.strip() == "acting":
                time.sleep(kill_after)
                process.send_signal(signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
        if process.returncode == -signal.SIGKILL:
            return None
        assert process.returncode == 0, output
    return output


async def journal(directory: Path, workflow_id: str) -> list[records.Record]:
    async with JournalDirectory(directory) as store:
        return await read_workflow(store, workflow_id)


@pytest.mark.parametrize("action", ["resume", "restart", "fork"])
@pytest.mark.parametrize("kill_after", [0.0, 0.01, 0.05])
def test_an_action_killed_half_way_finishes_on_retry_and_never_doubles(
    tmp_path: Path, action: str, kill_after: float
) -> None:
    directory, calls = tmp_path / "journals", tmp_path / "calls"
    run_app(directory, calls, "fail", None)
    run_app(directory, calls, action, kill_after)
    output = run_app(directory, calls, action, None)
    assert output is not None
    assert f"result {DONE}" in output
    source = asyncio.run(journal(directory, "o1"))
    made = asyncio.run(journal(directory, NEW_ID[action]))
    kinds = [record["k"] for record in source]
    ran = calls.read_text().split()
    if action == "resume":
        assert kinds.count(records.RESUME) == 1
        assert ran.count("reserve") == 1
    else:
        assert kinds.count(records.RESUME) == 0
        links = [record for record in source if record["k"] == records.LINK]
        assert [(link["how"], link["id"]) for link in links] == [(action, NEW_ID[action])]
        assert [record["k"] for record in made].count(records.START) == 1
        copied = made[0]["from"].get("n", 0)
        assert len(made) > copied  # (the copy, whole, then what ran live)
        if action == "fork":
            assert ran.count("reserve") == 1  # (its recorded result was copied)
    for name in ("reserve", "ship"):  # (each outcome recorded once, whatever ran twice)
        assert [r.get("a") for r in made if r["k"] == records.DONE].count(name) == 1
