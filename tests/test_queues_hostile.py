"""Queues against hostile files and racing callers (file store), found by probing issue 19.

Things planted in a queue's waiting/ and admitted/ (a link, a fifo, a directory, garbage, a
name no journal may have, a request naming a workflow nobody registered) never stop the
dispatcher nor serve(), are never followed out of the directory, and show in `durable list`
(the catalog) as what they are. An orphaned admission is started once even when two
runtimes recover at once; two enqueues of one dedup_id racing make one workflow.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import Queue, Runtime
from durable._catalog import Catalog
from durable._encoding import encode
from durable._storage._queue_files import QueueFiles, digest
from durable._storage._request_codec import Request, encode_request

pytestmark = pytest.mark.anyio

hostile = Queue("hostile", concurrency=2)
ran: list[int] = []


@durable.activity(name="hostile-act")
async def act(n: int) -> int:
    ran.append(n)
    return n


@durable.workflow(name="hostile-job")
async def job(n: int) -> int:
    return await act(n)


@pytest.fixture(autouse=True)
def fresh_runs() -> Iterator[None]:
    ran.clear()
    yield
    ran.clear()


def _unknown_request(workflow_id: str) -> bytes:
    payload = encode({"wf": "nobody-registered-this", "args": [1]}, context="a test")
    return encode_request(Request(workflow_id, 5, 99, 0.0, 0.0, None, None, payload))


def _queued(directory: Path, queue: str) -> list[str]:
    """The ids a queue holds, waiting or admitted (its request log and the old layout)."""
    files = QueueFiles(directory, queue, create=False)
    try:
        return sorted([*files.waiting(), *files.admitted()])
    finally:
        files.close()


def _plant(where: Path, outside: Path) -> None:
    """Hostile entries in `where`."""
    os.symlink(outside, where / "link")
    os.mkfifo(where / "fifo")
    (where / "folder").mkdir()
    (where / "garbage").write_bytes(b"not a request")
    (where / "torn").write_bytes(_unknown_request("torn")[:-7])
    (where / "unknown").write_bytes(_unknown_request("unknown"))


async def _serve_a_good_job(directory: Path, settled: Callable[[], bool]) -> None:
    """A runtime serving the queue still starts good work, and serve() lives on."""
    async with Runtime(directory, queues=[hostile], workflows=[job]) as runtime:
        serving = asyncio.create_task(runtime.serve(poll_interval="50 ms"))
        try:
            handle = await runtime.enqueue(hostile, job, 7, id="good")
            assert await asyncio.wait_for(handle.result(), 30) == 7
            async with asyncio.timeout(30):  # (the planted files looked at)
                while not settled():
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)  # (and a few more looks)
            assert not serving.done(), serving
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)


async def test_things_planted_in_waiting_are_set_aside_never_followed_and_listed(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journals"
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    async with Runtime(directory) as producer:  # (makes the queue's directories)
        await producer.enqueue(hostile, job, 1, id="first")
    waiting = directory / "queues" / "hostile" / "waiting"
    _plant(waiting, outside)
    async with Catalog(directory) as catalog:  # (before a runtime set them aside)
        listing = await catalog.listing()
    assert "symbolic link" in listing.unreadable["queues/hostile/waiting/link"]
    assert "regular file" in listing.unreadable["queues/hostile/waiting/fifo"]

    await _serve_a_good_job(directory, (waiting / "torn.damaged").exists)

    assert outside.read_bytes() == b"secret"  # (never followed, never renamed)
    assert os.path.islink(waiting / "link.damaged")
    left = sorted(os.listdir(waiting))
    damaged = ["fifo", "folder", "garbage", "link", "torn"]
    assert left == sorted([*(f"{name}.damaged" for name in damaged), "unknown"]), left
    assert sorted(ran) == [1, 7]
    async with Catalog(directory) as catalog:
        listing = await catalog.listing()
    [load] = listing.queues
    assert load.damaged == 5
    unreadable = {name: why for name, why in listing.unreadable.items() if "queues/" in name}
    assert set(unreadable) == {
        f"queues/hostile/waiting/{name}.damaged"
        for name in ("link", "fifo", "folder", "garbage", "torn")
    }
    assert "symbolic link" in unreadable["queues/hostile/waiting/link.damaged"]
    [unknown] = [d for d in listing.workflows if d.workflow_id == "unknown"]
    assert unknown.state is durable.WorkflowState.QUEUED
    assert "nobody-registered-this" in (unknown.current or "")


async def test_things_planted_in_admitted_never_stop_serve_and_are_listed(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journals"
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    async with Runtime(directory) as producer:
        await producer.enqueue(hostile, job, 1, id="first")
        await producer.enqueue(hostile, job, 2, id="orphan")
    files = QueueFiles(directory, "hostile", create=False)
    try:
        assert files.claim("orphan")  # (its admitter died before its journal: serve starts it)
    finally:
        files.close()
    admitted = directory / "queues" / "hostile" / "admitted"
    _plant(admitted, outside)
    (admitted / ".dot name").write_bytes(b"no journal can have this name")

    def settled() -> bool:
        left = os.listdir(admitted)
        return "orphan" not in left and len([n for n in left if n.endswith(".damaged")]) >= 6

    await _serve_a_good_job(directory, settled)

    assert outside.read_bytes() == b"secret"
    assert sorted(ran) == [1, 2, 7]
    left = sorted(os.listdir(admitted))
    assert "orphan" not in left
    assert "good" not in left
    assert {"link.damaged", "fifo.damaged", "folder.damaged", "garbage.damaged"} <= set(left)
    async with Catalog(directory) as catalog:
        listing = await catalog.listing()
    [load] = listing.queues
    assert load.damaged >= 5
    assert "queues/hostile/admitted/link.damaged" in listing.unreadable
    [unknown] = [d for d in listing.workflows if d.workflow_id == "unknown"]
    assert "nobody-registered-this" in (unknown.current or "")


# -- two runtimes recovering one orphaned admission at once ------------------------------------

orphan_queue = Queue("orphan-race", concurrency=1)
starts: list[str] = []


@durable.activity(name="orphan-race-act")
async def count_start(n: int) -> int:
    starts.append(durable.activity_info().workflow_id)
    await asyncio.sleep(0.05)
    return n


@durable.workflow(name="orphan-race-job")
async def orphan_job(n: int) -> int:
    return await count_start(n)


@pytest.mark.parametrize("how", ["recover", "serve"])
async def test_two_runtimes_finding_one_orphaned_admission_run_it_once(
    tmp_path: Path, how: str
) -> None:
    starts.clear()
    async with Runtime(tmp_path) as producer:
        await producer.enqueue(orphan_queue, orphan_job, 3, id="orphan")
    files = QueueFiles(tmp_path, "orphan-race", create=False)
    try:
        assert files.claim("orphan")
    finally:
        files.close()
    async with (
        Runtime(tmp_path, queues=[orphan_queue], workflows=[orphan_job]) as first,
        Runtime(tmp_path, queues=[orphan_queue], workflows=[orphan_job]) as second,
    ):
        if how == "recover":
            found = await asyncio.gather(first.recover(), second.recover())
            handles = [handle for handles in found for handle in handles]
            assert [handle.id for handle in handles] == ["orphan"]
            assert await handles[0].result() == 3
        else:
            serving = [
                asyncio.create_task(runtime.serve(poll_interval="20 ms"))
                for runtime in (first, second)
            ]
            try:
                handle = await first.handle("orphan")
                assert await asyncio.wait_for(handle.result(), 30) == 3
                await asyncio.sleep(0.2)
            finally:
                for task in serving:
                    task.cancel()
                await asyncio.gather(*serving, return_exceptions=True)
    assert starts == ["orphan"]
    assert not os.listdir(tmp_path / "queues" / "orphan-race" / "admitted")


# -- two enqueues of one dedup_id racing -------------------------------------------------------

dedup_queue = Queue("dedup-race", concurrency=4)


def _enqueue_in_a_thread(directory: Path, n: int, out: dict[str, Any]) -> threading.Thread:
    async def enqueue() -> None:
        async with Runtime(directory) as runtime:
            handle = await runtime.enqueue(dedup_queue, job, n, dedup_id="the-order")
            out["id"] = handle.id

    thread = threading.Thread(target=asyncio.run, args=(enqueue(),), daemon=True)
    thread.start()
    return thread


async def test_an_enqueue_racing_another_of_its_dedup_id_returns_that_workflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second enqueue runs entirely while the first has claimed the dedup id but not
    yet written its request: it must see the first's workflow, not start its own."""
    async with Runtime(tmp_path) as runtime:  # (the queue's directories)
        await runtime.enqueue(dedup_queue, job, 0, id="unrelated")
    second: dict[str, Any] = {}
    original = QueueFiles.dedup_claim
    raced: list[threading.Thread] = []

    def claim_then_race(self: QueueFiles, dedup_id: str, workflow_id: str) -> str | None:
        holder = original(self, dedup_id, workflow_id)
        if holder is None and not raced and threading.current_thread() is main:
            raced.append(_enqueue_in_a_thread(tmp_path, 2, second))
            raced[0].join(1.0)  # (done at once if nothing keeps it out meanwhile)
        return holder

    main = threading.current_thread()
    monkeypatch.setattr(QueueFiles, "dedup_claim", claim_then_race)
    async with Runtime(tmp_path) as runtime:
        handle = await runtime.enqueue(dedup_queue, job, 1, dedup_id="the-order")
    raced[0].join(10)
    assert not raced[0].is_alive()
    assert second["id"] == handle.id
    files = QueueFiles(tmp_path, "dedup-race", create=False)
    try:
        assert sorted(files.waiting()) == sorted(["unrelated", handle.id])  # (no third)
    finally:
        files.close()


