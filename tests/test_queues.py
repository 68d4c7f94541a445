"""Queues end to end on the file store: limits, order, dedup, delay, describe, bad input."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import InvalidQueue, Queue, Rate, Runtime
from durable._catalog import Catalog
from durable._storage._queue_files import QueueFiles
from durable.testing import TestRuntime, check_crash_points

pytestmark = pytest.mark.anyio


class Overlap:
    """Counts calls in flight, as the activities see them."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.order: list[int] = []

    async def hold(self, n: int, seconds: float = 0.03) -> int:
        self.now += 1
        self.peak = max(self.peak, self.now)
        self.order.append(n)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1
        return n


seen = Overlap()


@durable.activity
async def work(n: int) -> int:
    return await seen.hold(n)


@durable.workflow
async def job(n: int) -> int:
    return await work(n)


@durable.activity
def enter() -> None:
    seen.now += 1
    seen.peak = max(seen.peak, seen.now)


@durable.activity
def leave() -> None:
    seen.now -= 1


@durable.workflow
async def napper(n: int) -> int:
    """Holds its slot while it sleeps (virtual time in a TestRuntime); counted by activities,
    which a replay does not run again."""
    await enter()
    await durable.sleep("1 hour")
    await leave()
    return n


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    seen.__init__()  # type: ignore[misc]


async def test_concurrency_holds_and_every_request_runs(tmp_path: Path) -> None:
    queue = Queue("jobs", concurrency=3)
    async with Runtime(tmp_path, queues=[queue], workflows=[job]) as runtime:
        handles = await asyncio.gather(*(runtime.enqueue(queue, job, n) for n in range(20)))
        results = await asyncio.gather(*(handle.result() for handle in handles))
    assert results == list(range(20))
    assert seen.peak == 3


async def test_fifo_within_a_priority_and_lower_priority_first(tmp_path: Path) -> None:
    queue = Queue("ordered", concurrency=1)
    async with Runtime(tmp_path, workflows=[job]) as producer:  # (serves nothing)
        handles = [await producer.enqueue(queue, job, n, priority=5) for n in range(4)]
        handles += [await producer.enqueue(queue, job, 10 + n, priority=2) for n in range(2)]
        handles.append(await producer.enqueue(queue, job, 99, priority=9))
    async with Runtime(tmp_path, queues=[queue], workflows=[job]) as runtime:
        await asyncio.gather(*(runtime.handle(h.id) for h in handles))
        for handle in handles:
            await (await runtime.handle(handle.id)).result()
    assert seen.order == [10, 11, 0, 1, 2, 3, 99]


async def test_concurrency_per_key(tmp_path: Path) -> None:
    queue = Queue("per-customer", concurrency_per_key=1)
    peak: dict[str, int] = {}
    now: dict[str, int] = {}

    @durable.activity(name="keyed")
    async def keyed(customer: str) -> None:
        now[customer] = now.get(customer, 0) + 1
        peak[customer] = max(peak.get(customer, 0), now[customer])
        await asyncio.sleep(0.005)
        now[customer] -= 1

    @durable.workflow(name="per-customer-job")
    async def customer_job(customer: str, n: int) -> None:
        await keyed(customer)

    async with Runtime(tmp_path, queues=[queue], workflows=[customer_job]) as runtime:
        handles = [
            await runtime.enqueue(queue, customer_job, customer, n, key=customer)
            for n in range(4)
            for customer in ("a", "b", "c")
        ]
        await asyncio.gather(*(handle.result() for handle in handles))
    assert peak == {"a": 1, "b": 1, "c": 1}


async def test_dedup_returns_the_queued_handle_or_raises(tmp_path: Path) -> None:
    queue = Queue("dedup")  # (no runtime serves it: the first stays queued)
    async with Runtime(tmp_path) as runtime:
        first = await runtime.enqueue(queue, job, 1, dedup_id="order-7")
        again = await runtime.enqueue(queue, job, 2, dedup_id="order-7")
        assert again.id == first.id
        with pytest.raises(durable.AlreadyQueued, match="order-7") as raised:
            await runtime.enqueue(queue, job, 3, dedup_id="order-7", on_duplicate="raise")
        assert raised.value.workflow_id == first.id
        same_id = await runtime.enqueue(queue, job, 1, id=first.id)
        assert same_id.id == first.id
    async with Runtime(tmp_path, queues=[queue], workflows=[job]) as runtime:
        assert await (await runtime.handle(first.id)).result() == 1
        # Once it ended, the dedup id may be used again.
        later = await runtime.enqueue(queue, job, 4, dedup_id="order-7")
        assert later.id != first.id
        assert await later.result() == 4


