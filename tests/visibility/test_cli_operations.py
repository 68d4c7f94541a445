"""`durable resume / restart / fork` on real journals: each asks first, writes only, and a
runtime with the code runs what it made; bad input is a one-line error, nothing written."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

import durable
from durable._cli import main

from .sample_app import order_workflow

CODE = "tests.visibility.sample_app:order_workflow"


def cli(*args: str, directory: Path, answer: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--dir", str(directory)], input=answer)
    return result.exit_code, result.output


def test_resume_asks_first_then_a_runtime_runs_it(sample_dir: Path) -> None:
    code, output = cli("resume", "order-5", directory=sample_dir, answer="n\n")
    assert code == 1
    assert "resume order-5 (order_workflow, cancelled" in output
    assert "Aborted" in output
    code, output = cli(
        "resume", "order-5", "--yes", "--reason", "came back", "-w", CODE, directory=sample_dir
    )
    assert (code, output.splitlines()[0].split(":")[0]) == (0, "resumed order-5")

    async def run_it() -> None:
        async with durable.Runtime(sample_dir, workflows=[order_workflow]) as runtime:
            assert (await runtime.describe("order-5")).state.value == "waiting for event"
            handle = await runtime.handle("order-5")
            await runtime.send_event("order-5", "approved", "yes")
            assert await handle.result() == "shipped 5 (yes)"

    asyncio.run(run_it())
    code, output = cli("show", "order-5", directory=sample_dir)
    assert "resumed" in output
    assert "came back" in output


def test_restart_and_fork_write_linked_runs(sample_dir: Path) -> None:
    code, output = cli("restart", "order-7", "--yes", "--new-id", "again", directory=sample_dir)
    assert (code, output.split(":")[0]) == (0, "restarted order-7 as again")
    code, output = cli(
        "fork",
        "order-2",
        "--from-failure",
        "--override",
        '0="pay-what-if"',
        "-w",
        CODE,
        "--yes",
        directory=sample_dir,
    )
    assert code == 0, output
    assert "forked order-2 as order-2-fork-failure-override-0" in output
    code, output = cli("show", "order-7", directory=sample_dir)
    assert "restarted as" in output
    code, output = cli("show", "order-2-fork-failure-override-0", directory=sample_dir)
    assert "forked from" in output
    assert "step 0's result overridden" in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["resume", "order-7"], "it is completed"),
        (["resume", "order-3"], "not ended"),
        (["fork", "order-7"], "--at-step N or --from-failure"),
        (["fork", "order-7", "--at-step", "9"], "at step 9"),
        (["fork", "order-7", "--at-step", "1", "--override", "x"], "STEP=JSON"),
        (["fork", "order-7", "--at-step", "1", "--override", "0={"], "not JSON"),
        (["fork", "order-7", "--at-step", "1", "--override", "0=1"], "does not have workflow"),
        (["fork", "order-7", "--at-step", "1", "--override", "0=1", "-w", CODE], "returns str"),
        (["restart", "order-999"], "no workflow 'order-999'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    sample_dir: Path, args: list[str], says: str
) -> None:
    before = {path.name: path.stat().st_size for path in sample_dir.iterdir()}
    code, output = cli(*args, "--yes", directory=sample_dir)
    assert code in (1, 2), output
    assert says in output
    assert {path.name: path.stat().st_size for path in sample_dir.iterdir()} == before
