"""Queues on PostgresStore: two runtimes on one database (as two hosts) share a queue's
limits, its order and its de-duplication."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

import durable
from durable import PostgresStore, Queue, Rate, Runtime
from durable._catalog import Catalog

pytestmark = pytest.mark.anyio


class Overlap:
    """Counts runs in flight, as the activities of both runtimes see them."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.order: list[int] = []
        self.runs: dict[int, int] = {}

    async def hold(self, n: int) -> int:
        self.now += 1
        self.peak = max(self.peak, self.now)
        self.order.append(n)
        self.runs[n] = self.runs.get(n, 0) + 1
        try:
            await asyncio.sleep(0.1)  # (long enough to overlap on a loaded machine)
        finally:
            self.now -= 1
        return n


seen = Overlap()


@durable.activity
async def pg_work(n: int) -> int:
    return await seen.hold(n)


@durable.workflow
async def pg_job(n: int) -> int:
    return await pg_work(n)


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    seen.__init__()  # type: ignore[misc]


async def test_two_runtimes_share_a_concurrency_limit(postgres_dsn: str) -> None:
    queue = Queue("jobs", concurrency=2)
    async with (
        Runtime(store=PostgresStore(postgres_dsn), queues=[queue], workflows=[pg_job]) as one,
        Runtime(store=PostgresStore(postgres_dsn), queues=[queue], workflows=[pg_job]) as two,
    ):
        handles = [await (one, two)[n % 2].enqueue(queue, pg_job, n) for n in range(16)]
        results = await asyncio.gather(*(handle.result() for handle in handles))
    assert results == list(range(16))
    assert seen.peak == 2
    assert seen.runs == dict.fromkeys(range(16), 1)


async def test_priorities_then_fifo_across_runtimes(postgres_dsn: str) -> None:
    queue = Queue("ordered", concurrency=1)
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[pg_job]) as producer:
        ids = [(await producer.enqueue(queue, pg_job, n, priority=5)).id for n in range(4)]
        ids += [(await producer.enqueue(queue, pg_job, 10 + n, priority=2)).id for n in range(2)]
        ids.append((await producer.enqueue(queue, pg_job, 99, priority=9)).id)
        waiting = await producer.describe(ids[0])
        assert waiting.state is durable.WorkflowState.QUEUED
        assert waiting.status["position"] == 3
    async with (
        Runtime(store=PostgresStore(postgres_dsn), queues=[queue], workflows=[pg_job]) as one,
        Runtime(store=PostgresStore(postgres_dsn), queues=[queue], workflows=[pg_job]) as two,
    ):
        for index, workflow_id in enumerate(ids):
            await (await (one, two)[index % 2].handle(workflow_id)).result()
    assert seen.order == [10, 11, 0, 1, 2, 3, 99]


async def test_dedup_across_runtimes(postgres_dsn: str) -> None:
    queue = Queue("once", concurrency=1)
    async with (
        Runtime(store=PostgresStore(postgres_dsn), workflows=[pg_job]) as one,
        Runtime(store=PostgresStore(postgres_dsn), workflows=[pg_job]) as two,
    ):
        first, second = await asyncio.gather(
            one.enqueue(queue, pg_job, 1, dedup_id="order-7"),
            two.enqueue(queue, pg_job, 2, dedup_id="order-7"),
        )
        assert first.id == second.id
        with pytest.raises(durable.AlreadyQueued):
            await two.enqueue(queue, pg_job, 3, dedup_id="order-7", on_duplicate="raise")
    async with Runtime(
        store=PostgresStore(postgres_dsn), queues=[queue], workflows=[pg_job]
    ) as runtime:
        assert await (await runtime.handle(first.id)).result() in (1, 2)
        # Its workflow ended: the dedup id is free again.
        again = await runtime.enqueue(queue, pg_job, 4, dedup_id="order-7")
        assert again.id != first.id
        assert await again.result() == 4
    assert len(seen.runs) == 2