async def test_a_queue_nobody_serves_keeps_work_queued_and_says_so(tmp_path: Path) -> None:
    queue = Queue("unserved", concurrency=2)
    async with Runtime(tmp_path) as runtime:
        handles = [await runtime.enqueue(queue, job, n) for n in range(3)]
        described = await runtime.describe(handles[2].id)
    assert described.state is durable.WorkflowState.QUEUED
    assert described.status == {"queue": "unserved", "position": 3, "waiting": 3, "priority": 5}
    assert described.current is not None
    assert "3 of 3" in described.current
    assert "serves this queue" in described.current


async def test_describe_says_a_delayed_request_waits_for_its_delay(tmp_path: Path) -> None:
    queue = Queue("later")
    async with Runtime(tmp_path) as runtime:
        handle = await runtime.enqueue(queue, job, 1, delay="1 hour")
        described = await runtime.describe(handle.id)
    assert described.current is not None
    assert "delay" in described.current
    assert described.wake_at is not None


async def test_two_runtimes_of_one_process_share_the_limit(tmp_path: Path) -> None:
    queue = Queue("shared", concurrency=2)
    async with (
        Runtime(tmp_path, queues=[queue], workflows=[job]) as one,
        Runtime(tmp_path, queues=[queue], workflows=[job]) as two,
    ):
        await two.recover()  # (starts its dispatcher)
        handles = [await one.enqueue(queue, job, n) for n in range(16)]
        await asyncio.gather(*(handle.result() for handle in handles))
    assert seen.peak <= 2
    assert sorted(seen.order) == list(range(16))


async def test_a_test_runtime_checks_overlap_on_virtual_time(tmp_path: Path) -> None:
    queue = Queue("naps", concurrency=3)
    async with TestRuntime(tmp_path, queues=[queue], workflows=[napper]) as runtime:
        begin = runtime.now()
        handles = [await runtime.enqueue(queue, napper, n) for n in range(9)]
        results = await asyncio.gather(*(handle.result() for handle in handles))
        assert results == list(range(9))
        assert seen.peak == 3
        # 9 hour-long naps, 3 at a time: 3 hours of virtual time.
        assert runtime.now() - begin >= timedelta(hours=3)


async def test_rate_limit_and_delay_on_virtual_time(tmp_path: Path) -> None:
    queue = Queue("metered", rate=Rate(2, per="1 min"))
    starts: list[float] = []

    @durable.activity(name="stamp")
    async def stamp() -> None:
        starts.append(durable.now().timestamp())

    @durable.workflow(name="metered-job")
    async def metered(n: int) -> None:
        await stamp()

    async with TestRuntime(tmp_path, queues=[queue], workflows=[metered]) as runtime:
        begin = runtime.now().timestamp()
        handles = [await runtime.enqueue(queue, metered, n) for n in range(6)]
        late = await runtime.enqueue(queue, metered, 99, delay="10 min")
        await asyncio.gather(*(handle.result() for handle in handles))
        await late.result()
    offsets = sorted(round(at - begin) for at in starts)
    assert offsets == [0, 0, 60, 60, 120, 120, 600]


async def test_an_admitted_workflow_is_refused_where_its_queue_is_not_declared(
    tmp_path: Path,
) -> None:
    queue = Queue("declared-elsewhere", concurrency=1)
    async with TestRuntime(tmp_path, queues=[queue], workflows=[napper]) as runtime:
        handle = await runtime.enqueue(queue, napper, 1)
        await runtime.advance("1 min")  # (started: it sleeps an hour)
        assert (await runtime.describe(handle.id)).state is durable.WorkflowState.SLEEPING
    async with Runtime(tmp_path, workflows=[napper]) as plain:
        [resumed] = await plain.recover()
        with pytest.raises(durable.QueueNotDeclared, match="declared-elsewhere"):
            await resumed.result()


@pytest.mark.parametrize(
    ("make", "option"),
    [
        (lambda: Queue("q", concurrency=-1), "concurrency"),
        (lambda: Queue("q", concurrency=0), "concurrency"),
        (lambda: Queue("q", concurrency_per_key=0), "concurrency_per_key"),
        (lambda: Queue("../escape"), "name"),
        (lambda: Rate(0, per="1 s"), "rate limit"),
        (lambda: Rate(1, per="-1 s"), "per"),
        (lambda: durable.Limit("api"), "concurrency"),
        (lambda: durable.Limit("api", concurrency=-5), "concurrency"),
    ],
)
def test_bad_declarations_are_refused(make: object, option: str) -> None:
    with pytest.raises(InvalidQueue) as raised:
        make()  # type: ignore[operator]
    assert raised.value.option == option
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"priority": 0}, "priority"),
        ({"priority": 10}, "priority"),
        ({"priority": True}, "priority"),
        ({"key": "k"}, "key"),  # (the queue has no concurrency_per_key)
        ({"dedup_id": ""}, "dedup_id"),
        ({"delay": "-5 s"}, "delay"),
        ({"on_duplicate": "ignore"}, "on_duplicate"),
    ],
)
async def test_bad_enqueue_options_are_refused_before_anything_is_written(
    tmp_path: Path, options: dict[str, object], option: str
) -> None:
    queue = Queue("strict", concurrency=1)
    async with Runtime(tmp_path) as runtime:
        with pytest.raises(InvalidQueue, match="strict") as raised:
            await runtime.enqueue(queue, job, 1, **options)  # type: ignore[arg-type]
    assert raised.value.option == option
    assert not list((tmp_path / "queues" / "strict" / "waiting").glob("*"))


