"""The web UI's queries (filter parameters, cursors) and bulk cancel, through its JSON API."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from durable._ui import create_app
from tests.query_fleet import make_directory

TOKEN = "test-token"


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


def test_the_list_api_filters_and_pages_by_cursor(client: TestClient) -> None:
    first = client.get("/api/workflows", params={"workflow": "charge", "limit": 4}).json()
    assert first["total"] == 6
    assert [w["id"] for w in first["workflows"]] == ["pay-05", "pay-04", "pay-03", "pay-02"]
    rest = client.get(
        "/api/workflows", params={"workflow": "charge", "limit": 4, "cursor": first["next_cursor"]}
    ).json()
    assert [w["id"] for w in rest["workflows"]] == ["pay-01", "pay-00"]
    assert rest["next_cursor"] is None
    failed = client.get(
        "/api/workflows",
        params={"status": "failed", "error_type": "Declined", "started_after": "1h"},
    ).json()
    assert sorted(w["id"] for w in failed["workflows"]) == ["pay-01", "pay-03"]
    two = client.get("/api/workflows", params=[("workflow_id", "ship-0"), ("workflow_id", "kid-0")])
    assert sorted(w["id"] for w in two.json()["workflows"]) == ["kid-0", "ship-0"]
    nothing = client.get("/api/workflows", params={"parent": "nobody"}).json()
    assert (nothing["total"], nothing["workflows"]) == (0, [])


def test_bad_filter_values_are_400s_naming_the_field(client: TestClient) -> None:
    for params in (
        {"started_before": "tomorrowish"},
        {"workflow": "ship", "status": "bogus"},
        {"workflow": "ship", "cursor": "zzz"},
    ):
        answer = client.get("/api/workflows", params=params)
        assert answer.status_code == 400, params
        assert "workflow filter" in answer.json()["error"]


def test_bulk_cancel_dry_run_then_real_then_nothing_left(client: TestClient) -> None:
    body = {"filter": {"workflow_id": ["ship-0", "ship-1", "pay-00"]}, "dry_run": True}
    plan = client.post("/api/bulk/cancel", json=body).json()
    assert plan["dry_run"] is True
    assert plan["outcomes"] == {"ship-1": "would cancel", "ship-0": "would cancel"}
    assert plan["skipped"] == {"pay-00": "already completed"}
    done = client.post(
        "/api/bulk/cancel", json={**body, "dry_run": False, "reason": "ui test"}
    ).json()
    assert done["acted_on"] == 2
    assert set(done["outcomes"].values()) == {"cancelled"}
    inbox = client.get("/api/workflows/ship-0").json()["inbox"]
    assert [m["name"] for m in inbox if m["kind"] == "cancel"] == [
        f"ui test (bulk cancel {done['bulk_id']}, by web UI (testclient))"
    ]
    bulk = client.get("/api/workflows", params={"workflow": "durable.bulk"}).json()
    assert [w["id"] for w in bulk["workflows"]] == [done["bulk_id"]]


def test_bulk_bad_requests(client: TestClient) -> None:
    assert client.post("/api/bulk/cancel", json={}).status_code == 400
    assert client.post("/api/bulk/cancel", json={"filter": {"colour": "red"}}).status_code == 400
    answer = client.post("/api/bulk/cancel", json={"filter": {"state": "nope"}})
    assert answer.status_code == 400
    assert "state" in answer.json()["error"]
    answer = client.post("/api/bulk/explode", json={"filter": {"state": "failed"}})
    assert answer.status_code == 404
    assert "explode" in answer.json()["error"]
    headers = {"X-Durable-Token": "wrong"}
    refused = client.post("/api/bulk/cancel", json={"filter": {"state": "failed"}}, headers=headers)
    assert refused.status_code == 403


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_hostile_query_strings_are_400s_never_500s(client: TestClient) -> None:
    for params in (
        {"state": "bogus"},  # (the filter's own name for status: checked, not ignored)
        {"status": "bogus"},
        {"limit": "-1"},
        {"limit": "1.5"},
        {"limit": "9" * 40, "workflow": "charge", "started_after": "9999-99-99"},
        {"status": "failed", "cursor": _cursor([float("nan"), "pay-03"])},  # (json takes NaN)
        {"status": "failed", "cursor": _cursor([True, "pay-03"])},
        {"status": "failed", "cursor": _cursor({"started": 1})},
        {"status": "failed", "cursor": "A" * 5000},
        {"ended_before": "2026-13-01"},
        {"queue": "q" * 2000},
    ):
        answer = client.get("/api/workflows", params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["error"], params
    failed = client.get("/api/workflows", params={"state": "failed"}).json()
    assert sorted(w["id"] for w in failed["workflows"]) == ["pay-01", "pay-03"]
    huge = client.get("/api/workflows", params={"workflow": "charge", "limit": "9" * 40})
    assert huge.status_code == 200  # (a page is at most PAGE_LIMIT, whatever is asked)
    assert len(huge.json()["workflows"]) == 6


def test_a_bulk_dry_run_that_is_not_true_or_false_is_refused_not_done(
    client: TestClient, tmp_path: Path
) -> None:
    directory = tmp_path / "journals"
    before = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    for dry_run in ("yes", 1, "true", [True]):
        body = {"filter": {"state": ["failed"]}, "dry_run": dry_run}
        answer = client.post("/api/bulk/fork", json=body)
        assert answer.status_code == 400, answer.text
        assert "dry_run must be true or false" in answer.json()["error"]
        assert {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()} == before