@pytest.mark.slow
async def test_enqueues_at_once_share_a_statement_each_answered_as_alone(
    postgres_dsn: str,
) -> None:
    # (a group commit: the requests handed in while one insert is in flight go in the next)
    queue = Queue("together", concurrency=8)
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[pg_job]) as runtime:
        await runtime.enqueue(queue, pg_job, -1, id="first-alone")
        inserts = runtime._queues._tables._inserts  # type: ignore[union-attr]
        before = inserts.statements
        calls = [runtime.enqueue(queue, pg_job, n, id=f"together-{n}") for n in range(20)]
        calls.append(runtime.enqueue(queue, pg_job, 20, dedup_id="same"))
        calls.append(runtime.enqueue(queue, pg_job, 21, dedup_id="same"))
        calls.append(runtime.enqueue(queue, pg_job, 22, id="together-3"))  # (an id taken)
        calls.append(runtime.enqueue(queue, pg_job, 23, key="nul\x00key"))  # (the server: no)
        *answers, refused = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(refused, Exception)  # (that request's error, and only its)
        handles = [answer for answer in answers if not isinstance(answer, BaseException)]
        assert len(handles) == len(answers)
        assert [handle.id for handle in handles[:20]] == [f"together-{n}" for n in range(20)]
        assert handles[20].id == handles[21].id  # (one request per dedup id)
        assert handles[22].id == "together-3"
        assert inserts.statements - before < 6  # (not one per request)
        waiting = await runtime.describe("together-19")
        assert waiting.status["position"] == 21  # (after first-alone and 19 others: FIFO)
    async with Runtime(
        store=PostgresStore(postgres_dsn), queues=[queue], workflows=[pg_job]
    ) as runtime:
        followed = [await runtime.handle(handle.id) for handle in handles]
        results = await asyncio.gather(*(handle.result() for handle in followed))
    assert results[:20] == list(range(20))
    assert results[22] == 3  # (the request queued first under that id)
    assert seen.peak <= 8
    assert sum(seen.runs.values()) == 22  # (first-alone, 20, one of the dedup pair)


async def test_enqueueing_an_id_whose_journal_exists_queues_nothing(postgres_dsn: str) -> None:
    # (the request's insert checks for the journal in the same statement: one round trip)
    queue = Queue("by-id", concurrency=1)
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[pg_job]) as runtime:
        assert await runtime.run(pg_job, 1, id="ran-by-id") == 1
        handle = await runtime.enqueue(queue, pg_job, 2, id="ran-by-id")
        assert handle.id == "ran-by-id"
        assert await handle.result() == 1
        with pytest.raises(durable.AlreadyQueued):
            await runtime.enqueue(queue, pg_job, 3, id="ran-by-id", on_duplicate="raise")
    connection = await asyncpg.connect(postgres_dsn)
    try:
        assert await connection.fetchval("SELECT count(*) FROM durable_queue_requests") == 0
    finally:
        await connection.close()
    assert seen.runs == {1: 1}


async def _admitted_by_a_dead_runtime(dsn: str, queue: Queue, workflow_id: str) -> None:
    """The state a runtime SIGKILLed between a request's admission and its start record
    leaves: the request admitted, its journal's row leased to that runtime, lapsed, empty."""
    async with Runtime(store=PostgresStore(dsn), workflows=[pg_job]) as producer:
        await producer.enqueue(queue, pg_job, 5, id=workflow_id)  # (not declared: not run)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "UPDATE durable_queue_requests SET admitted = true WHERE id = $1", workflow_id
        )
        await connection.execute(
            "INSERT INTO durable_journals (name, owner, lease_until) "
            "VALUES ($1, 'gone:1:dead', now() - interval '1 second')",
            workflow_id,
        )
    finally:
        await connection.close()


