"""The web UI's API where a new user first snagged: an unknown id is a 404, a journal that is
there and cannot be read a 422 (never a 500), each saying why; an event's timeout is part of
its wait. Through starlette's test client (the pages' side: test_ui_browser_first_hour)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from durable._ui import create_app

TOKEN = "test-token"


@pytest.fixture
def client(sample_dir: Path) -> Iterator[TestClient]:
    """The sample, order-4's journal damaged in place, order-7's copied as "copied"."""
    damaged = sample_dir / "order-4.journal"
    data = bytearray(damaged.read_bytes())
    data[40] ^= 0xFF  # (a frame's bytes, valid frames after it: damage, not a torn tail)
    damaged.write_bytes(bytes(data))
    shutil.copyfile(sample_dir / "order-7.journal", sample_dir / "copied.journal")
    app = create_app(sample_dir, token=TOKEN)
    headers = {"X-Durable-Token": TOKEN}
    with TestClient(app, base_url="http://127.0.0.1", headers=headers) as client:
        yield client


def answers(client: TestClient, workflow_id: str) -> list[tuple[int, str]]:
    """Each endpoint of one workflow: (status, error message)."""
    found = [
        client.get(f"/api/workflows/{workflow_id}"),
        client.get(f"/api/workflows/{workflow_id}/values/result"),
        client.post(f"/api/workflows/{workflow_id}/events", json={"name": "approved"}),
        client.post(f"/api/workflows/{workflow_id}/cancel", json={}),
    ]
    return [(answer.status_code, answer.json()["error"]) for answer in found]


def test_an_unknown_id_is_404_naming_it_and_the_directory(
    client: TestClient, sample_dir: Path
) -> None:
    for status, error in answers(client, "order-999"):
        assert status == 404
        assert f"no workflow 'order-999' in {sample_dir}" in error


@pytest.mark.parametrize(
    ("workflow_id", "why"),
    [("order-4", "order-4.journal is corrupted at byte"), ("copied", "holds frames written for")],
)
def test_an_unreadable_journal_is_422_saying_why(
    client: TestClient, workflow_id: str, why: str
) -> None:
    for status, error in answers(client, workflow_id):
        assert status == 422
        assert why in error
    listed = client.get("/api/workflows").json()
    assert why in listed["unreadable"][workflow_id]  # (the list names it too; the rest list)
    assert {row["id"] for row in listed["workflows"]} == {
        "order-2",
        "order-3",
        "order-5",
        "order-7",
    }


def test_an_event_timeout_comes_as_part_of_its_wait(client: TestClient) -> None:
    data = client.get("/api/workflows/order-3").json()
    assert data["total_steps"] == data["workflow"]["steps"] == 4  # (the page and the list)
    wait = data["steps"][-1]
    assert (wait["step"], wait["kind"], wait["state"]) == (3, "wait", "waiting")
    assert wait["timeout_at"] == pytest.approx(wait["began"] + 24 * 3600, abs=1)


def test_an_unknown_schedule_is_404_naming_it(client: TestClient) -> None:
    answer = client.get("/api/schedules/nightly")
    assert answer.status_code == 404
    assert "no schedule 'nightly'" in answer.json()["error"]
