"""A parent -> child -> grandchild chain, its processes SIGKILLed and SIGSTOPped at moments
hypothesis picks.

Each process resumes what the others left (children_app.py); a stopped one holds its
journals until it is killed, while the next one runs beside it. At the end every workflow
has ended: the un-awaited child and its grandchild cancelled (they never finish otherwise),
each by one cancellation from its parent however often a crash made the parent redo it,
and the detached child completed.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import durable
from durable import WorkflowState

from .children_app import never_started_grandchild

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("children_app.py")


def spawn(directory: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(APP), str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # (a parent whose child another process holds logs it)
        text=True,
    )


def ended_within(process: subprocess.Popen[str], seconds: float) -> bool:
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)  # (a stopped process dies too)
    process.communicate(timeout=30)


async def outcome(directory: Path) -> dict[str, tuple[WorkflowState, str | None, int]]:
    """Each workflow's state, error and inbox size; no "grandchild" if none was started."""
    found = {}
    async with durable.Runtime(directory) as runtime:
        for workflow_id in ("top", "middle", "grandchild", "audit"):
            try:
                described = await runtime.describe(workflow_id)
            except durable.WorkflowNotFound:
                assert workflow_id == "grandchild", workflow_id
                assert await never_started_grandchild(runtime)  # (nothing else may leave none)
                continue
            found[workflow_id] = (described.state, described.error, 0)
    async with durable.JournalDirectory(directory) as store:
        for workflow_id, (state, error, _) in found.items():
            found[workflow_id] = (state, error, len(await store.inbox(workflow_id)))
    return found


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(["kill", "stop"]), st.floats(min_value=0.05, max_value=0.9)),
        min_size=1,
        max_size=3,
    )
)
def test_killed_and_stopped_processes_still_end_the_whole_chain(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[str, float]]
) -> None:
    directory = tmp_path_factory.mktemp("children") / "journals"
    current = spawn(directory)
    for action, after in plan:
        if ended_within(current, after):
            break
        if action == "kill":
            kill(current)
            current = spawn(directory)
        else:  # stopped: it holds its journals while the next process runs beside it
            current.send_signal(signal.SIGSTOP)
            successor = spawn(directory)
            ended_within(successor, 0.2)
            kill(current)
            current = successor
    try:
        output, _ = current.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill(current)  # (not left running into the next test, which would see it leak)
        raise
    assert current.returncode == 0
    assert "DONE" in output
    found = asyncio.run(outcome(directory))
    assert found["top"][:2] == (WorkflowState.COMPLETED, None)
    assert found["audit"][:2] == (WorkflowState.COMPLETED, None)  # detached: not cancelled
    assert found["middle"] == (
        WorkflowState.CANCELLED,
        "asyncio.exceptions.CancelledError: its parent 'top' returned",
        1,
    )
    if "grandchild" not in found:  # (middle cancelled while its first step ran: see outcome)
        return
    state, error, inbox = found["grandchild"]
    assert (state, inbox) == (WorkflowState.CANCELLED, 1)
    assert error is not None
    assert "its parent 'middle' was cancelled" in error