def test_two_declarations_of_one_name_must_agree(tmp_path: Path) -> None:
    with pytest.raises(InvalidQueue, match="one declaration per name"):
        Runtime(tmp_path, queues=[Queue("q", concurrency=1), Queue("q", concurrency=2)])


async def test_an_activity_limit_holds_across_workflows(tmp_path: Path) -> None:
    api = durable.Limit("card-api", concurrency=2)
    now = peak = 0

    @durable.activity(name="charge", limit=api)
    async def charge(n: int) -> int:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        await asyncio.sleep(0.005)
        now -= 1
        return n

    @durable.activity(name="refund", limit=api)
    def refund(n: int) -> int:  # (a sync activity shares it too)
        return -n

    @durable.workflow(name="order")
    async def order(n: int) -> int:
        return await charge(n) + await refund(n)

    async with Runtime(tmp_path) as runtime:
        results = await asyncio.gather(*(runtime.run(order, n) for n in range(10)))
    assert results == [0] * 10
    assert peak == 2
    assert api.running == 0
    assert (tmp_path / "limits" / "card-api" / "slots").is_dir()  # (shared by its processes)


async def test_an_activity_rate_limit_holds_across_runtimes_of_a_directory(
    tmp_path: Path,
) -> None:
    starts: list[float] = []

    def runtime_with_its_own_limit(index: int) -> tuple[Runtime, durable.Workflow[[int], int]]:
        # (one Limit object per runtime: as two processes would each declare it)
        api = durable.Limit("rated-api", rate=durable.Rate(2, per="0.3 s"))

        @durable.activity(name="call", limit=api)
        async def call(n: int) -> int:
            starts.append(time.time())
            return n

        @durable.workflow(name=f"caller{index}")
        async def caller(n: int) -> int:
            return await call(n)

        return Runtime(tmp_path, workflows=[caller]), caller

    (first, one), (second, two) = runtime_with_its_own_limit(1), runtime_with_its_own_limit(2)
    async with first, second:
        await asyncio.gather(
            *(first.run(one, n) for n in range(3)), *(second.run(two, n) for n in range(3))
        )
    starts.sort()
    assert len(starts) == 6
    assert all(later - earlier >= 0.29 for earlier, later in zip(starts, starts[2:], strict=False))


def test_a_limit_name_must_name_a_directory() -> None:
    with pytest.raises(InvalidQueue, match="name"):
        durable.Limit("../escape", concurrency=1)


async def test_the_catalog_lists_queued_work_and_each_queue_load(tmp_path: Path) -> None:
    queue = Queue("listed", concurrency=2, rate=Rate(5, per="1 min"))
    async with Runtime(tmp_path) as runtime:
        for n in range(3):
            await runtime.enqueue(queue, job, n, id=f"job-{n}", priority=3 if n == 2 else 5)
    async with Catalog(tmp_path) as catalog:
        listing = await catalog.listing(state="queued")
    [load] = listing.queues
    assert (load.name, load.waiting, load.admitted, load.concurrency) == ("listed", 3, 0, 2)
    assert load.rate == (5, 60.0)
    places = {d.workflow_id: d.status["position"] for d in listing.workflows}
    assert places == {"job-2": 1, "job-0": 2, "job-1": 3}


# -- the crash-point checker over a queued scenario -----------------------------------------

crash_queue = Queue("crash-points", concurrency=2)
tracked: dict[str, Any] = {}  # (reset by each run of the scenario)


@durable.activity(name="cq-begin")
async def cq_begin(n: int) -> None:
    tracked["running"].add(n)
    tracked["peak"] = max(tracked["peak"], len(tracked["running"]))


@durable.activity(name="cq-end")
async def cq_end(n: int) -> None:
    tracked["running"].discard(n)
    tracked["ended"].add(durable.activity_info().idempotency_key)


@durable.workflow(name="cq-job")
async def cq_job(n: int) -> int:
    await cq_begin(n)
    await durable.sleep("1 min")
    await cq_end(n)
    return n


