"""The fork check: finished workflows re-run from their recorded arguments through new
code, with recorded activity results; every divergence with its step and call site."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

import durable
from durable import Runtime
from durable._cli import main
from durable.testing._fork_check import fork_check_directory
from tests.operations import app

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh() -> None:
    app.BROKEN.clear()
    app.CALLS.clear()


@durable.workflow(name="order")
async def order_other_arguments(name: str) -> list[str]:
    """Reserves under another name (step 0's arguments change), and ships the same."""
    reserved = await app.reserve(name.upper())
    receipt = await app.charge(name)
    shipped = await app.ship(name, receipt)
    return [reserved, receipt.reference, shipped]


@durable.workflow(name="order")
async def order_new_step(name: str) -> list[str]:
    """Ships before it charges: step 1 calls another activity than recorded."""
    reserved = await app.reserve(name)
    shipped = await app.ship(name, app.Receipt(0, "later"))
    receipt = await app.charge(name)
    return [reserved, receipt.reference, shipped]


async def recorded(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[app.order, app.waits]) as runtime:
        await runtime.run(app.order, "o", id="o1")
        await runtime.run(app.order, "p", id="o2")
        handle = await runtime.start(app.waits, "w", id="w1")
        await runtime.send_event("w1", "approved", "yes")
        await handle.result()
    app.CALLS.clear()


async def test_the_same_code_passes_and_runs_nothing_real(tmp_path: Path) -> None:
    await recorded(tmp_path)
    results = await fork_check_directory(tmp_path, [app.order, app.waits])
    assert [(result.workflow_id, result.ok) for result in results] == [
        ("o1", True),
        ("o2", True),
        ("w1", True),
    ]
    assert app.CALLS == []  # (recorded outcomes only: no activity ran)


async def test_every_divergence_is_reported_with_its_step_and_call_site(tmp_path: Path) -> None:
    await recorded(tmp_path)
    [changed, _] = await fork_check_directory(tmp_path, [order_other_arguments], sample=2)
    steps = [(found.step, found.requested) for found in changed.divergences]
    assert steps[0][0] == 0
    assert "reserve" in steps[0][1]
    assert "test_fork_check.py:" in changed.divergences[0].call_site
    # reserve got its recorded result and the run went on: the result is the recorded one
    # ... except that reserve's arguments changed, which it reports; the result holds.
    assert len(changed.divergences) == 1
    [moved, _] = await fork_check_directory(tmp_path, [order_new_step], sample=2)
    assert [found.step for found in moved.divergences][:1] == [1]
    assert "ship" in moved.divergences[0].requested
    assert "charge" in moved.divergences[0].recorded
    assert moved.divergences[-1].call_site == "the workflow's return"
    assert app.CALLS == []


def test_verify_fork_check_on_the_command_line(tmp_path: Path) -> None:
    asyncio.run(recorded(tmp_path))
    runner = CliRunner()
    same = runner.invoke(
        main, ["verify", str(tmp_path), "-w", "tests.operations.app", "--fork-check"]
    )
    assert same.exit_code == 0, same.output
    assert "fork check: 3 re-run, 0 diverged" in same.output
    changed = runner.invoke(
        main,
        [
            "verify",
            str(tmp_path),
            "-w",
            "tests.testing.test_fork_check:order_new_step",
            "--fork-check",
            "--sample",
            "1",
        ],
    )
    assert changed.exit_code == 1
    assert "DIVERGED" in changed.output
    assert "fork check: 1 re-run, 1 diverged" in changed.output
