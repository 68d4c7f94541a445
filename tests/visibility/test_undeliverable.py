"""The CLI and the web UI refuse an event no journal could hold, and show skipped messages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

import durable
from durable._cli import main
from durable._storage._directory import JournalDirectory
from durable._ui import create_app

from .sample_app import ORDERS, order_workflow

TOKEN = "test-token"
HUGE = 65 * 1024 * 1024  # over the 64 MiB record limit of a journal


def durable_cli(*args: str, directory: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--dir", str(directory)], catch_exceptions=False)
    return result.exit_code, result.output


def test_the_cli_refuses_an_event_too_large_to_journal(sample_dir: Path) -> None:
    payload = json.dumps("x" * HUGE)
    code, output = durable_cli("send", "order-3", "approved", payload, directory=sample_dir)
    assert code == 1
    assert "order-3" in output
    assert "nothing was sent" in output
    assert not (sample_dir / "order-3.inbox").exists()


def test_the_ui_refuses_an_event_too_large_to_journal(sample_dir: Path) -> None:
    app = create_app(sample_dir, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        answer = client.post(
            "/api/workflows/order-3/events",
            content=json.dumps({"name": "approved", "payload": "x" * HUGE}),
            headers={"X-Durable-Token": TOKEN, "Content-Type": "application/json"},
        )
        assert answer.status_code == 413
    assert not (sample_dir / "order-3.inbox").exists()


def test_a_skipped_message_is_shown_by_show_events_and_the_ui(sample_dir: Path) -> None:
    async def plant_and_resume() -> str:
        async with JournalDirectory(sample_dir) as store:
            await store.post("order-3", b"\xc1")  # (undecodable: another program, a bug)
        async with durable.Runtime(sample_dir) as runtime:
            await runtime.send_event("order-3", "approved", "after the bad one")
            return await runtime.run(order_workflow, ORDERS["order-3"], id="order-3")

    assert asyncio.run(plant_and_resume()) == "shipped 3 (after the bad one)"
    code, output = durable_cli("show", "order-3", directory=sample_dir)
    assert code == 0
    assert "skipped" in output
    assert "1 message(s) could not be delivered" in output
    assert "not valid msgpack" in output
    code, output = durable_cli("show", "order-3", "--json", directory=sample_dir)
    assert code == 0
    shown = json.loads(output)
    assert shown["workflow"]["skipped_messages"] == 1
    code, output = durable_cli("list", directory=sample_dir)
    assert code == 0
    assert "1 skipped" in output
    code, output = durable_cli("events", "order-3", directory=sample_dir)
    assert code == 0  # (the listing of the inbox reads past the undecodable message)
    assert "undecodable" in output

    app = create_app(sample_dir, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        data = client.get("/api/workflows/order-3", headers={"X-Durable-Token": TOKEN}).json()
    assert data["workflow"]["skipped_messages"] == 1
    assert data["workflow"]["last_skip"].startswith("message 0: it cannot be read")
    kinds = [(message["position"], message["kind"]) for message in data["messages"]]
    assert kinds == [(0, "skipped"), (1, "event")]