async def test_serve_starts_a_request_whose_admitter_died_before_its_start(
    postgres_dsn: str,
) -> None:
    queue = Queue("orphans", concurrency=1)
    await _admitted_by_a_dead_runtime(postgres_dsn, queue, "orphan-1")
    store = PostgresStore(postgres_dsn)
    async with Runtime(store=store, queues=[queue], workflows=[pg_job]) as runtime:
        serving = asyncio.create_task(runtime.serve(poll_interval="50 ms"))
        try:
            handle = await runtime.handle("orphan-1")
            assert await asyncio.wait_for(handle.result(), 30) == 5
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
    assert seen.runs == {5: 1}


async def test_recover_starts_a_request_whose_admitter_died_before_its_start(
    postgres_dsn: str,
) -> None:
    queue = Queue("orphans", concurrency=1)
    await _admitted_by_a_dead_runtime(postgres_dsn, queue, "orphan-2")
    store = PostgresStore(postgres_dsn)
    async with Runtime(store=store, queues=[queue], workflows=[pg_job]) as runtime:
        [handle] = await runtime.recover()
        assert await asyncio.wait_for(handle.result(), 30) == 5
    assert seen.runs == {5: 1}


# -- the other limits, across two runtimes (as two hosts) -----------------------------------

started: list[tuple[str, float]] = []  # (key, time.monotonic()) of each start


@durable.activity
async def keyed_work(key: str, n: int) -> int:
    started.append((key, asyncio.get_running_loop().time()))
    return await seen.hold(n)


@durable.workflow
async def keyed_job(key: str, n: int) -> int:
    return await keyed_work(key, n)


async def test_concurrency_per_key_across_runtimes(postgres_dsn: str) -> None:
    queue = Queue("per-customer", concurrency_per_key=1)
    per_key: dict[str, int] = {}
    peak: dict[str, int] = {}
    original = seen.hold

    async def hold(n: int) -> int:  # (counts in flight per key: n // 10 is the key)
        key = f"c{n // 10}"
        per_key[key] = per_key.get(key, 0) + 1
        peak[key] = max(peak.get(key, 0), per_key[key])
        try:
            return await original(n)
        finally:
            per_key[key] -= 1

    seen.hold = hold  # type: ignore[method-assign]
    dsn = postgres_dsn
    try:
        async with (
            Runtime(store=PostgresStore(dsn), queues=[queue], workflows=[keyed_job]) as one,
            Runtime(store=PostgresStore(dsn), queues=[queue], workflows=[keyed_job]) as two,
        ):
            handles = [
                await (one, two)[n % 2].enqueue(queue, keyed_job, f"c{c}", c * 10 + n, key=f"c{c}")
                for c in range(2)
                for n in range(4)
            ]
            await asyncio.gather(*(handle.result() for handle in handles))
    finally:
        seen.hold = original  # type: ignore[method-assign]
    assert peak == {"c0": 1, "c1": 1}


async def test_a_rate_limit_holds_across_runtimes(postgres_dsn: str) -> None:
    """At most 3 admissions in any second, by the server's clock, across two runtimes.

    The admissions' times are copied by a trigger as the queue counts them (the queue
    prunes its own table), so what is checked is the rate itself, not when the activities
    happened to run after (a loaded machine delays those by varying amounts).
    """
    queue = Queue("metered", rate=Rate(3, per="1 s"))
    started.clear()
    store = PostgresStore(postgres_dsn)
    async with (
        Runtime(store=store, queues=[queue], workflows=[keyed_job]) as one,
        Runtime(store=PostgresStore(postgres_dsn), queues=[queue], workflows=[keyed_job]) as two,
    ):
        await store.list()  # (the schema is made: the trigger goes on its table)
        watcher = await asyncpg.connect(postgres_dsn)
        try:
            await watcher.execute(
                "CREATE TABLE seen_starts (queue text, at timestamptz);"
                "CREATE FUNCTION copy_start() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN INSERT INTO seen_starts VALUES (NEW.queue, NEW.at); RETURN NEW; END $$;"
                "CREATE TRIGGER copy_start AFTER INSERT ON durable_queue_starts "
                "FOR EACH ROW EXECUTE FUNCTION copy_start();"
            )
            handles = [await (one, two)[n % 2].enqueue(queue, keyed_job, "r", n) for n in range(7)]
            await asyncio.gather(*(handle.result() for handle in handles))
            rows = await watcher.fetch(
                "SELECT extract(epoch FROM at)::float8 AS at FROM seen_starts "
                "WHERE queue = 'metered' ORDER BY at"
            )
        finally:
            await watcher.close()
    assert len(started) == 7
    times = [row["at"] for row in rows]
    assert len(times) == 7, times
    # Any 4 admissions span at least the period (a start exactly one period old is out).
    assert all(times[i + 3] - times[i] >= 1.0 - 1e-6 for i in range(len(times) - 3)), times
    assert times[6] - times[0] >= 2.0 - 1e-6, times  # (the 7th in the third period)


