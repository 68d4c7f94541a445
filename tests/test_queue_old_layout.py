"""Requests durable wrote before the request log (a file each in waiting/, admitted/) still run.

The directory is laid out as the old layout left it: waiting/<id> request files, the `seq`
counter, and admitted/<id> for a request whose admitter died before its journal began.
A runtime of this version enqueues after them (numbered after the old counter), describes
and lists them all in one order, and serves them: old and new in priority then FIFO order,
the orphaned admission started by recover(); afterwards nothing is left, in either layout.
"""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

import pytest

import durable
from durable import Queue, Runtime
from durable._catalog import Catalog
from durable._encoding import encode
from durable._storage._queue_files import QueueFiles
from durable._storage._request_codec import Request, encode_request

pytestmark = pytest.mark.anyio

ran: list[str] = []


@durable.activity(name="old-layout-note")
async def note(label: str) -> None:
    ran.append(label)
    await asyncio.sleep(0.001)


@durable.workflow(name="old-layout-job")
async def old_job(label: str) -> str:
    await note(label)
    return label


def write_old_request(base: Path, where: str, name: str, seq: int, priority: int = 5) -> None:
    payload = encode({"wf": "old-layout-job", "args": [name]})
    data = encode_request(Request(name, priority, seq, 1.0e9, 1.0e9, None, None, payload))
    path = base / where / name
    path.write_bytes(data)
    path.chmod(0o600)


async def test_requests_of_the_old_layout_are_described_listed_and_served(
    tmp_path: Path,
) -> None:
    ran.clear()
    queue = Queue("upgraded", concurrency=1)
    QueueFiles(tmp_path, "upgraded").close()  # (its directories; no log yet)
    base = tmp_path / "queues" / "upgraded"
    write_old_request(base, "waiting", "old-1", 0)
    write_old_request(base, "waiting", "old-2", 1)
    write_old_request(base, "waiting", "old-urgent", 2, priority=1)
    write_old_request(base, "admitted", "old-orphan", 3)  # (its admitter died: no journal)
    (base / "seq").write_bytes(struct.pack("<Q", 4))
    assert not (base / "requests").exists()

    async with Runtime(tmp_path) as producer:  # (serves nothing)
        await producer.enqueue(queue, old_job, "new-1", id="new-1")
        described = await producer.describe("old-2")
        assert described.state is durable.WorkflowState.QUEUED
        assert described.status["position"] == 3
        assert "3 of 4" in (described.current or "")
        assert (await producer.describe("new-1")).status["position"] == 4
    async with Catalog(tmp_path) as catalog:
        listing = await catalog.listing(state="queued")
    [load] = listing.queues
    assert (load.waiting, load.admitted) == (4, 1)
    places = {d.workflow_id: d.status["position"] for d in listing.workflows}
    assert places == {"old-urgent": 1, "old-1": 2, "old-2": 3, "new-1": 4}

    async with Runtime(tmp_path, queues=[queue], workflows=[old_job]) as runtime:
        await runtime.recover()  # (starts the orphaned admission; the dispatcher runs)
        for name in ("old-orphan", "old-urgent", "old-1", "old-2", "new-1"):
            handle = await runtime.handle(name)
            assert await asyncio.wait_for(handle.result(), 30) == name
    waiting_order = [label for label in ran if label != "old-orphan"]
    assert waiting_order == ["old-urgent", "old-1", "old-2", "new-1"]
    assert sorted(ran) == sorted(["old-orphan", "old-urgent", "old-1", "old-2", "new-1"])
    assert os.listdir(base / "waiting") == []
    assert os.listdir(base / "admitted") == []
    files = QueueFiles(tmp_path, "upgraded", create=False)
    try:
        assert (files.waiting(), files.admitted()) == ([], [])
    finally:
        files.close()


async def test_a_queue_whose_log_is_not_one_is_listed_as_unreadable(tmp_path: Path) -> None:
    queue = Queue("good")
    async with Runtime(tmp_path) as producer:
        await producer.enqueue(queue, old_job, "fine", id="fine")
    QueueFiles(tmp_path, "bad").close()
    (tmp_path / "queues" / "bad" / "requests").write_bytes(b"not a request log at all")
    async with Catalog(tmp_path) as catalog:
        listing = await catalog.listing(state="queued")
    assert [d.workflow_id for d in listing.workflows] == ["fine"]
    assert "not a request log" in listing.unreadable["queue bad"]
