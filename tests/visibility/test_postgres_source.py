"""The CLI and the web UI on a PostgreSQL store (--store DSN): the same commands and pages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from durable import PostgresStore, Runtime
from durable._cli import main
from durable._ui import create_app

from .sample_app import ORDERS, STATES, make_directory, order_workflow

TOKEN = "test-token"


@pytest.fixture
def sample_store(postgres_dsn: str) -> str:
    """The sample workflows (one in each state), run on a PostgreSQL store."""
    asyncio.run(make_directory(postgres_dsn))
    return postgres_dsn


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_list_show_send_and_cancel_on_postgres(sample_store: str) -> None:
    code, output = cli("list", "--store", sample_store, "--json")
    assert code == 0
    states = {w["id"]: w["state"] for w in json.loads(output)["workflows"]}
    assert states == STATES
    code, output = cli("show", "order-7", "--store", sample_store)
    assert code == 0
    assert "#1 ConnectionError" in output
    code, output = cli("send", "order-3", "approved", '"yes"', "--store", sample_store)
    assert code == 0
    assert output.startswith("sent event 'approved' to order-3")
    code, output = cli("cancel", "order-4", "--yes", "--store", sample_store)
    assert code == 0
    code, output = cli("events", "order-3", "--store", sample_store, "--json")
    assert [(m["name"], m["payload"], m["received"]) for m in json.loads(output)] == [
        ("approved", "yes", False)
    ]

    async def resume() -> str:
        async with Runtime(store=PostgresStore(sample_store)) as runtime:
            return await runtime.run(order_workflow, ORDERS["order-3"], id="order-3")

    assert asyncio.run(resume()) == "shipped 3 (yes)"
    code, output = cli("list", "--store", "not-a-dsn")
    assert code == 2
    assert "--store" in output


def test_the_ui_api_on_postgres(sample_store: str) -> None:
    app = create_app(sample_store, token=TOKEN)
    headers = {"X-Durable-Token": TOKEN}
    with TestClient(app, base_url="http://127.0.0.1", headers=headers) as client:
        listing = client.get("/api/workflows").json()
        assert listing["total"] == 5
        assert listing["directory"].startswith("postgresql://durable@127.0.0.1:")
        data = client.get("/api/workflows/order-2").json()
        assert data["outcome"] == "failed"
        sent = client.post(
            "/api/workflows/order-3/events",
            json={"name": "approved"},
        )
        assert sent.json() == {"sent": True}


def test_a_directory_still_works_beside(sample_dir: Path) -> None:
    code, _ = cli("list", "--dir", str(sample_dir))
    assert code == 0