async def test_a_delay_holds_on_postgres(postgres_dsn: str) -> None:
    queue = Queue("later", concurrency=2)
    started.clear()
    async with Runtime(
        store=PostgresStore(postgres_dsn), queues=[queue], workflows=[keyed_job]
    ) as runtime:
        enqueued_at = asyncio.get_running_loop().time()
        # (2 s: "now" must start and describe() answer before it passes, on a loaded CI)
        later = await runtime.enqueue(queue, keyed_job, "late", 1, delay="2 s")
        now = await runtime.enqueue(queue, keyed_job, "now", 2)
        waiting = await runtime.describe(later.id)
        assert waiting.state is durable.WorkflowState.QUEUED
        assert "delay" in (waiting.current or "")
        await asyncio.gather(later.result(), now.result())
    at = dict(started)
    assert at["now"] < at["late"]
    assert at["late"] - enqueued_at >= 1.95


# -- activity limits (durable.Limit) on the database: across hosts --------------------------


def _runtime_with_its_own_limit(
    dsn: str, index: int, limit: durable.Limit, calls: Overlap
) -> tuple[Runtime, durable.Workflow[[int], int]]:
    # (one Limit object per runtime: as two hosts would each declare it)
    @durable.activity(name="limited_call", limit=limit)
    async def limited_call(n: int) -> int:
        return await calls.hold(n)

    @durable.workflow(name=f"limited_caller{index}")
    async def caller(n: int) -> int:
        return await limited_call(n)

    return Runtime(store=PostgresStore(dsn), workflows=[caller]), caller


async def test_an_activity_concurrency_limit_holds_across_runtimes(postgres_dsn: str) -> None:
    calls = Overlap()
    (first, one), (second, two) = (
        _runtime_with_its_own_limit(postgres_dsn, i, durable.Limit("api", concurrency=2), calls)
        for i in (1, 2)
    )
    async with first, second:
        results = await asyncio.gather(
            *(first.run(one, n) for n in range(5)), *(second.run(two, 10 + n) for n in range(5))
        )
    assert sorted(results) == [*range(5), *range(10, 15)]
    assert calls.peak == 2


async def test_an_activity_rate_limit_holds_across_runtimes(postgres_dsn: str) -> None:
    calls = Overlap()
    rate = durable.Rate(2, per="0.5 s")
    (first, one), (second, two) = (
        _runtime_with_its_own_limit(postgres_dsn, i, durable.Limit("rated", rate=rate), calls)
        for i in (1, 2)
    )
    starts: list[float] = []
    hold = calls.hold

    async def timed(n: int) -> int:
        starts.append(asyncio.get_running_loop().time())
        return await hold(n)

    calls.hold = timed  # type: ignore[method-assign]
    async with first, second:
        await asyncio.gather(
            *(first.run(one, n) for n in range(3)), *(second.run(two, 10 + n) for n in range(3))
        )
    starts.sort()
    assert len(starts) == 6
    # Starts are counted by the database's clock; a call starts a round trip (or a loaded
    # machine's scheduling delay) after: slack. Unlimited, all 6 start within that delay.
    assert all(later - earlier >= 0.25 for earlier, later in zip(starts, starts[2:], strict=False))
    assert starts[5] - starts[0] >= 0.8, starts  # (the 5th and 6th in the third period)


