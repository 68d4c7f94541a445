"""The web UI's API is closed and bounded: the token on every read, long values cut (and
fetched whole one at a time), request bodies limited, concurrent reads shared."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

import durable
from durable._encoding import encode
from durable._errors import (
    InboxFull,
    JournalCorrupted,
    JournalWriteError,
    MessageTooLarge,
    WorkflowFinished,
    WorkflowNotFound,
)
from durable._json_ready import to_plain
from durable._storage._directory import JournalDirectory
from durable._ui import create_app
from durable._ui._answers import ATTEMPT_LIMIT, NAME_LIMIT, ROW_LIMIT, SMALL, VALUE_LIMIT
from durable._ui._app import BODY_LIMIT, JSON_DEPTH_LIMIT, _durable_error, _RecentDetails

TOKEN = "test-token"
HEADERS = {"X-Durable-Token": TOKEN}
MIB = 1024 * 1024
STEPS, ATTEMPTS = 20, 30  # (the hostile journal's)


@pytest.fixture
def client(sample_dir: Path) -> Iterator[TestClient]:
    app = create_app(sample_dir, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        yield client


def test_every_api_read_needs_the_token(sample_dir: Path) -> None:
    app = create_app(sample_dir, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for url in (
            "/api/workflows",
            "/api/workflows/order-7",
            "/api/workflows/order-7/values/result",
            "/api/workflows/no-such-one",
            "/api/anything-else",
        ):
            for headers in ({}, {"X-Durable-Token": "wrong"}):
                refused = client.get(url, headers=headers)
                assert refused.status_code == 403, url
                assert "open the address it printed" in refused.json()["error"]
                assert "shipped" not in refused.text
            assert client.get(url, headers=HEADERS).status_code in (200, 404)
        # The pages hold no journal data: they load, and their script reads with the token.
        assert client.get("/").status_code == 200
        assert client.get("/workflows/order-7").status_code == 200
        assert "X-Durable-Token" in client.get("/static/common.js").text


def big_payloads_sent(directory: Path, count: int, size: int) -> None:
    async def send() -> None:
        async with durable.Runtime(directory) as runtime:
            for index in range(count):
                await runtime.send_event("order-3", f"e{index}", "x" * size)

    asyncio.run(send())


def test_pending_payloads_come_cut_and_one_comes_whole(
    client: TestClient, sample_dir: Path
) -> None:
    big_payloads_sent(sample_dir, 8, MIB)
    answer = client.get("/api/workflows/order-3")
    assert answer.status_code == 200
    assert len(answer.content) < 100_000  # (8 MiB pending; it was 8.4 MB inline)
    inbox = answer.json()["inbox"]
    assert [m["name"] for m in inbox] == [f"e{index}" for index in range(8)]
    for message in inbox:
        assert message["payload"] == '"' + "x" * (VALUE_LIMIT - 1)
        assert message["truncated"] == {"payload": f"inbox/{message['position']}/payload"}
    whole = client.get("/api/workflows/order-3/values/inbox/5/payload")
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "application/json"
    assert whole.json() == "x" * MIB
    assert client.get("/api/workflows/order-3/values/inbox/5/name").json() == "e5"


def test_unknown_refs_are_404_naming_the_workflow(client: TestClient) -> None:
    for ref in ("nothing", "inbox/99/payload", "steps/99/result", "steps/x/result", "inbox/-1/p"):
        missing = client.get(f"/api/workflows/order-7/values/{ref}")
        assert missing.status_code == 404, ref
        assert "workflow 'order-7' has no value" in missing.json()["error"]
    assert client.get("/api/workflows/bad%20id/values/result").status_code == 400
    assert client.get("/api/workflows/order-999/values/result").status_code == 404
    assert client.get("/api/workflows/order-7/values/result").json() == "shipped 7 (auto)"


def write_hostile(directory: Path) -> dict[str, Any]:
    """A journal whose every field is as large as a record allows (or near): what it holds."""
    big = "y" * (300 * 1024)
    error = {"type": "E" * 1000, "msg": "m" * 10_000, "tb": "t" * 10_000}
    held: dict[str, Any] = {"arguments": [big, {"k": [big]}], "error": error, "big": big}

    async def write() -> None:
        async with JournalDirectory(directory) as store:
            journal = await store.open("huge")
            start = {"k": "start", "v": 2, "wf": "w" * 150, "id": "huge", "args": [], "t": 1.0}
            journal.write(encode({**start, "args": held["arguments"], "seed": 1}))
            for step in range(STEPS):  # each with ATTEMPTS attempts, all failed but the last
                sched = {"k": "sched", "s": step, "a": "a" * 250, "d": "x", "n": 1, "t": 2}
                journal.write(encode(sched))
                for attempt in range(1, ATTEMPTS):
                    retry = {"k": "retry", "s": step, "n": attempt, "e": error, "at": 3, "t": 2}
                    journal.write(encode(retry))
                journal.write(encode({"k": "done", "s": step, "n": ATTEMPTS, "r": big, "t": 3.0}))
            journal.write(encode({"k": "status", "s": STEPS, "v": {"note": big}, "t": 4.0}))
            journal.write(encode({"k": "end", "e": error, "t": 5.0}))
            await journal.close()

    asyncio.run(write())
    return held


def test_a_journal_of_huge_values_gives_bounded_answers(tmp_path: Path) -> None:
    held = write_hostile(tmp_path)
    app = create_app(tmp_path, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        answer = client.get("/api/workflows/huge", params={"from": 0, "limit": 500})
        assert answer.status_code == 200
        assert len(answer.content) < 4 * MIB
        data = answer.json()
        assert data["truncated"] == {"arguments": "arguments", "error": "error"}
        assert len(data["arguments"]) == VALUE_LIMIT
        assert data["error"]["truncated"] == {"type": "error", "msg": "error", "tb": "error"}
        assert len(data["error"]["msg"]) == VALUE_LIMIT
        assert len(data["error"]["type"]) == NAME_LIMIT
        step = data["steps"][0]
        assert step["total_attempts"] == ATTEMPTS
        shown = list(range(ATTEMPTS + 1 - ATTEMPT_LIMIT, ATTEMPTS + 1))
        assert [a["number"] for a in step["attempts"]] == shown
        assert step["truncated"] == {"result": "steps/0/result", "name": "steps/0/name"}
        assert step["attempts"][0]["truncated"] == {"error": f"steps/0/attempts/{shown[0]}/error"}
        listing = client.get("/api/workflows").json()["workflows"][0]
        assert len(listing["workflow"]) == 150  # (under NAME_LIMIT: whole)
        assert len(listing["error"]) == ROW_LIMIT
        cut_row = {"status": "workflow/status", "error": "workflow/error"}
        assert listing["truncated"] == data["workflow"]["truncated"] == cut_row
        for ref, value in [
            ("arguments", held["arguments"]),
            ("error", held["error"]),
            ("steps/3/result", held["big"]),
            ("steps/3/attempts/11/error", held["error"]),
            ("steps/3/attempts/1/error", held["error"]),  # (not in the answer: fetchable)
            (f"steps/{STEPS}/result", {"note": held["big"]}),
            ("workflow/status", {"note": held["big"]}),
        ]:
            whole = client.get(f"/api/workflows/huge/values/{ref}")
            assert whole.status_code == 200, ref
            assert whole.json() == to_plain(value), ref


def test_values_past_the_answer_budget_come_as_short_previews(tmp_path: Path) -> None:
    async def write() -> None:
        async with JournalDirectory(tmp_path) as store:
            journal = await store.open("many")
            start = {"k": "start", "v": 2, "wf": "w", "id": "many", "args": [], "t": 1.0}
            journal.write(encode({**start, "seed": 1}))
            for step in range(500):
                done = {"k": "done", "s": step, "a": "a", "d": "x", "n": 1, "r": "z" * 10_000}
                journal.write(encode({**done, "t": 2.0}))
            await journal.close()

    asyncio.run(write())
    app = create_app(tmp_path, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", headers=HEADERS) as client:
        answer = client.get("/api/workflows/many", params={"from": 0, "limit": 500})
        assert len(answer.content) < 2 * MIB
        steps = answer.json()["steps"]
        for step in steps:
            assert step["truncated"] == {"result": f"steps/{step['step']}/result"}
        assert len(steps[-1]["result"]) == SMALL  # (the budget spent by then: still fetchable)
        assert len(client.get("/api/workflows/many/values/steps/499/result").json()) == 10_000


def test_request_bodies_are_bounded(client: TestClient, sample_dir: Path) -> None:
    url = "/api/workflows/order-3/events"
    oversized = json.dumps({"name": "approved", "payload": "x" * BODY_LIMIT})
    refused = client.post(url, content=oversized)
    assert refused.status_code == 413
    assert "order-3" in refused.json()["error"]
    assert "durable send" in refused.json()["error"]

    def chunked() -> Iterator[bytes]:  # (no Content-Length to refuse it by)
        yield b'{"name": "approved", "payload": "'
        for _ in range(BODY_LIMIT // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    assert client.post(url, content=chunked()).status_code == 413
    for depth in (100_000, JSON_DEPTH_LIMIT):  # (the object itself is one level)
        nested = '{"name": "approved", "payload": ' + "[" * depth + "]" * depth + "}"
        deep = client.post(url, content=nested)
        assert deep.status_code == 400, depth
        assert "nests deeper than" in deep.json()["error"]
        assert "order-3" in deep.json()["error"]
    cancel = client.post("/api/workflows/order-3/cancel", content="[" * 100_000)
    assert cancel.status_code == 400
    assert not (sample_dir / "order-3.inbox").exists()
    deepest = "[" * (JSON_DEPTH_LIMIT - 1) + "]" * (JSON_DEPTH_LIMIT - 1)
    sent = client.post(url, content='{"name": "approved", "payload": ' + deepest + "}")
    assert sent.json() == {"sent": True}


def test_concurrent_reads_of_a_workflow_share_one(sample_dir: Path) -> None:
    class SlowCatalog:
        def __init__(self) -> None:
            self.reads = 0
            self.release = anyio.Event()

        def version(self, workflow_id: str) -> tuple[int, ...]:
            return (1, 2, 3, 4, 5, 6, 7, 8)

        async def details(self, workflow_id: str) -> Any:
            self.reads += 1
            await self.release.wait()
            return workflow_id

    async def main() -> list[Any]:
        catalog = SlowCatalog()
        recent = _RecentDetails(catalog)  # type: ignore[arg-type]
        got: list[Any] = []

        async def get() -> None:
            got.append(await recent.get("order-3"))

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(get)
            await anyio.wait_all_tasks_blocked()
            catalog.release.set()
        assert catalog.reads == 1
        again: Any = await recent.get("order-3")
        assert again == "order-3"  # (kept: unchanged files)
        assert catalog.reads == 1
        return got

    assert anyio.run(main) == ["order-3"] * 50


def test_durable_errors_answer_with_the_status_of_their_kind() -> None:
    scope = {"type": "http", "method": "POST", "path": "/api/workflows/w/events", "headers": []}
    request = Request(scope)
    for error, status in [
        (MessageTooLarge(workflow_id="w", what="an event", size=9, limit=8), 413),
        (
            InboxFull(
                workflow_id="w", pending=1, pending_bytes=9, max_messages=1, max_bytes=9, size=1
            ),
            429,
        ),
        (WorkflowFinished(workflow_id="w", outcome="completed", action="send an event to"), 409),
        (WorkflowNotFound(workflow_id="w", directory="d"), 404),
        (JournalCorrupted(path="d/w.journal", offset=7, reason="bad"), 422),
        (JournalWriteError(path="d/w.journal", operation="read", errno=5, detail="EIO"), 500),
    ]:
        answer = _durable_error(request, error)
        assert answer.status_code == status, error
        assert "'w'" in json.loads(bytes(answer.body))["error"] or "w.journal" in str(error)


def test_a_deeply_nested_payload_comes_cut_never_a_500(
    client: TestClient, sample_dir: Path
) -> None:
    """900 levels: legal to send, beyond what recursive JSON code takes (a 500 before)."""
    deep: list[Any] = []
    for _ in range(899):
        deep = [deep]

    async def send() -> None:
        async with durable.Runtime(sample_dir) as runtime:
            await runtime.send_event("order-3", "deep", deep)

    asyncio.run(send())
    answer = client.get("/api/workflows/order-3")
    assert answer.status_code == 200
    message = answer.json()["inbox"][0]
    assert message["truncated"] == {"payload": "inbox/0/payload"}
    assert message["payload"].startswith("[[[[")
    whole = client.get("/api/workflows/order-3/values/inbox/0/payload")
    assert whole.content == b"[" * 900 + b"]" * 900
