"""The web UI's resume, restart and fork (POST /api/workflows/{id}/{action}): the body
validated once, refusals as HTTP statuses, and the links in the workflow's answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import durable
from durable._ui import create_app

from . import sample_app

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


def test_a_fork_with_an_override_from_the_ui_is_checked_against_the_code(
    sample_dir: Path,
) -> None:
    app = create_app(sample_dir, token=TOKEN, workflows=[sample_app.order_workflow])
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        before = {path.name: path.stat().st_size for path in sample_dir.iterdir()}
        bad: list[tuple[dict[str, Any], str]] = [
            ({"override": {"step": 0, "value": 5}}, "returns str, and int 5 is not of type str"),
            ({"override": {"step": 3, "value": "x"}}, "no outcome of an activity"),
            ({"override": {"step": -1, "value": "x"}}, "integer >= 0"),
            ({"override": {"step": "0", "value": "x"}}, "integer >= 0"),
            ({"override": {"step": 0}}, '{"step": N, "value": <JSON>}'),
            ({"override": [0, "x"]}, '{"step": N, "value": <JSON>}'),
        ]
        for body, says in bad:
            answer = client.post("/api/workflows/order-2/fork", json={"from_failure": True, **body})
            assert answer.status_code == 400, (body, answer.json())
            assert says in answer.json()["error"], (body, answer.json())
        assert {path.name: path.stat().st_size for path in sample_dir.iterdir()} == before
        forked = client.post(
            "/api/workflows/order-2/fork",
            json={"from_failure": True, "override": {"step": 0, "value": "pay-forced"}},
        )
        assert forked.json() == {"action": "fork", "workflow_id": "order-2-fork-failure-override-0"}
        fork = client.get("/api/workflows/order-2-fork-failure-override-0").json()
        assert [(link["kind"], link["workflow_id"]) for link in fork["links"]] == [
            ("forked from", "order-2")
        ]

    async def run_it() -> str:
        async with durable.Runtime(sample_dir, workflows=[sample_app.order_workflow]) as runtime:
            handle = await runtime.handle("order-2-fork-failure-override-0")
            return str(await handle.result())

    assert asyncio.run(run_it()) == "shipped 2 (auto)"


def test_an_override_without_the_code_is_refused_saying_to_give_it(client: TestClient) -> None:
    answer = client.post(
        "/api/workflows/order-2/fork",
        json={"from_failure": True, "override": {"step": 0, "value": "pay-forced"}},
    )
    assert answer.status_code == 400
    assert "durable ui --code MODULE" in answer.json()["error"]