gate_open: list[asyncio.Event] = []


@durable.activity
async def held_open(n: int) -> int:
    seen.now += 1
    try:
        await gate_open[0].wait()
    finally:
        seen.now -= 1
    return n


@durable.workflow
async def held_job(n: int) -> int:
    return await held_open(n)


async def test_describe_counts_the_slots_held_on_every_runtime(postgres_dsn: str) -> None:
    queue = Queue("busy", concurrency=2)
    gate_open[:] = [asyncio.Event()]
    async with (
        Runtime(store=PostgresStore(postgres_dsn), queues=[queue], workflows=[held_job]) as one,
        Runtime(store=PostgresStore(postgres_dsn), queues=[queue], workflows=[held_job]) as two,
    ):
        handles = [await (one, two)[n % 2].enqueue(queue, held_job, n) for n in range(3)]
        results = asyncio.gather(*(h.result() for h in handles))  # (dispatching on both)
        async with asyncio.timeout(30):
            while seen.now < 2:  # (both slots taken, wherever)
                await asyncio.sleep(0.02)
        states = {h.id: (await one.describe(h.id)).state for h in handles}
        [waiting] = [i for i, state in states.items() if state is durable.WorkflowState.QUEUED]
        described = await two.describe(waiting)
        assert described.status["waiting"] == 1
        # (the slots are held by both runtimes: counted from the database's locks)
        assert "concurrency (2 of 2 running)" in (described.current or ""), described.current
        gate_open[0].set()
        assert sorted(await results) == [0, 1, 2]


async def test_durable_list_shows_postgres_queues_and_why_requests_wait(postgres_dsn: str) -> None:
    queue = Queue("listed", concurrency=1, rate=Rate(5, per="1 min"))
    gate_open[:] = [asyncio.Event()]
    async with Runtime(
        store=PostgresStore(postgres_dsn), queues=[queue], workflows=[held_job]
    ) as runtime:
        handles = [await runtime.enqueue(queue, held_job, n, id=f"job-{n}") for n in range(3)]
        results = asyncio.gather(*(h.result() for h in handles))
        async with asyncio.timeout(30):
            while seen.now < 1:  # (one runs and holds the only slot)
                await asyncio.sleep(0.02)
        # A reader that declares nothing (the CLI, the web UI): limits from the database.
        async with Catalog(postgres_dsn) as catalog:
            listing = await catalog.listing(state="queued")
        [load] = listing.queues
        assert (load.name, load.waiting, load.admitted, load.running) == ("listed", 2, 1, 1)
        assert (load.concurrency, load.rate) == (1, (5, 60.0))
        places = {d.workflow_id: d.status["position"] for d in listing.workflows}
        assert places == {"job-1": 1, "job-2": 2}
        assert all("concurrency (1 of 1 running)" in (d.current or "") for d in listing.workflows)
        gate_open[0].set()
        assert sorted(await results) == [0, 1, 2]


quick_ended: set[int] = set()


@durable.workflow
async def pg_quick(n: int) -> int:
    quick_ended.add(n)
    return n


