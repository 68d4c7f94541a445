"""`durable bulk resume / restart / fork`: the dry run's reasons, the options, what is left."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import durable
from durable._cli import main
from durable._engine import _records as records
from durable._reading import read_workflow
from tests.query_fleet import WORKFLOWS, make_directory


@pytest.fixture(scope="module")
def fleet_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet") / "journals"
    asyncio.run(make_directory(directory))
    return directory


@pytest.fixture
def fleet(fleet_source: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "journals"
    shutil.copytree(fleet_source, copy)
    return copy


def durable_cli(*args: str, directory: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--dir", str(directory)])
    return result.exit_code, result.output


async def resumes(directory: Path, workflow_id: str) -> list[str | None]:
    async with durable.Runtime(directory) as runtime:
        journal = await read_workflow(runtime._store, workflow_id)
    return [record.get("id") for record in journal if record["k"] == records.RESUME]


def test_bulk_resume_lists_what_it_skips_and_why_then_writes_once(fleet: Path) -> None:
    code, output = durable_cli(
        "bulk", "resume", "--workflow", "charge", "--dry-run", directory=fleet
    )
    assert code == 0, output
    assert "would resume 2 workflows:\n  pay-03\n  pay-01\n" in output
    assert "skipped 4 that cannot be" in output
    assert "(completed: nothing to resume (restart or fork it))" in output
    code, output = durable_cli(
        "bulk", "resume", "--workflow", "charge", "--yes", "--id", "b-r", directory=fleet
    )
    assert code == 0, output
    assert "bulk b-r: 2 resumed" in output
    assert "2 to run: a process with the workflows' code runs them" in output
    code, output = durable_cli("bulk", "resume", "--id", "b-r", "--yes", directory=fleet)
    assert "finishing bulk b-r" in output  # (a retry: nothing written again)
    assert asyncio.run(resumes(fleet, "pay-01")) == ["bulk:b-r"]


def test_bulk_restart_and_fork_name_the_runs_they_leave(fleet: Path) -> None:
    code, output = durable_cli(
        "bulk", "restart", "--status", "failed", "--yes", "--id", "b-s", directory=fleet
    )
    assert code == 0, output
    assert "bulk b-s: 2 restarted\n  pay-03 -> pay-03@b-s\n  pay-01 -> pay-01@b-s\n" in output
    code, output = durable_cli(
        "bulk", "fork", "--workflow", "charge", "--status", "completed", "--at-step", "1",
        "--dry-run", directory=fleet,
    )  # fmt: skip
    assert "would fork 3 workflows (fork at step 1):" in output
    code, output = durable_cli(
        "bulk", "fork", "--id-prefix", "pay-0", "--status", "failed", "--yes", "--id", "b-f",
        directory=fleet,
    )  # fmt: skip
    assert code == 0, output
    assert "bulk b-f: 2 forked\n  pay-03 -> pay-03@b-f\n" in output

    async def run_them() -> list[str]:
        async with durable.Runtime(fleet, workflows=WORKFLOWS) as runtime:
            ran = []
            for run in ("pay-03@b-s", "pay-03@b-f"):
                with pytest.raises(durable.WorkflowFailed, match="declined"):  # (not fixed)
                    await (await runtime.handle(run)).result()
                ran.append(run)
            return ran

    assert asyncio.run(run_them()) == ["pay-03@b-s", "pay-03@b-f"]


def test_bulk_fork_options_and_bad_input(fleet: Path) -> None:
    code, output = durable_cli(
        "bulk", "fork", "--status", "failed", "--at-step", "1", "--from-failure", directory=fleet
    )
    assert code == 2
    assert "not both" in output
    code, output = durable_cli(
        "bulk", "fork", "--status", "failed", "--at-step", "-1", directory=fleet
    )
    assert code == 2
    assert "--at-step" in output
    code, output = durable_cli("bulk", "restart", "--status", "running", "--yes", directory=fleet)
    assert (code, output.strip()) == (
        0,
        "nothing to restart: no workflow matching state=['running'] (1 matched but cannot be)",
    )
    code, output = durable_cli("bulk", "resume", "--status", "sleeping", "--yes", directory=fleet)
    assert "nothing to resume" in output
    assert "(2 matched but cannot be)" in output
    code, output = durable_cli("bulk", "fork", "--help", directory=fleet)
    assert "--at-step" in output
    assert "--from-failure" in output


@durable.activity(name="audit")
async def audit(number: int) -> int:
    return number


@durable.workflow(name="charge")
async def charge_v2(number: int) -> str:
    """A deploy that broke the recorded order: it audits before it debits."""
    await audit(number)
    return str(number)


def test_bulk_with_code_checks_each_replays_first(fleet: Path) -> None:
    code, output = durable_cli(
        "bulk", "fork", "--status", "completed", "--workflow", "charge", "--at-step", "1",
        "--code", f"{__name__}:charge_v2", "--yes", "--id", "b-v2", directory=fleet,
    )  # fmt: skip
    assert code == 1, output
    assert "bulk b-v2: 3 error" in output
    assert "test_cli_bulk_operations.py:" in output  # (the call site that diverges)
    assert not list(fleet.glob("pay-00@*"))
    code, output = durable_cli(
        "bulk", "fork", "--status", "completed", "--workflow", "charge", "--at-step", "1",
        "--code", "tests.query_fleet", "--yes", "--id", "b-ok", directory=fleet,
    )  # fmt: skip
    assert code == 0, output
    assert "bulk b-ok: 3 forked" in output
    code, output = durable_cli(
        "bulk", "resume", "--status", "failed", "--code", "tests.query_fleet", "--yes",
        directory=fleet,
    )  # fmt: skip
    assert code == 0, output
    assert "2 resumed" in output
    code, output = durable_cli(
        "bulk", "resume", "--status", "failed", "--code", "no_such_module", directory=fleet
    )
    assert code == 2
    assert "cannot import 'no_such_module'" in output


def test_every_dry_run_writes_nothing_byte_for_byte(fleet: Path) -> None:
    def files() -> dict[str, bytes]:
        return {str(p.relative_to(fleet)): p.read_bytes() for p in fleet.rglob("*") if p.is_file()}

    before = files()
    for action in (
        ["cancel", "--all"],
        ["resume", "--status", "failed", "--code", "tests.query_fleet"],
        ["restart", "--all"],
        ["fork", "--all", "--at-step", "0"],
    ):
        code, output = durable_cli("bulk", *action, "--dry-run", directory=fleet)
        assert code == 0, output
        assert output.startswith("would "), output
    assert files() == before