async def test_a_dedup_id_whose_workflow_ended_before_its_admission_was_removed_is_free(
    tmp_path: Path,
) -> None:
    """A runtime killed between a workflow's end and the removal of its admission (and
    dedup claim) leaves both behind: the dedup id still starts a new run, as for any
    workflow that ended, and the stale admission is forgotten."""
    async with Runtime(tmp_path, queues=[dedup_queue], workflows=[job]) as runtime:
        first = await runtime.enqueue(dedup_queue, job, 1, dedup_id="nightly")
        assert await first.result() == 1
    queue_files = tmp_path / "queues" / "dedup-race"
    files = QueueFiles(tmp_path, "dedup-race", create=False)
    try:  # (what the killed runtime left: its admission and its dedup claim)
        payload = encode({"wf": "hostile-job", "args": [1]}, context="a test")
        request = Request(first.id, 5, 0, 0.0, 0.0, None, "nightly", payload)
        (queue_files / "admitted" / first.id).write_bytes(encode_request(request))
        assert files.dedup_claim("nightly", first.id) is None
    finally:
        files.close()
    async with Runtime(tmp_path, queues=[dedup_queue], workflows=[job]) as runtime:
        second = await runtime.enqueue(dedup_queue, job, 2, dedup_id="nightly")
        assert second.id != first.id
        assert await second.result() == 2
    assert sorted(ran) == [1, 2]
    assert not os.listdir(queue_files / "admitted")


