"""Resume, restart, fork and bulk actions while another process holds the workflows.

A running workflow (its runner in another process, blocked in an activity) is refused by
resume, restart and fork and skipped by their bulk forms, and cancelled by a bulk cancel
(its runner takes the cancellation); a failed one whose journal another process holds is
refused as held, and nothing at all is written to it. Nothing is ever written under a
runner's feet.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import durable
from durable import WorkflowFilter
from durable._engine import _records as records
from durable._reading import read_workflow
from tests.operations import app

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

APP = Path(__file__).with_name("beside_runner_app.py")
ROOT = Path(__file__).resolve().parents[2]


def launch(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(APP), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() in ("running", "holding"), line
    return process


async def operator_records(directory: Path, workflow_id: str) -> list[str]:
    async with durable.Runtime(directory) as runtime:
        journal = await read_workflow(runtime._store, workflow_id)
    return [r["k"] for r in journal if r["k"] in (records.RESUME, records.LINK)]


async def test_running_workflows_in_another_process_are_refused_or_cancelled(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journals"
    runner = launch(str(directory), "run")
    try:
        async with durable.Runtime(directory) as operator:
            acts: list[Callable[[], Awaitable[object]]] = [
                lambda: operator.resume("busy-0"),
                lambda: operator.restart("busy-0", start=False),
                lambda: operator.fork("busy-0", at_step=0, start=False),
            ]
            for act in acts:
                with pytest.raises(durable.ActionRefused, match=r"held by a runner|not ended"):
                    await act()
            busy = WorkflowFilter(workflow_name="busy")
            for action in ("resume", "restart", "fork"):
                done = await operator.bulk(action, busy, bulk_id=f"b-{action}")
                assert done.outcomes == {}
                assert set(done.skipped) == {"busy-0", "busy-1"}, done.skipped
            cancelled = await operator.bulk("cancel", busy, bulk_id="b-cancel")
            assert set(cancelled.outcomes.values()) == {"cancelled"}
            for workflow_id in ("busy-0", "busy-1"):
                handle = await operator.handle(workflow_id)
                with pytest.raises(durable.WorkflowCancelled):
                    await asyncio.wait_for(handle.result(), 30)
        assert runner.wait(timeout=30) == 0
        for workflow_id in ("busy-0", "busy-1"):
            assert await operator_records(directory, workflow_id) == []
        made = {p.name for p in directory.glob("busy-*.journal")}
        assert made == {"busy-0.journal", "busy-1.journal"}  # (no restart, no fork)
    finally:
        (tmp_path / "release").touch()
        runner.kill()
        runner.communicate()


async def test_a_failed_workflow_another_process_holds_is_refused_byte_for_byte(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journals"
    app.BROKEN.add("charge")
    async with durable.Runtime(directory, workflows=[app.order]) as runtime:
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(app.order, "o", id="o1")
    app.BROKEN.clear()
    holder = launch(str(directory), "hold", "o1")
    try:
        before = {p.name: p.read_bytes() for p in directory.iterdir()}
        async with durable.Runtime(directory, workflows=[app.order]) as operator:
            acts: list[Callable[[], Awaitable[object]]] = [
                lambda: operator.resume("o1"),
                lambda: operator.restart("o1", start=False),
                lambda: operator.fork("o1", from_failure=True, start=False),
            ]
            for act in acts:
                with pytest.raises(durable.ActionRefused, match="held by a runner"):
                    await act()
            for action in ("resume", "restart", "fork"):
                done = await operator.bulk(action, WorkflowFilter(state="failed"))
                assert done.outcomes == {}
                assert "held by a runner" in done.skipped["o1"], done.skipped
        after = {p.name: p.read_bytes() for p in directory.iterdir() if p.name in before}
        assert after == before
    finally:
        holder.communicate(timeout=30)
        assert holder.returncode == 0
    async with durable.Runtime(directory, workflows=[app.order]) as runtime:  # (let go: it can)
        handle = await runtime.resume("o1")
        assert (await handle.result())[1] == "pay-o"
