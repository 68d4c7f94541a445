"""`durable schedule` (durable/_cli/_schedule_commands.py): list, show, and commands."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import durable
from durable._cli import main
from durable.testing import TestRuntime

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, 12, tzinfo=UTC)


@durable.workflow
async def report(fire: datetime) -> str:
    return fire.isoformat()


def schedule() -> durable.Schedule:
    return durable.Schedule("reports", report, cron="0 2 * * *", timezone="Europe/Berlin")


async def cli(directory: Path, *args: str) -> str:
    """The command's output (run in a thread: the CLI runs its own event loop)."""
    command = ["schedule", *args, "--dir", str(directory)]
    result = await asyncio.to_thread(CliRunner().invoke, main, command)
    assert result.exit_code == 0, result.output
    return result.output


async def test_list_show_and_commands(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, start_time=START) as runtime:
        await schedule().start(runtime)
        await runtime.advance("2 days")
    listed = await cli(tmp_path, "list")
    assert "reports" in listed
    assert "cron '0 2 * * *' Europe/Berlin" in listed
    assert "2026-01-04T02:00:00+01:00" in listed  # (the next fire)
    assert "completed 2026-01-03T02:00:00+01:00" in listed
    shown = await cli(tmp_path, "show", "reports", "--next", "2")
    assert "reports@2026-01-02T01:00:00Z" in shown
    assert "2026-01-05T02:00:00+01:00" in shown
    plain = json.loads(await cli(tmp_path, "show", "reports", "--json"))
    assert plain["fires"] == 2
    assert plain["spec"]["timezone"] == "Europe/Berlin"
    assert json.loads(await cli(tmp_path, "list", "--json"))[0]["name"] == "reports"

    assert "pause sent" in await cli(tmp_path, "pause", "reports", "--note", "audit")
    backfilled = await cli(tmp_path, "backfill", "reports", "2025-12-30", "2026-01-01")
    assert "backfill of 2 fire time(s)" in backfilled
    async with TestRuntime(tmp_path, start_time=runtime.now()) as runtime:
        handle = await schedule().start(runtime)  # (takes what was sent meanwhile)
        await runtime.advance("2 days")
        described = await handle.describe()
        assert (described.paused, described.note) == (True, "audit")
        assert [r.workflow_id for r in described.recent[-2:]] == [
            "reports@2025-12-30T01:00:00Z",
            "reports@2025-12-31T01:00:00Z",
        ]
        assert described.fires == 4
    assert "paused" in await cli(tmp_path, "list")
    await cli(tmp_path, "resume", "reports")
    await cli(tmp_path, "trigger", "reports")
    await cli(tmp_path, "delete", "reports", "--yes")


def test_an_unknown_schedule_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    result = CliRunner().invoke(main, ["schedule", "pause", "nope", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no schedule 'nope'" in result.output
    result = CliRunner().invoke(
        main, ["schedule", "backfill", "nope", "yesterday", "today", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "no schedule 'nope'" in result.output