async def test_recover_forgets_the_admission_of_a_workflow_that_ended(tmp_path: Path) -> None:
    async with Runtime(tmp_path, queues=[dedup_queue], workflows=[job]) as runtime:
        first = await runtime.enqueue(dedup_queue, job, 1, id="ended")
        assert await first.result() == 1
    admitted = tmp_path / "queues" / "dedup-race" / "admitted"
    payload = encode({"wf": "hostile-job", "args": [1]}, context="a test")
    (admitted / "ended").write_bytes(
        encode_request(Request("ended", 5, 0, 0.0, 0.0, None, None, payload))
    )
    async with Runtime(tmp_path, queues=[dedup_queue], workflows=[job]) as runtime:
        assert await runtime.recover() == []
    assert not os.listdir(admitted)
    assert ran == [1]


async def test_an_id_queued_in_one_queue_is_a_duplicate_in_another(tmp_path: Path) -> None:
    """An id runs once: queued in one queue, enqueueing it to another queues nothing (as
    on PostgreSQL, where a request's id is its key across queues)."""
    other = Queue("hostile-other", concurrency=1)
    async with Runtime(tmp_path) as runtime:
        await runtime.enqueue(hostile, job, 1, id="twice")
        with pytest.raises(durable.AlreadyQueued, match="'twice'"):
            await runtime.enqueue(other, job, 2, id="twice", on_duplicate="raise")
        assert (await runtime.enqueue(other, job, 2, id="twice")).id == "twice"
    assert _queued(tmp_path, "hostile-other") == []


