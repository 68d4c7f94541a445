"""The web UI's app, through starlette's test client: the JSON API, the guards, the pages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import durable
from durable._encoding import encode
from durable._storage._directory import JournalDirectory
from durable._ui import create_app, is_loopback
from durable._ui._answers import PAGE_LIMIT

from .sample_app import Order, order_workflow

TOKEN = "test-token"


HEADERS = {"X-Durable-Token": TOKEN}


@pytest.fixture
def client(sample_dir: Path) -> Iterator[TestClient]:
    """A client that sends the token with every request (see test_every_api_read_needs_it)."""
    app = create_app(sample_dir, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        yield client


def test_list_api_pages_filters_and_searches(client: TestClient) -> None:
    everything = client.get("/api/workflows").json()
    assert everything["total"] == 5
    assert {w["id"] for w in everything["workflows"]} == {
        "order-2",
        "order-3",
        "order-4",
        "order-5",
        "order-7",
    }
    page = client.get("/api/workflows", params={"offset": 1, "limit": 2}).json()
    assert [w["id"] for w in page["workflows"]] == [w["id"] for w in everything["workflows"][1:3]]
    waiting = client.get("/api/workflows", params={"status": "waiting for event"}).json()
    assert [w["id"] for w in waiting["workflows"]] == ["order-3"]
    assert waiting["workflows"][0]["waiting_for"] == "approved"
    found = client.get("/api/workflows", params={"search": "ORDER-7"}).json()
    assert [w["id"] for w in found["workflows"]] == ["order-7"]
    assert client.get("/api/workflows", params={"status": "bogus"}).status_code == 400
    assert client.get("/api/workflows", params={"limit": "many"}).status_code == 400


def test_workflow_api_gives_history_and_outcome(client: TestClient) -> None:
    data = client.get("/api/workflows/order-7").json()
    assert data["workflow"]["state"] == "completed"
    assert data["result"] == "shipped 7 (auto)"
    assert data["arguments"] == [{"number": 7, "amount": 20.0}]
    assert data["total_steps"] == 4
    charge = data["steps"][0]
    assert [a["error"]["type"] if a["error"] else None for a in charge["attempts"]] == [
        "ConnectionError",
        "ConnectionError",
        None,
    ]
    failed = client.get("/api/workflows/order-2").json()
    assert failed["outcome"] == "failed"
    assert "Traceback" in failed["error"]["tb"]


def test_ids_from_urls_are_validated(client: TestClient) -> None:
    answer = client.get("/api/workflows/bad%20id")
    assert answer.status_code == 400
    assert "invalid workflow id" in answer.json()["error"]
    assert client.get("/api/workflows/..").status_code in (400, 404)
    assert client.get("/api/workflows/order-999").status_code == 404
    assert client.get("/workflows/bad%20id").status_code == 400
    assert client.get("/workflows/order-7").status_code == 200


def test_actions_need_the_token(sample_dir: Path) -> None:
    with TestClient(create_app(sample_dir, token=TOKEN), base_url="http://127.0.0.1") as client:
        url = "/api/workflows/order-3/events"
        assert client.post(url, json={"name": "approved"}).status_code == 403
        wrong = client.post(url, json={"name": "approved"}, headers={"X-Durable-Token": "nope"})
        assert wrong.status_code == 403
        assert "token" in wrong.json()["error"]
        assert client.post("/api/workflows/order-3/cancel", json={}).status_code == 403
    assert not (sample_dir / "order-3.inbox").exists()


def test_send_and_cancel_with_the_token(client: TestClient) -> None:
    headers = HEADERS
    sent = client.post(
        "/api/workflows/order-3/events",
        json={"name": "approved", "payload": {"by": "ui"}, "event_id": "e-1"},
        headers=headers,
    )
    assert sent.json() == {"sent": True}
    again = client.post(
        "/api/workflows/order-3/events",
        json={"name": "approved", "event_id": "e-1"},
        headers=headers,
    )
    assert again.json() == {"sent": False}
    inbox = client.get("/api/workflows/order-3").json()["inbox"]
    assert [(m["name"], m["payload"]) for m in inbox] == [("approved", {"by": "ui"})]
    assert client.post(
        "/api/workflows/order-4/cancel", json={"reason": "r"}, headers=headers
    ).json() == {"cancelled": True}
    finished = client.post("/api/workflows/order-7/cancel", json={}, headers=headers)
    assert finished.status_code == 409
    assert "completed" in finished.json()["error"]
    bad = client.post("/api/workflows/order-3/events", content=b"{", headers=headers)
    assert bad.status_code == 400
    nameless = client.post("/api/workflows/order-3/events", json={"name": " "}, headers=headers)
    assert nameless.status_code == 400


def test_other_host_names_are_refused(sample_dir: Path) -> None:
    """A page on another origin that rebinds its name to 127.0.0.1 cannot read the API."""
    app = create_app(sample_dir, token=TOKEN)
    with TestClient(app, base_url="http://evil.example", headers=HEADERS) as client:
        assert client.get("/api/workflows").status_code == 400
    app = create_app(sample_dir, token=TOKEN, allow_remote=True)
    with TestClient(app, base_url="http://box", headers=HEADERS) as client:
        assert client.get("/api/workflows").status_code == 200


def test_pages_and_static_files(client: TestClient) -> None:
    assert "Workflows" in client.get("/").text
    assert client.get("/static/workflow.js").status_code == 200
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg")


def test_large_histories_come_a_page_at_a_time(tmp_path: Path) -> None:
    async def write(steps: int) -> None:
        async with JournalDirectory(tmp_path) as store:
            journal = await store.open("big")
            journal.write(
                encode(
                    {"k": "start", "v": 2, "wf": "w", "id": "big", "args": [], "t": 1.0, "seed": 1}
                )
            )
            for step in range(steps):
                journal.write(
                    encode(
                        {"k": "done", "s": step, "a": "a", "d": "x", "n": 1, "r": step, "t": 2.0}
                    )
                )
            await journal.close()

    asyncio.run(write(5000))
    app = create_app(tmp_path, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        latest = client.get("/api/workflows/big").json()
        assert latest["total_steps"] == 5000
        assert [s["step"] for s in latest["steps"]] == list(range(4800, 5000))
        first = client.get("/api/workflows/big", params={"from": 0, "limit": 10**6}).json()
        assert len(first["steps"]) == PAGE_LIMIT
        assert first["steps"][0]["step"] == 0


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.5")
    assert not is_loopback("example.com")


def test_pages_cannot_be_framed_and_the_bound_host_is_accepted(sample_dir: Path) -> None:
    app = create_app(sample_dir, host="127.0.0.2")
    with TestClient(app, base_url="http://127.0.0.2:8233") as client:
        answer = client.get("/")
        assert answer.status_code == 200
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_a_long_inbox_comes_capped(client: TestClient) -> None:
    headers = HEADERS
    for index in range(PAGE_LIMIT + 5):
        answer = client.post(
            "/api/workflows/order-4/events", json={"name": f"e{index}"}, headers=headers
        )
        assert answer.status_code == 200
    data = client.get("/api/workflows/order-4").json()
    assert data["total_inbox"] == PAGE_LIMIT + 5
    assert len(data["inbox"]) == PAGE_LIMIT
    assert data["inbox"][0]["name"] == "e0"


def test_search_matches_the_status_as_shown(client: TestClient) -> None:
    found = client.get("/api/workflows", params={"search": '"paid": "pay-3"'}).json()
    assert [w["id"] for w in found["workflows"]] == ["order-3"]


def test_workflow_api_tells_a_queued_workflows_state(tmp_path: Path) -> None:
    async def enqueue() -> None:
        queue = durable.Queue("unserved", concurrency=1)
        async with durable.Runtime(tmp_path) as runtime:
            for number in (1, 2):
                await runtime.enqueue(queue, order_workflow, Order(number, 9.5), id=f"q-{number}")

    asyncio.run(enqueue())
    app = create_app(tmp_path, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        answer = client.get("/api/workflows/q-2")
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["workflow"]["state"] == "queued"
        assert data["workflow"]["status"]["position"] == 2
        assert "2 of 2" in data["workflow"]["current"]
        assert "a runtime that serves this queue" in data["workflow"]["current"]
        assert data["arguments"] == [{"number": 2, "amount": 9.5}]
        assert data["steps"] == []
        assert client.get("/api/workflows/q-3").status_code == 404
        [load] = client.get("/api/workflows").json()["queues"]  # (the list page shows it)
        assert (load["name"], load["waiting"], load["concurrency"]) == ("unserved", 2, 1)
        assert (load["running"], load["admitted"], load["damaged"]) == (0, 0, 0)


def test_workflow_api_gives_each_steps_call_site_with_an_excerpt(client: TestClient) -> None:
    steps = client.get("/api/workflows/order-7").json()["steps"]
    site = steps[0]["site"]
    assert site["file"].endswith("sample_app.py")
    assert (site["line"], site["function"]) == (51, "order_workflow")
    assert [51, "    payment = await charge_payment(order)"] in site["excerpt"]
    assert len(site["excerpt"]) == 5  # the line and two either side