@pytest.mark.slow
async def test_a_drain_opens_its_journals_without_claims_and_ends_them_together(
    postgres_dsn: str,
) -> None:
    # (each admission creates and claims its journal's row: fence 1, no second claim; the
    # ends (done, lease given back) of workflows ending at once share statements)
    queue = Queue("drained", concurrency=20)
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[pg_quick]) as producer:
        handles = await asyncio.gather(*(producer.enqueue(queue, pg_quick, n) for n in range(60)))
    quick_ended.clear()
    store = PostgresStore(postgres_dsn)
    claims: list[str] = []
    claim = store._claim

    async def counted(name: str) -> Any:
        claims.append(name)
        return await claim(name)

    store._claim = counted  # type: ignore[method-assign]
    async with Runtime(store=store, queues=[queue], workflows=[pg_quick]) as runtime:
        await runtime.recover()  # (its dispatcher starts)
        async with asyncio.timeout(60):
            while len(quick_ended) < 60:  # (no handle: a follower would claim the journals)
                await asyncio.sleep(0.01)
            while await _count(postgres_dsn, "durable_queue_requests") > 0:
                await asyncio.sleep(0.01)  # (deleted as the workflows end)
        assert store.ends.statements < 60 * 2 / 2  # (a done mark and a release each)
    assert claims == []  # (every journal opened as its admission claimed it)
    assert len(handles) == 60
    connection = await asyncpg.connect(postgres_dsn)
    try:
        rows = await connection.fetch("SELECT fence, done, owner FROM durable_journals")
        assert await connection.fetchval("SELECT count(*) FROM durable_queue_requests") == 0
    finally:
        await connection.close()
    assert len(rows) == 60
    assert {(row["fence"], row["done"], row["owner"]) for row in rows} == {(1, True, None)}


@pytest.mark.slow
async def test_a_journal_claimed_by_an_admission_too_long_ago_is_claimed_on_open(
    postgres_dsn: str,
) -> None:
    store = PostgresStore(postgres_dsn, lease=3.0)
    async with store:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            await connection.execute(
                "INSERT INTO durable_journals (name, owner, fence, lease_until) "
                "VALUES ('late', $1, 1, now() + interval '3 seconds'), "
                "('in-time', $1, 1, now() + interval '3 seconds')",
                store.owner,
            )
        finally:
            await connection.close()
        store.claimed("late", 1, 0, False, time.monotonic() - 1.5)  # (past a third of it)
        store.claimed("in-time", 1, 0, False, time.monotonic())
        late, in_time = await store.open("late"), await store.open("in-time")
        assert (late.fence, in_time.fence) == (2, 1)  # (claimed again; taken as noted)
        await in_time.append(b"first")  # (its fence holds: the commit checks it)
        assert [record.payload for record in await store.read("in-time")] == [b"first"]
        await late.close()
        await in_time.close()


async def _count(dsn: str, table: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await connection.close()


@pytest.mark.slow
async def test_a_dedup_holder_replaced_twice_by_ended_ones_never_leaves_a_handle_without_request(
    postgres_dsn: str,
) -> None:
    # The holder of a dedup id ended (its process died before deleting its request), and
    # when it is deleted another ended holder takes its place (as an enqueue and a run on
    # another host might, in between): the enqueue goes on until its request is in, never
    # answering with its own id as a duplicate of itself (a handle with nothing behind it).
    queue = Queue("twice", concurrency=1)
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[pg_job]) as runtime:
        await runtime.enqueue(queue, pg_job, 1, id="old-1", dedup_id="d")
        connection = await asyncpg.connect(postgres_dsn)
        try:
            await connection.execute(
                """
                INSERT INTO durable_journals (name, done) VALUES ('old-1', true);
                CREATE FUNCTION replace_old() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  INSERT INTO durable_queue_requests (id, queue, priority, not_before,
                                                      dedup_id, workflow, payload)
                  SELECT 'old-2', queue, priority, not_before, dedup_id, workflow, payload
                    FROM (SELECT OLD.*) AS o;
                  INSERT INTO durable_journals (name, done) VALUES ('old-2', true);
                  RETURN NULL;
                END $$;
                CREATE TRIGGER replace_old AFTER DELETE ON durable_queue_requests
                  FOR EACH ROW WHEN (OLD.id = 'old-1') EXECUTE FUNCTION replace_old();
                """
            )
            handle = await runtime.enqueue(queue, pg_job, 2, id="new", dedup_id="d")
            assert handle.id == "new"
            queued = await connection.fetch("SELECT id FROM durable_queue_requests")
            assert [row["id"] for row in queued] == ["new"]
        finally:
            await connection.close()