async def test_a_non_directory_among_the_queues_stops_no_workflow(tmp_path: Path) -> None:
    """Every workflow's start asks whether its id is queued somewhere: a file, a fifo or a
    link planted in queues/ made that look raise, and every run of the runtime failed."""
    async with Runtime(tmp_path) as producer:
        await producer.enqueue(hostile, job, 1, id="queued")
    queues = tmp_path / "queues"
    (queues / "a-file").write_text("not a queue")
    os.mkfifo(queues / "a-fifo")
    os.symlink(tmp_path, queues / "a-link")
    (queues / "half-made").mkdir()
    (queues / "half-made" / "waiting").write_text("not a directory")
    async with Runtime(tmp_path, queues=[hostile], workflows=[job]) as runtime:
        assert await runtime.run(job, 2, id="plain") == 2
        assert await (await runtime.handle("queued")).result() == 1
    async with Catalog(tmp_path) as catalog:
        listing = await catalog.listing()
    assert {d.workflow_id for d in listing.workflows} == {"plain", "queued"}
    assert [load.name for load in listing.queues] == ["hostile"]  # (the rest: no queues)


@pytest.mark.parametrize("planted", ["lock", "starts", "slots/0"])
async def test_a_link_planted_among_a_queues_files_pauses_it_and_leaks_no_slot(
    tmp_path: Path, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The dispatcher meets a link where the queue's lock, rate ring or slot should be: it
    says so (never following it) and tries again, holding no slot meanwhile; once the link
    is gone the queue's work starts (concurrency 1: a leaked slot would stop it)."""
    limited = Queue("hostile-files", concurrency=1, rate=durable.Rate(100, per="1 s"))
    async with Runtime(tmp_path) as producer:
        await producer.enqueue(limited, job, 1, id="first")
    link = tmp_path / "queues" / "hostile-files" / planted
    link.parent.mkdir(exist_ok=True)
    link.unlink(missing_ok=True)
    os.symlink(tmp_path / "elsewhere", link)
    async with Runtime(tmp_path, queues=[limited], workflows=[job]) as runtime:
        handle = await runtime.handle("first")
        async with asyncio.timeout(30):
            while "cannot admit" not in caplog.text:
                await asyncio.sleep(0.02)
        assert ran == []
        link.unlink()
        assert await asyncio.wait_for(handle.result(), 30) == 1
        second = await runtime.enqueue(limited, job, 2, id="second")
        assert await asyncio.wait_for(second.result(), 30) == 2
    assert not (tmp_path / "elsewhere").exists()
    assert "symbolic links" in caplog.text


def test_a_rate_too_big_for_its_ring_is_refused() -> None:
    """A Rate keeps its last `limit` start times in a ring read and written at each start:
    Rate(10**9) would be an 8 GB file (and a hang); past MAX_RATE_LIMIT it is refused."""
    durable.Rate(100_000, per="1 s")
    with pytest.raises(durable.InvalidQueue, match="shorter period"):
        durable.Rate(100_001, per="1 s")
    with pytest.raises(durable.InvalidQueue, match="rate limit"):
        durable.Rate(10**9, per="1 min")


async def test_keys_and_dedup_ids_of_any_text_stay_inside_the_queue(tmp_path: Path) -> None:
    """Keys and dedup ids name files by their digest: a path, NUL, unicode or 1 KB of text
    limits its own key and never names a path outside the queue's directory."""
    keyed = Queue("hostile-keys", concurrency=4, concurrency_per_key=1)
    texts = ["../../../etc/passwd", "a\0b", "Zürich/東京", "k" * 1024, "/", ".."]
    async with Runtime(tmp_path) as producer:  # (not served yet: all still queued)
        handles = [
            await producer.enqueue(keyed, job, n, key=text, dedup_id=text)
            for n, text in enumerate(texts)
        ]
        again = await producer.enqueue(keyed, job, 99, key="a\0b", dedup_id="a\0b")
        assert again.id == handles[1].id
    async with Runtime(tmp_path, queues=[keyed], workflows=[job]) as runtime:
        results = [await (await runtime.handle(handle.id)).result() for handle in handles]
        assert results == list(range(len(texts)))
    queue_files = tmp_path / "queues" / "hostile-keys"
    for sub in ("keys", "dedup"):
        for name in os.listdir(queue_files / sub):
            assert all(c in "0123456789abcdef." for c in name), name
    journals = {f"{handle.id}.journal" for handle in handles}
    assert {name for name in os.listdir(tmp_path) if name != "queues"} >= journals
    assert not any(".." in name or "/" in name for name in os.listdir(tmp_path))


async def test_enqueueing_the_id_of_a_workflow_that_ran_runs_nothing(tmp_path: Path) -> None:
    async with Runtime(tmp_path, queues=[hostile], workflows=[job]) as runtime:
        assert await runtime.run(job, 1, id="ran-once") == 1
        handle = await runtime.enqueue(hostile, job, 2, id="ran-once")
        assert await handle.result() == 1  # (its recorded result: nothing queued, nothing run)
        with pytest.raises(durable.AlreadyQueued, match="it ran"):
            await runtime.enqueue(hostile, job, 2, id="ran-once", on_duplicate="raise")
    assert ran == [1]
    assert _queued(tmp_path, "hostile") == []


async def test_an_admission_whose_journal_cannot_be_read_stops_no_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """orphans() reads each admitted request's journal: one that cannot be read (a link
    planted at its name) must not stop serve() (which took any error there for the store
    being away, and retried for ever)."""
    async with Runtime(tmp_path) as producer:
        await producer.enqueue(hostile, job, 1, id="linked")
    files = QueueFiles(tmp_path, "hostile", create=False)
    try:
        assert files.claim("linked")
    finally:
        files.close()
    os.symlink(tmp_path / "elsewhere", tmp_path / "linked.journal")
    await _serve_a_good_job(tmp_path, lambda: "set aside" in caplog.text)
    assert ran == [7]
    assert "unavailable" not in caplog.text


async def test_a_dedup_claim_left_empty_by_a_crash_does_not_block_its_dedup_id(
    tmp_path: Path,
) -> None:
    # A crash (or a power loss before the sync) between a dedup claim's create and its
    # write leaves the file empty, or holding bytes that name no journal: it names no
    # holder, so the dedup id is free, not an error at every enqueue.
    async with Runtime(tmp_path) as runtime:
        await runtime.enqueue(dedup_queue, job, 0, dedup_id="other")  # (the queue's files)
    dedup = tmp_path / "queues" / "dedup-race" / "dedup"
    (dedup / digest("empty")).write_bytes(b"")
    (dedup / digest("garbled")).write_bytes(b"../\x00no journal")
    async with Runtime(tmp_path, queues=[dedup_queue], workflows=[job]) as runtime:
        empty = await runtime.enqueue(dedup_queue, job, 1, dedup_id="empty")
        garbled = await runtime.enqueue(dedup_queue, job, 2, dedup_id="garbled")
        assert [await empty.result(), await garbled.result()] == [1, 2]


async def test_a_dedup_id_whose_ended_workflow_is_still_admitted_in_the_log_is_free(
    tmp_path: Path,
) -> None:
    # As the old layout's case above, with the request log: the admission (an admit record
    # with no finish) and the dedup claim outlive the workflow's end.
    async with Runtime(tmp_path, queues=[dedup_queue], workflows=[job]) as runtime:
        first = await runtime.enqueue(dedup_queue, job, 1, dedup_id="hourly")
        assert await first.result() == 1
    files = QueueFiles(tmp_path, "dedup-race", create=False)
    try:
        payload = encode({"wf": "hostile-job", "args": [1]}, context="a test")
        request = Request(first.id, 5, 0, 0.0, 0.0, None, "hourly", payload)
        assert files.create(request) is not None
        assert files.claim(first.id)
        files.sync()
        assert files.dedup_claim("hourly", first.id) is None
    finally:
        files.close()
    async with Runtime(tmp_path, queues=[dedup_queue], workflows=[job]) as runtime:
        second = await runtime.enqueue(dedup_queue, job, 2, dedup_id="hourly")
        assert second.id != first.id
        assert await second.result() == 2
        again = await runtime.enqueue(dedup_queue, job, 3, id=first.id)
        assert again.id == first.id  # (its journal exists: nothing queued, nothing run)
    files = QueueFiles(tmp_path, "dedup-race", create=False)
    try:
        assert (files.waiting(), files.admitted()) == ([], [])
    finally:
        files.close()
    assert sorted(ran) == [1, 2]
