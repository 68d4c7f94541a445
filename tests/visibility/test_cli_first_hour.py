"""What a new user meets first in the `durable` command: the snags a newcomer's trial found.

A directory not given (or mistyped), an unknown id, a stalled workflow, a finished one's
status, an event's timeout, an empty directory to verify, the web UI without its extra.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import durable
from durable._cli import main


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory is tmp_path, and $DURABLE_DIR is unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DURABLE_DIR", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["show", "order-7"],
        ["events", "order-7"],
        ["send", "order-7", "approved"],
        ["cancel", "--yes", "order-7"],
        ["schedule", "list"],
    ],
)
def test_a_missing_directory_is_reported_as_such(in_tmp: Path, command: list[str]) -> None:
    """Not as "no workflow 'order-7'", nor "no schedules": the directory is not there."""
    code, output = cli(*command)
    assert code == 1
    assert output.strip() == (
        f"Error: no journal directory at {in_tmp / '.durable'} (the default: no --dir given, "
        "$DURABLE_DIR unset; give --dir DIRECTORY)"
    )
    code, output = cli(*command, "--dir", "typo")
    assert (code, output.strip()) == (
        1,
        f"Error: no journal directory at {in_tmp / 'typo'} (--dir typo)",
    )
    assert sorted(in_tmp.iterdir()) == []  # (nothing was made)


def test_show_of_an_unknown_id_names_the_directory_it_looked_in(
    sample_dir: Path, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relative = sample_dir.relative_to(in_tmp)
    code, output = cli("show", "order-999", "--dir", str(relative))
    assert code == 1
    assert output.strip() == (
        f"Error: no workflow 'order-999' in {sample_dir} (--dir {relative}); `durable list` "
        "shows the ones there (give --dir the directory the workflow was started in)"
    )
    monkeypatch.setenv("DURABLE_DIR", str(relative))
    for command in (["show"], ["events"], ["send", "--"], ["cancel", "--yes", "--"]):
        code, output = cli(*command, "order-999", *(["approved"] if command[0] == "send" else []))
        assert code == 1, command
        assert f"no workflow 'order-999' in {sample_dir} ($DURABLE_DIR)" in output, command


def test_a_stalled_workflow_with_no_step_under_way_reads_whole(sample_dir: Path) -> None:
    """Journaled as running between steps (its process died there): no dangling "it: ·"."""

    async def crashed_between_steps() -> None:
        async with durable.JournalDirectory(sample_dir) as store:
            opened = await store.open("order-8")
            for record in (await store.read("order-3"))[:3]:  # start, a step, a status
                opened.write(record.payload)
            await opened.close()

    asyncio.run(crashed_between_steps())
    code, output = cli("list", "--dir", str(sample_dir))
    assert code == 0
    row = next(line for line in output.splitlines() if line.startswith("order-8 "))
    assert " running " in row
    assert row.endswith('  STALLED, no process holds it · status {"paid": "pay-3"}')


def test_a_finished_workflows_status_is_its_last_not_a_current_one(sample_dir: Path) -> None:
    code, output = cli("list", "--dir", str(sample_dir))
    assert code == 0
    rows = {line.split()[0]: line for line in output.splitlines()[1:]}
    assert rows["order-7"].endswith('  last status {"paid": "pay-7"}')
    assert rows["order-3"].endswith('· status {"paid": "pay-3"}')  # (still current)
    code, output = cli("show", "order-7", "--dir", str(sample_dir))
    assert code == 0
    assert 'last status  {"paid": "pay-7"}' in output
    code, output = cli("show", "order-3", "--dir", str(sample_dir))
    assert 'status     {"paid": "pay-3"}' in output


def timeline(output: str) -> list[list[str]]:
    """The rows of `show`'s timeline table, split into words."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.split()[:2] == ["#", "KIND"])
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_an_event_timeout_is_shown_with_its_wait_not_as_a_timer_step(sample_dir: Path) -> None:
    code, output = cli("show", "order-3", "--dir", str(sample_dir))
    assert code == 0
    rows = timeline(output)
    assert [row[:2] for row in rows] == [
        ["0", "activity"],
        ["1", "status"],
        ["2", "activity"],
        ["3", "wait"],
    ]
    assert rows[3][2:4] == ["approved", "waiting"]
    assert " ".join(rows[3][-5:-2]) == "times out at"
    code, output = cli("show", "order-7", "--dir", str(sample_dir))
    assert [row[1] for row in timeline(output)][-1] == "timer"  # (its own sleep: a step)
    code, output = cli("list", "--dir", str(sample_dir))
    listed = {line.split()[0]: line for line in output.splitlines()[1:]}
    for workflow_id in ("order-3", "order-7"):  # (as many steps as show shows)
        assert re.search(r" 4  \S", listed[workflow_id].split(" order_workflow ")[1]), workflow_id


def test_verify_of_an_empty_directory_says_so_and_fails(tmp_path: Path) -> None:
    code, output = cli("verify", str(tmp_path), "-w", "tests.visibility.sample_app")
    assert code == 1
    assert output.strip() == (
        f"Error: no journals in {tmp_path}: nothing to verify (give the directory the "
        "workflows run in: DIRECTORY, --dir or $DURABLE_DIR)"
    )


def test_ui_without_the_ui_extra_says_what_to_install(
    sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """starlette and uvicorn missing (blocked as if not installed): one line, exit 1."""
    for name in [name for name in sys.modules if name.startswith("durable._ui")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "starlette", None)  # (None: `import starlette` fails)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(main, ["ui", "--dir", str(sample_dir)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output == (
        "Error: the durable web UI needs starlette and uvicorn: pip install 'aiodurable[ui]'\n"
    )
