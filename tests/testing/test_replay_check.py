"""Replay verification: journals checked against changed code, and `durable verify`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import durable
from durable._encoding import encode
from durable.testing import replay, replay_directory
from tests.conftest import journal_bytes

pytestmark = pytest.mark.anyio


@durable.activity
async def greet(name: str) -> str:
    return f"hello {name}"


def make_workflow(version: int) -> durable.Workflow[[str], str]:
    """Three versions of one workflow (one name): the original, a compatible and a breaking."""

    @durable.workflow(name="welcome")
    async def welcome(name: str) -> str:
        first = await greet(name)
        if version == 3:
            await greet("the team")  # breaking: a new step before the wait
        await durable.sleep("1 day")
        second = await greet(f"{name} again")
        return first + ", " + second + ("!" if version == 2 else "")

    return welcome


async def record_journals(directory: Path) -> None:
    original = make_workflow(1)
    async with durable.testing.TestRuntime(directory, auto_skip=False) as runtime:
        await runtime.start(original, "ann", id="unfinished")
        await runtime.idle()  # greeted, and sleeping for a day: unfinished
    async with durable.testing.TestRuntime(directory) as runtime:
        await runtime.run(original, "bob", id="finished")


async def test_unchanged_code_replays_every_journal(tmp_path: Path) -> None:
    await record_journals(tmp_path)
    results = await replay_directory(tmp_path, [make_workflow(1)])
    assert [(result.workflow_id, result.ok) for result in results] == [
        ("finished", True),
        ("unfinished", True),
    ]


async def test_a_new_step_is_reported_with_the_position_and_the_call_site(tmp_path: Path) -> None:
    await record_journals(tmp_path)
    result = await replay(make_workflow(3), tmp_path / "unfinished.journal")
    assert result.diverged
    message = str(result.error)
    assert "step 1" in message
    assert "greet" in message
    assert "test_replay_check.py:" in message  # the call site of the new step


async def test_a_finished_journal_is_checked_to_its_end(tmp_path: Path) -> None:
    await record_journals(tmp_path)
    results = {
        result.workflow_id: result
        for result in await replay_directory(tmp_path, [make_workflow(3)])
    }
    assert results["finished"].diverged
    assert results["unfinished"].diverged
    # The same steps but another result: verify proves results too (issue 20), so this is a
    # divergence naming the first difference (it was "ok" when only decisions were checked).
    other_result = await replay(make_workflow(2), tmp_path / "finished.journal")
    assert other_result.diverged
    assert "result" in str(other_result.error)


async def test_journals_of_workflows_not_given_are_skipped(tmp_path: Path) -> None:
    await record_journals(tmp_path)

    @durable.workflow(name="other")
    async def other() -> None:
        pass

    results = await replay_directory(tmp_path, [other])
    assert all(result.skipped == "workflow 'welcome' was not given" for result in results)
    assert not any(result.ok for result in results)


CLI_MODULE = """
import durable

@durable.activity
async def greet(name: str) -> str:
    return f"hello {name}"

@durable.workflow(name="welcome")
async def welcome(name: str) -> str:
    first = await greet(name)
    EXTRA
    await durable.sleep("1 day")
    second = await greet(f"{name} again")
    return first + ", " + second
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durable", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_durable_verify_is_a_pre_deploy_gate(tmp_path: Path) -> None:
    await record_journals(tmp_path / "journals")
    (tmp_path / "shop_v1.py").write_text(textwrap.dedent(CLI_MODULE.replace("EXTRA", "")))
    breaking = CLI_MODULE.replace("EXTRA", 'await greet("the team")')
    (tmp_path / "shop_v2.py").write_text(textwrap.dedent(breaking))

    passed = run_cli("verify", "journals", "--workflow", "shop_v1:welcome", cwd=tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "2 journals: 2 ok, 0 failed, 0 skipped" in passed.stdout

    failed = run_cli("verify", "journals", "-w", "shop_v2", cwd=tmp_path)
    assert failed.returncode == 1
    assert "DIVERGED unfinished (welcome)" in failed.stdout
    assert "shop_v2.py:" in failed.stdout

    unknown = run_cli("verify", "journals", "-w", "shop_v1:nothing", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "is not a workflow" in unknown.stderr


async def test_a_malformed_start_record_is_that_journals_error_not_a_crash(tmp_path: Path) -> None:
    """The schema validates the start record here as in every reader: one bad journal is
    reported (JournalCorrupted naming it), the others checked as ever."""
    await record_journals(tmp_path)
    bad = tmp_path / "bad.journal"
    bad.write_bytes(journal_bytes(encode({"k": "start", "v": 2, "args": [], "t": 0.0})))
    bad.chmod(0o600)
    results = {r.workflow_id: r for r in await replay_directory(tmp_path, [make_workflow(1)])}
    assert results["finished"].ok
    assert results["unfinished"].ok
    assert isinstance(results["bad"].error, durable.JournalCorrupted)
    assert "bad.journal" in str(results["bad"].error)
