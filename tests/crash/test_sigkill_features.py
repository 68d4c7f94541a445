"""Events, a child workflow, continue-as-new and a saga, SIGKILLed at moments hypothesis picks.

The "go" event is sent from the test's own process at a moment hypothesis picks too: while
the workflow runs in the child process, or while nothing runs it. Checks: the result; every
step ran with one idempotency key and never again once the workflow moved past it; the
compensation ran once the shipment failed; a finished run re-runs nothing.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import durable
from tests.crash.test_sigkill_workflow import check_order

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("features_app.py")
STEPS = ["charge", "pack", "reserve", "ship", "release", "notify"]
EXPECTED = "f-1 done in generation f-1:1"


async def send_go(directory: Path) -> bool:
    """Send "go" once; False if the workflow's start is not on disk yet (a kill came first)."""
    async with durable.Runtime(directory) as runtime:
        try:
            await runtime.send_event("f-1", "go", 1, event_id="go-once")
        except durable.WorkflowNotFound:
            return False
    return True


def run_once(
    directory: Path, ledger: Path, kill_after: float | None, send_after: float | None
) -> tuple[str | None, bool]:
    """Run the app; send "go" after `send_after` s; SIGKILL it after `kill_after` s.

    Returns its RESULT (None if killed) and whether "go" was sent.
    """
    sent = False
    with subprocess.Popen(
        [sys.executable, str(APP), str(directory), str(ledger), "f-1"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        started = time.monotonic()
        if send_after is not None:
            time.sleep(send_after)
            while not (sent := asyncio.run(send_go(directory))) and process.poll() is None:
                time.sleep(0.05)  # its start record is not written yet: a little later
        if kill_after is not None:
            try:
                process.wait(max(0.0, kill_after - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
    if process.returncode == -signal.SIGKILL:
        return None, sent
    assert process.returncode == 0, f"the app failed: {output}"
    return output.split("RESULT ", 1)[1].strip(), sent


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kills=st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=1, max_size=3),
    send_at=st.floats(min_value=0.0, max_value=0.8),
)
def test_killed_features_finish_with_every_step_run_once(
    tmp_path_factory: pytest.TempPathFactory, kills: list[float], send_at: float
) -> None:
    root = tmp_path_factory.mktemp("features")
    directory, ledger = root / "journals", root / "ledger.txt"
    result, processes, sent = None, 0, False
    for kill_after in [*kills, None]:
        processes += 1
        if not sent and processes > 1 and send_at < 0.4:
            sent = asyncio.run(send_go(directory))  # nothing runs it: it waits in the inbox
        result, sent_now = run_once(directory, ledger, kill_after, None if sent else send_at)
        sent = sent or sent_now
        if result is not None:
            break
    assert result == EXPECTED
    lines = [line.split() for line in ledger.read_text().splitlines()]
    check_order(lines, processes, STEPS)
    before = ledger.read_text()
    assert run_once(directory, ledger, None, None)[0] == EXPECTED
    assert ledger.read_text() == before, "a finished workflow runs nothing again"
