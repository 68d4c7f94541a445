"""The web UI's resume, restart and fork (POST /api/workflows/{id}/{action}): the body
validated once, refusals as HTTP statuses, and the links in the workflow's answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from durable._ui import create_app

TOKEN = "test-token"
HEADERS = {"X-Durable-Token": TOKEN}


@pytest.fixture
def client(sample_dir: Path) -> Iterator[TestClient]:
    app = create_app(sample_dir, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        yield client


def test_resume_restart_and_fork_from_the_ui(client: TestClient) -> None:
    resumed = client.post("/api/workflows/order-2/resume", json={"reason": "fixed"})
    assert resumed.json() == {"action": "resume", "workflow_id": "order-2"}
    links = client.get("/api/workflows/order-2").json()["links"]
    assert [(link["kind"], link["reason"]) for link in links] == [("resumed", "fixed")]
    assert links[0]["by"].startswith("web UI (")
    again = client.post("/api/workflows/order-2/resume", json={})  # (a retry: it stands)
    assert again.status_code == 200
    restarted = client.post("/api/workflows/order-7/restart", json={"new_id": "order-7b"})
    assert restarted.json() == {"action": "restart", "workflow_id": "order-7b"}
    forked = client.post("/api/workflows/order-7/fork", json={"at_step": 1})
    assert forked.json() == {"action": "fork", "workflow_id": "order-7-fork-1"}
    source = client.get("/api/workflows/order-7").json()["links"]
    assert [(link["kind"], link["workflow_id"]) for link in source] == [
        ("restarted as", "order-7b"),
        ("forked to", "order-7-fork-1"),
    ]
    fork = client.get("/api/workflows/order-7-fork-1").json()
    assert [(link["kind"], link["workflow_id"], link["step"]) for link in fork["links"]] == [
        ("forked from", "order-7", 1)
    ]


BAD = [
    ("/api/workflows/order-7/resume", {}, 409, "it is completed"),
    ("/api/workflows/order-3/resume", {}, 409, "not ended"),
    ("/api/workflows/order-3/fork", {"at_step": 0}, 409, "not ended"),
    ("/api/workflows/order-7/fork", {"at_step": 99}, 400, "at step 99"),
    ("/api/workflows/order-7/fork", {"at_step": -1}, 400, "integer >= 0"),
    ("/api/workflows/order-7/fork", {"at_step": "1"}, 400, "integer >= 0"),
    ("/api/workflows/order-7/fork", {}, 400, "at_step or from_failure"),
    ("/api/workflows/order-7/fork", {"from_failure": True}, 409, "it is completed"),
    ("/api/workflows/order-7/restart", {"new_id": 5}, 400, "new_id must be text"),
    ("/api/workflows/order-7/restart", {"new_id": "bad id"}, 400, "invalid workflow id"),
    ("/api/workflows/order-7/restart", {"reason": "x" * 1001}, 400, "at most 1000"),
    ("/api/workflows/order-999/restart", {}, 404, "no workflow"),
    ("/api/workflows/order-7/explode", {}, 400, "unknown action"),
]


def test_bad_requests_are_refused_with_nothing_written(
    client: TestClient, sample_dir: Path
) -> None:
    before = {path.name: path.stat().st_size for path in sample_dir.iterdir()}
    for url, body, status, says in BAD:
        answer = client.post(url, json=body)
        assert answer.status_code == status, (url, body, answer.json())
        assert says in answer.json()["error"], (url, body)
    assert {path.name: path.stat().st_size for path in sample_dir.iterdir()} == before


def test_actions_need_the_token(sample_dir: Path) -> None:
    with TestClient(create_app(sample_dir, token=TOKEN), base_url="http://127.0.0.1") as client:
        assert client.post("/api/workflows/order-2/resume", json={}).status_code == 403
