"""`durable list` with filter options, and `durable bulk cancel`: confirmation, retry, bad input."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from durable._catalog import Catalog
from durable._cli import main
from tests.query_fleet import make_directory


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


def durable_cli(*args: str, directory: Path, given: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--dir", str(directory)], input=given)
    return result.exit_code, result.output


def test_list_with_filters_pages_by_cursor(fleet: Path) -> None:
    code, output = durable_cli(
        "list", "--workflow", "charge", "--status", "failed", directory=fleet
    )
    assert code == 0, output
    assert [line.split()[0] for line in output.splitlines()[1:3]] == ["pay-03", "pay-01"]
    assert "2 of 2 matching" in output
    code, output = durable_cli(
        "list", "--id-prefix", "ship-", "--limit", "2", "--json", directory=fleet
    )
    page = json.loads(output)
    assert (page["total"], len(page["workflows"])) == (3, 2)
    code, output = durable_cli(
        "list",
        "--id-prefix",
        "ship-",
        "--limit",
        "2",
        "--cursor",
        page["next_cursor"],
        "--json",
        directory=fleet,
    )
    rest = json.loads(output)
    assert [w["id"] for w in page["workflows"] + rest["workflows"]] == [  # (newest first)
        "ship-2",
        "ship-1",
        "ship-0",
    ]
    assert rest["next_cursor"] is None
    code, output = durable_cli(
        "list", "--error-type", "Declined", "--started-after", "1h", directory=fleet
    )
    assert "2 of 2 matching" in output
    code, output = durable_cli("list", "--parent", "parent-0", "--json", directory=fleet)
    assert [w["id"] for w in json.loads(output)["workflows"]] == ["kid-0"]


def test_list_bad_input(fleet: Path) -> None:
    code, output = durable_cli("list", "--workflow", "nobody", directory=fleet)
    assert (code, output.strip()) == (
        0,
        f"no workflows matching workflow_name=['nobody'] in {fleet}",
    )
    code, output = durable_cli("list", "--started-after", "last tuesday", directory=fleet)
    assert code == 2
    assert "--started-after" in output
    assert "started_after='last tuesday' is not allowed" in output
    code, output = durable_cli("list", "--cursor", "nonsense", directory=fleet)
    assert code == 2
    assert "--cursor" in output
    code, output = durable_cli("list", "--limit", "0", "--workflow", "ship", directory=fleet)
    assert code == 2
    assert "--limit" in output
    code, output = durable_cli("list", "--search", "x", "--workflow", "ship", directory=fleet)
    assert code == 2


def test_bulk_cancel_asks_refuses_without_a_terminal_and_journals_who_asked(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = durable_cli("bulk", "cancel", "--workflow", "ship", directory=fleet)
    assert code == 2
    assert "stdin is not a terminal" in output
    assert "would cancel 3 workflows" in output
    code, output = durable_cli("bulk", "cancel", "--workflow", "ship", "--dry-run", directory=fleet)
    assert code == 0
    assert "would cancel 3 workflows" in output
    assert asyncio.run(_cancels(fleet, "ship-0")) == []
    monkeypatch.setattr("durable._cli._query_commands._stdin_is_terminal", lambda: True)
    code, output = durable_cli("bulk", "cancel", "--workflow", "ship", directory=fleet, given="n\n")
    assert code == 1  # (aborted)
    assert asyncio.run(_cancels(fleet, "ship-0")) == []
    code, output = durable_cli(
        "bulk",
        "cancel",
        "--workflow",
        "ship",
        "--by",
        "ci",
        "--id",
        "bulk-cli",
        directory=fleet,
        given="y\n",
    )
    assert code == 0, output
    assert "bulk bulk-cli: 3 cancelled" in output
    assert asyncio.run(_cancels(fleet, "ship-1")) == [
        ("bulk:bulk-cli", "bulk cancel from the command line (bulk cancel bulk-cli, by ci)")
    ]
    # the same command again finishes (here: returns) that bulk; nothing is sent twice
    code, output = durable_cli("bulk", "cancel", "--id", "bulk-cli", "--yes", directory=fleet)
    assert code == 0, output
    assert "finishing bulk bulk-cli" in output
    assert len(asyncio.run(_cancels(fleet, "ship-1"))) == 1


def test_bulk_cancel_bad_input_and_nothing_to_do(fleet: Path) -> None:
    code, output = durable_cli("bulk", "cancel", directory=fleet)
    assert code == 2
    assert "--all" in output
    code, output = durable_cli("bulk", "cancel", "--status", "completed", "--yes", directory=fleet)
    assert code == 0
    assert "nothing to cancel" in output
    assert "(3 matched but cannot be)" in output
    code, output = durable_cli("bulk", "cancel", "--workflow", "nobody", "--yes", directory=fleet)
    assert (code, output.strip()) == (
        0,
        "nothing to cancel: no workflow matching workflow_name=['nobody']",
    )
    code, output = durable_cli("bulk", "cancel", "--ended-before", "soon", directory=fleet)
    assert code == 2
    assert "--ended-before" in output


async def _cancels(directory: Path, workflow_id: str) -> list[tuple[str | None, str]]:
    async with Catalog(directory) as catalog:
        inbox = await catalog.inbox(workflow_id)
    return [(m.message_id, m.name) for m in inbox if m.kind == "cancel"]
