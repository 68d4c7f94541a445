"""The web UI's bulk resume / restart / fork: what the list's dialog posts, and its page."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from durable._ui import create_app
from tests.query_fleet import make_directory

TOKEN = "test-token"
PICKED = {"workflow_id": ["pay-00", "pay-01", "pay-03", "ship-0"]}


@pytest.fixture(scope="module")
def fleet_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet") / "journals"
    asyncio.run(make_directory(directory))
    return directory


@pytest.fixture
def client(fleet_source: Path, tmp_path: Path) -> Iterator[TestClient]:
    copy = tmp_path / "journals"
    shutil.copytree(fleet_source, copy)
    app = create_app(copy, token=TOKEN)
    headers = {"X-Durable-Token": TOKEN}
    with TestClient(app, base_url="http://127.0.0.1", headers=headers) as client:
        yield client


def test_the_dialogs_dry_run_then_resume_journaled_as_the_web_ui(client: TestClient) -> None:
    plan = client.post("/api/bulk/resume", json={"filter": PICKED, "dry_run": True}).json()
    assert plan["outcomes"] == {"pay-03": "would resume", "pay-01": "would resume"}
    assert plan["skipped"] == {
        "pay-00": "completed: nothing to resume (restart or fork it)",
        "ship-0": "not ended: waiting for event (cancel it first, or wait for it to end)",
    }
    body = {"filter": PICKED, "bulk_id": plan["bulk_id"], "reason": "card API fixed"}
    done = client.post("/api/bulk/resume", json=body).json()
    assert done["outcomes"] == {"pay-03": "resumed", "pay-01": "resumed"}
    assert done["runs"] == {"pay-03": "pay-03", "pay-01": "pay-01"}
    history = client.get("/api/workflows/pay-01").json()
    assert history["workflow"]["state"] == "running"  # (resumed: a process with its code runs it)
    again = client.post("/api/bulk/resume", json=body).json()  # (the dialog's retry)
    assert again["resumed"] is True
    assert again["outcomes"] == done["outcomes"]


def test_restart_and_fork_from_the_dialog_with_its_fork_step(client: TestClient) -> None:
    done = client.post("/api/bulk/restart", json={"filter": {"state": "failed"}}).json()
    assert done["runs"] == {f"pay-0{n}": f"pay-0{n}@{done['bulk_id']}" for n in (1, 3)}
    assert client.get(f"/api/workflows/pay-01@{done['bulk_id']}").status_code == 200
    failure = {"filter": PICKED, "options": {"from_failure": True}, "dry_run": True}
    plan = client.post("/api/bulk/fork", json=failure).json()
    assert set(plan["outcomes"].values()) == {"would fork from the failed step"}
    assert plan["skipped"]["pay-00"].startswith("completed: nothing failed to fork from")
    at_step = {"filter": {"workflow_id": ["pay-00"]}, "options": {"at_step": 1}}
    done = client.post("/api/bulk/fork", json=at_step).json()
    assert done["outcomes"] == {"pay-00": f"forked as pay-00@{done['bulk_id']}"}


def test_bad_options_are_a_400_naming_them(client: TestClient) -> None:
    for body, words in [
        ({"filter": PICKED, "options": {"at_step": -2}}, "at_step must be a whole number"),
        ({"filter": PICKED, "options": {"override": {}}}, "no option 'override'"),
        ({"filter": PICKED, "options": [1]}, "options"),
    ]:
        answer = client.post("/api/bulk/fork", json=body)
        assert answer.status_code == 400, answer.text
        assert words in answer.json()["error"]
    answer = client.post("/api/bulk/cancel", json={"filter": PICKED, "options": {"at_step": 1}})
    assert answer.status_code == 400
    assert "takes no options" in answer.json()["error"]
    listed = client.get("/api/workflows", params={"workflow": "durable.bulk"}).json()
    assert listed["workflows"] == []  # (nothing was started)


def test_the_list_page_offers_each_action_on_a_selection_and_on_every_match(
    client: TestClient,
) -> None:
    page = client.get("/").text
    for action in ("cancel", "resume", "restart", "fork"):
        assert f'id="{action}-selected"' in page
        assert f'id="{action}-matching"' in page
    assert 'id="bulk-fork-at"' in page  # (the dialog's "fork at step N")
    script = client.get("/static/list.js").text
    assert 'postJSON("/api/bulk/" + action' in script
