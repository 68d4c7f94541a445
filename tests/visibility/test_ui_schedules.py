"""The web UI's schedules (durable/_ui/_schedule_api.py), through starlette's test client.

The schedule ran two nights on virtual time (TestRuntime), then closed; the UI reads what
it published and sends its commands to its inbox; a TestRuntime started again takes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import durable
from durable._ui import create_app
from durable.testing import TestRuntime

TOKEN = "test-token"
HEADERS = {"X-Durable-Token": TOKEN}
START = datetime(2026, 1, 1, 12, tzinfo=UTC)


@durable.workflow
async def report(fire: datetime, title: str) -> str:
    return f"{title} {fire.isoformat()}"


def reports() -> durable.Schedule:
    return durable.Schedule(
        "reports", report, args=("daily",), cron="0 2 * * *", timezone="Europe/Berlin"
    )


async def run_schedule(directory: Path, start: datetime, days: str) -> durable.ScheduleDescription:
    """Run the schedule for `days` of virtual time from `start` (taking what waits)."""
    async with TestRuntime(directory, start_time=start) as runtime:
        handle = await reports().start(runtime)
        await runtime.advance(days)
        return await handle.describe()


async def take_commands(directory: Path, start: datetime, days: str) -> durable.ScheduleDescription:
    """Resume the schedule as a restarted process does (recover(), no start()) for `days`.

    Not Schedule.start(): a start sends `ensure` after the commands waiting, which would
    create a deleted schedule again.
    """
    async with TestRuntime(directory, workflows=[reports().runner], start_time=start) as runtime:
        await runtime.recover()
        await runtime.advance(days)
        return await durable.ScheduleHandle(runtime, "reports").describe()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    asyncio.run(run_schedule(tmp_path / "journals", START, "2 days"))
    return tmp_path / "journals"


@pytest.fixture
def client(directory: Path) -> Iterator[TestClient]:
    app = create_app(directory, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        yield client


def test_the_list_shows_definition_state_next_fires_and_last_results(client: TestClient) -> None:
    data = client.get("/api/schedules").json()
    assert data["total"] == 1
    (row,) = data["schedules"]
    assert (row["name"], row["id"], row["workflow"]) == ("reports", "schedule:reports", "report")
    assert (row["cron"], row["every"], row["timezone"]) == ("0 2 * * *", None, "Europe/Berlin")
    assert (row["state"], row["paused"], row["deleted"]) == ("active", False, False)
    assert row["next_fires"] == [
        "2026-01-04T02:00:00+01:00",
        "2026-01-05T02:00:00+01:00",
        "2026-01-06T02:00:00+01:00",
    ]
    assert row["fires"] == 2
    assert row["args"] == ["daily"]
    last = row["recent"][-1]
    assert last["workflow_id"] == "reports@2026-01-03T01:00:00Z"
    assert (last["fire"], last["kind"], last["outcome"]) == (
        "2026-01-03T02:00:00+01:00",
        "scheduled",
        "completed",
    )
    assert last["detail"] == "'daily 2026-01-03T02:00:00+01:00'"
    # A fire's workflow page is where the link goes: it is there.
    fire = client.get(f"/api/workflows/{last['workflow_id']}").json()
    assert fire["result"] == "daily 2026-01-03T02:00:00+01:00"


def test_a_schedule_s_own_answer(client: TestClient) -> None:
    data = client.get("/api/schedules/reports").json()
    assert len(data["next_fires"]) == 10
    assert [r["workflow_id"] for r in data["recent"]] == [
        "reports@2026-01-02T01:00:00Z",
        "reports@2026-01-03T01:00:00Z",
    ]
    assert (data["running"], data["pending"], data["total_recent"]) == ([], [], 2)
    assert data["workflow_state"] == "waiting for event"


def test_unknown_schedules_and_actions_are_404(client: TestClient) -> None:
    for answer in (
        client.get("/api/schedules/nope"),
        client.post("/api/schedules/nope/pause", json={}),
        client.get("/api/schedules/bad%20name"),
        client.post("/api/schedules/.hidden/trigger", json={}),
    ):
        assert answer.status_code == 404, answer.text
        assert "no schedule" in answer.json()["error"]
    unknown = client.post("/api/schedules/reports/explode", json={})
    assert unknown.status_code == 404
    assert "no schedule action 'explode'" in unknown.json()["error"]
    assert client.get("/api/schedules/order-7").status_code == 404  # (no such workflow)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"start": "2026-01-02", "end": "2026-01-01"}, "not after start"),
        ({"start": "2026-01-01", "end": "2026-01-01"}, "not after start"),
        ({"start": "yesterday", "end": "2026-01-01"}, "not an ISO time"),
        ({"start": "2026-01-01"}, "backfill end"),
        ({"start": 5, "end": "2026-01-01"}, "backfill start"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "over 1000"),
    ],
)
def test_an_invalid_backfill_range_is_422(
    client: TestClient, body: dict[str, object], says: str
) -> None:
    answer = client.post("/api/schedules/reports/backfill", json=body)
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["error"]
    assert client.get("/api/workflows/schedule:reports").json()["total_inbox"] == 0


def test_bad_bodies_are_refused_before_anything_is_sent(client: TestClient) -> None:
    assert client.post("/api/schedules/reports/pause", content=b"{").status_code == 400
    assert client.post("/api/schedules/reports/pause", json=[1]).status_code == 400
    not_text = client.post("/api/schedules/reports/pause", json={"note": {"why": 1}})
    assert not_text.status_code == 422
    assert "note" in not_text.json()["error"]
    assert client.get("/api/workflows/schedule:reports").json()["total_inbox"] == 0


def test_actions_need_the_token(directory: Path) -> None:
    with TestClient(create_app(directory, token=TOKEN), base_url="http://127.0.0.1") as client:
        assert client.get("/api/schedules").status_code == 403
        assert client.get("/api/schedules/reports").status_code == 403
        for action in ("pause", "resume", "trigger", "backfill", "delete"):
            assert client.post(f"/api/schedules/reports/{action}", json={}).status_code == 403
    assert not (directory / "schedule:reports.inbox").exists()


def test_commands_reach_the_schedule_and_a_deleted_one_takes_none(
    client: TestClient, directory: Path
) -> None:
    paused = client.post("/api/schedules/reports/pause", json={"note": "audit"})
    assert paused.status_code == 200
    assert paused.json()["sent"] == "pause"
    assert "Pause sent" in paused.json()["message"]
    backfill = client.post(
        "/api/schedules/reports/backfill", json={"start": "2025-12-30", "end": "2026-01-01"}
    )
    assert backfill.json()["count"] == 2  # (naive times: read in Europe/Berlin)
    assert client.post("/api/schedules/reports/trigger", json={}).status_code == 200
    inbox = client.get("/api/workflows/schedule:reports").json()["inbox"]
    assert [m["payload"]["op"] for m in inbox] == ["pause", "backfill", "trigger"]

    # The process running the schedule takes them (here: one restarted, recovering it).
    restart = datetime(2026, 1, 3, 12, tzinfo=UTC)
    described = asyncio.run(take_commands(directory, restart, "2 days"))
    assert (described.paused, described.note) == (True, "audit")
    assert [r.kind for r in described.recent[-3:]] == ["trigger", "backfill", "backfill"]
    row = client.get("/api/schedules").json()["schedules"][0]
    assert (row["state"], row["note"], row["next_fires"]) == ("paused", "audit", [])
    assert client.post("/api/schedules/reports/resume", json={}).status_code == 200
    deleted = client.post("/api/schedules/reports/delete", json={"note": "gone"})
    assert deleted.status_code == 200
    asyncio.run(take_commands(directory, datetime(2026, 1, 5, 12, tzinfo=UTC), "1 hour"))
    row = client.get("/api/schedules/reports").json()
    assert (row["state"], row["note"]) == ("deleted", "gone")
    refused = client.post("/api/schedules/reports/trigger", json={})
    assert refused.status_code == 409
    assert "is deleted" in refused.json()["error"]


def test_no_schedules_and_the_pages(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    app = create_app(tmp_path, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        assert client.get("/api/schedules").json()["schedules"] == []
        assert "Schedules" in client.get("/schedules").text
        assert 'id="pause-dialog"' in client.get("/schedules/reports").text
        assert client.get("/static/schedule.js").status_code == 200