async def test_the_crash_point_checker_runs_a_queued_scenario(tmp_path: Path) -> None:
    async def scenario(runtime: TestRuntime) -> None:
        tracked.update(running=set(), peak=0, ended=set())
        handles = [await runtime.enqueue(crash_queue, cq_job, n, id=f"job-{n}") for n in range(5)]
        assert await asyncio.gather(*(handle.result() for handle in handles)) == list(range(5))
        assert tracked["peak"] <= 2, f"{tracked['peak']} ran at once"
        assert tracked["ended"] == {f"job-{n}/2" for n in range(5)}  # (each ended, once)
        assert runtime.directory is not None
        assert queued_ids(runtime.directory, "crash-points") == ([], [])  # (nothing left)

    report = await check_crash_points(scenario, tmp_path, queues=[crash_queue], workflows=[cq_job])
    assert report.records >= 5 * 4
    assert report.crashed == len(report.points)


# -- an admission whose runtime died before the workflow's journal began --------------------


def queued_ids(directory: Path, queue: str) -> tuple[list[str], list[str]]:
    """A queue's waiting and admitted ids, as its files hold them (the log and old layout)."""
    files = QueueFiles(directory, queue, create=False)
    try:
        return sorted(files.waiting()), sorted(files.admitted())
    finally:
        files.close()


async def test_a_request_admitted_by_a_runtime_that_died_first_is_started_by_recover(
    tmp_path: Path,
) -> None:
    queue = Queue("orphans", concurrency=1)
    async with Runtime(tmp_path, workflows=[job]) as producer:  # (no dispatcher: not declared)
        await producer.enqueue(queue, job, 7, id="orphan-7")
    files = QueueFiles(tmp_path, "orphans", create=False)
    try:  # the admission a killed runtime made: claimed, its journal never begun
        assert files.claim("orphan-7")
    finally:
        files.close()
    async with Runtime(tmp_path, queues=[queue], workflows=[job]) as runtime:
        described = await runtime.describe("orphan-7")  # (not "not found": it is starting)
        assert described.state is durable.WorkflowState.RUNNING
        assert "starting" in (described.current or "")
        [handle] = await runtime.recover()
        assert await handle.result() == 7
    assert queued_ids(tmp_path, "orphans") == ([], [])


async def test_serve_starts_a_request_whose_admitter_died_before_its_journal(
    tmp_path: Path,
) -> None:
    queue = Queue("orphans", concurrency=1)
    async with Runtime(tmp_path, workflows=[job]) as producer:
        await producer.enqueue(queue, job, 8, id="orphan-8")
    files = QueueFiles(tmp_path, "orphans", create=False)
    try:
        assert files.claim("orphan-8")
    finally:
        files.close()
    async with Runtime(tmp_path, queues=[queue], workflows=[job]) as runtime:
        serving = asyncio.create_task(runtime.serve(poll_interval="50 ms"))
        try:
            handle = await runtime.handle("orphan-8")
            assert await asyncio.wait_for(handle.result(), 20) == 8
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)


async def test_a_duplicate_is_answered_only_once_the_request_it_names_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second enqueue of a dedup id (or of an id) finds the first's record appended but
    # not yet synced: answering "queued as X" then would promise a request a crash may lose.
    queue = Queue("held-sync")
    syncing, release = threading.Event(), threading.Event()
    real_sync = QueueFiles.sync

    def held_sync(self: QueueFiles, *, dedup: bool = False) -> None:
        syncing.set()
        assert release.wait(30)
        real_sync(self, dedup=dedup)

    monkeypatch.setattr(QueueFiles, "sync", held_sync)
    async with Runtime(tmp_path) as runtime:
        enqueuer = runtime._queues._enqueuer  # type: ignore[union-attr]
        first = asyncio.ensure_future(runtime.enqueue(queue, job, 1, dedup_id="order-8"))
        async with asyncio.timeout(30):
            while not syncing.is_set():
                await asyncio.sleep(0.005)
        calls = [
            runtime.enqueue(queue, job, 2, dedup_id="order-8"),
            runtime.enqueue(queue, job, 3, id=None, dedup_id="order-8", on_duplicate="raise"),
        ]
        later = [asyncio.ensure_future(call) for call in calls]
        try:
            async with asyncio.timeout(30):  # (each answered, or waiting for the next sync)
                while not all(task.done() for task in later) and len(enqueuer._syncing) < 2:
                    await asyncio.sleep(0.005)
            assert not any(task.done() for task in later), "answered before the sync"
        finally:
            release.set()
        handle = await first
        again, refused = await asyncio.gather(*later, return_exceptions=True)
        assert again.id == handle.id  # type: ignore[union-attr]
        assert isinstance(refused, durable.AlreadyQueued)
