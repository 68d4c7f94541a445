"""PostgresStore against a real server: commits, leases and fencing, inboxes, rotation,
the migration, and errors that say what to do. No mocks of the database."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

import durable
from durable import JournalFenced, PostgresStore
from durable._storage._postgres_journal import PostgresJournal
from durable._storage._postgres_sql import SCHEMA_VERSION

pytestmark = pytest.mark.anyio


async def test_records_are_committed_and_read_back(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        journal = await store.open("order-1")
        assert journal.records == []
        await journal.append(b"first")
        journal.write(b"second")
        journal.write(b"third")
        await journal.flush()
        assert [r.payload for r in await store.read("order-1")] == [b"first", b"second", b"third"]
        await journal.close()
        reopened = await store.open("order-1")
        assert [(r.offset, r.payload) for r in reopened.records] == [
            (0, b"first"),
            (1, b"second"),
            (2, b"third"),
        ]
        await reopened.close()
        assert await store.list() == ["order-1"]
        with pytest.raises(durable.JournalNotFound):
            await store.read("order-2")
        with pytest.raises(durable.InvalidJournalName):
            await store.open("../etc")


async def test_one_writer_at_a_time(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as first, PostgresStore(postgres_dsn) as second:
        journal = await first.open("order-1")
        with pytest.raises(durable.JournalLocked):
            await second.open("order-1")  # (another process, in effect: another owner)
        with pytest.raises(durable.JournalLocked):
            await first.open("order-1")  # (and not twice in one store)
        await journal.close()  # gives the lease back
        taken = await second.open("order-1")
        await taken.close()


async def test_two_opens_at_once_in_one_store_give_one_claim(postgres_dsn: str) -> None:
    """The second of two concurrent opens is refused before it claims (it used to be
    granted too, bumping the fence under the first)."""
    async with PostgresStore(postgres_dsn) as store:
        await store.connect()
        opened = await asyncio.gather(
            store.open("order-1"), store.open("order-1"), return_exceptions=True
        )
        journals = [j for j in opened if isinstance(j, PostgresJournal)]
        refused = [e for e in opened if isinstance(e, durable.JournalLocked)]
        assert (len(journals), len(refused)) == (1, 1)
        await journals[0].append(b"kept")
        await journals[0].close()
        assert [r.payload for r in await store.read("order-1")] == [b"kept"]


async def test_a_replaced_handle_is_never_told_its_records_are_committed(
    postgres_dsn: str,
) -> None:
    """A handle the store no longer lists (another claim took its journal) still has its
    flush settled by the commit that checks its fence: JournalFenced, not success."""
    async with PostgresStore(postgres_dsn) as store:
        old = await store.open("order-1")
        await old.append(b"first")
        store.forget(old)  # (replaced, as a second claim of the same owner once did)
        connection = await asyncpg.connect(postgres_dsn)
        try:
            await connection.execute(
                "UPDATE durable_journals SET fence = fence + 1 WHERE name = 'order-1'"
            )
        finally:
            await connection.close()
        old.write(b"lost")
        with pytest.raises(durable.JournalFenced):
            await old.flush()
        assert [r.payload for r in await store.read("order-1")] == [b"first"]


async def test_a_writer_that_lost_its_lease_cannot_append(postgres_dsn: str) -> None:
    """A paused runner's lease expires; another takes over; the late appends are refused."""
    async with (
        PostgresStore(postgres_dsn, lease=0.5) as paused,
        PostgresStore(postgres_dsn, lease=30) as other,
    ):
        stale = await paused.open("order-1")
        await stale.append(b"before the pause")
        assert paused._heartbeat is not None
        paused._heartbeat.cancel()  # the process is paused: nothing renews its lease
        await asyncio.sleep(0.7)
        fresh = await other.open("order-1")
        assert [r.payload for r in fresh.records] == [b"before the pause"]
        assert fresh.fence == stale.fence + 1
        with pytest.raises(durable.JournalFenced, match="taken over"):
            await stale.append(b"late")
        with pytest.raises(durable.JournalFenced):
            stale.write(b"later")  # the handle stays unusable
        await fresh.append(b"after the takeover")
        assert [r.payload for r in await other.read("order-1")] == [
            b"before the pause",
            b"after the takeover",
        ]
        await fresh.close()
        await stale.close()


@pytest.mark.timeout(30)  # (the bug spun the event loop for ever: no asyncio timeout fires)
async def test_records_queued_when_the_lease_is_found_lost_never_stall_the_committer(
    postgres_dsn: str,
) -> None:
    """The soak's hang: a process back from SIGSTOP had records queued on a journal whose
    lease the heartbeat then found taken over. The committer looped for ever on them
    without awaiting (they can never be committed), so nothing else ran, SIGTERM included."""
    async with PostgresStore(postgres_dsn) as store:
        lost = await store.open("order-1")
        other = await store.open("order-2")
        lost.write(b"queued before the pause")
        lost.lose(JournalFenced(path=store.location("order-1"), fence=lost.fence))  # (heartbeat)
        async with asyncio.timeout(10):
            await other.append(b"another workflow's record")
            await asyncio.sleep(0.1)  # (the committer is done, not spinning)
        assert [r.payload for r in await store.read("order-2")] == [b"another workflow's record"]
        assert await store.read("order-1") == []
        with pytest.raises(durable.JournalFenced):
            await lost.flush()
        await other.close()
        await lost.close()


async def test_the_heartbeat_keeps_a_lease_and_tells_a_lost_one(postgres_dsn: str) -> None:
    async with (
        PostgresStore(postgres_dsn, lease=0.6) as store,
        PostgresStore(postgres_dsn) as other,
    ):
        journal = await store.open("order-1")
        await asyncio.sleep(1.0)  # past the lease: renewed meanwhile
        with pytest.raises(durable.JournalLocked):
            await other.open("order-1")
        await journal.append(b"still mine")
        await journal.close()


async def test_many_journals_share_commits(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        journals = [await store.open(f"wf-{index}") for index in range(50)]
        before = store.committer.commits

        async def steps(journal: durable.Journal) -> None:
            for step in range(5):
                await journal.append(f"step {step}".encode())

        await asyncio.gather(*(steps(journal) for journal in journals))
        commits = store.committer.commits - before
        assert commits < 50 * 5 / 5  # (250 appends; in practice 5-10 transactions)
        for journal in journals:
            assert len(await store.read(journal.name)) == 5
            await journal.close()


async def test_inbox_posts_refusals_and_sizes(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        assert await store.inbox_sizes(["a", "b"]) == {"a": -1, "b": -1}
        assert await store.post("a", b"one") == 0
        assert await store.post("a", b"two") == 1

        class Duplicate(Exception):
            pass

        def refuse(messages: list[durable.StoredRecord]) -> Exception | None:
            return Duplicate() if any(m.payload == b"two" for m in messages) else None

        with pytest.raises(Duplicate):
            await store.post("a", b"two", refuse)
        assert [m.payload for m in await store.inbox("a")] == [b"one", b"two"]
        assert [m.payload for m in await store.inbox("a", 1)] == [b"two"]
        assert await store.inbox_sizes(["a", "b"]) == {"a": 2, "b": -1}


async def test_rotation_starts_a_generation_and_keeps_one_before(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        journal = await store.open("loop")
        await journal.append(b"g0 start")
        g1 = await store.rotate(journal, b"g1 start")
        assert journal.closed
        await g1.append(b"g1 step")
        assert [r.payload for r in await store.read("loop")] == [b"g1 start", b"g1 step"]
        g2 = await store.rotate(g1, b"g2 start")
        await g2.close()
        reopened = await store.open("loop")
        assert [r.payload for r in reopened.records] == [b"g2 start"]
        await reopened.close()
        async with store.pool.acquire() as connection:
            kept = await connection.fetch(
                "SELECT DISTINCT generation FROM durable_records WHERE name = 'loop' ORDER BY 1"
            )
        assert [row["generation"] for row in kept] == [1, 2]


async def test_the_migration_runs_once_and_refuses_a_newer_schema(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        journal = await store.open("kept")
        await journal.append(b"record")
        await journal.close()
    async with PostgresStore(postgres_dsn) as again:  # (idempotent: nothing recreated)
        assert [r.payload for r in await again.read("kept")] == [b"record"]
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(
            "UPDATE durable_meta SET value = $1 WHERE key = 'schema_version'",
            str(SCHEMA_VERSION + 1),
        )
    finally:
        await connection.close()
    with pytest.raises(durable.UnsupportedJournalFormat, match="upgrade durable"):
        await PostgresStore(postgres_dsn).connect()


async def test_an_unreachable_database_is_a_clear_error(postgres_dsn: str) -> None:
    dead = postgres_dsn.rsplit(":", 1)[0] + ":1/nowhere"
    store = PostgresStore(dead)
    with pytest.raises(durable.StoreUnavailable, match=r"cannot connect.*Check the DSN"):
        await store.open("order-1")
    with pytest.raises(ValueError, match="lease"):
        PostgresStore(postgres_dsn, lease=0)


async def test_a_user_without_rights_is_told_what_to_grant(postgres_dsn: str) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute("CREATE ROLE reader LOGIN")
        await connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        await connection.close()
    as_reader = postgres_dsn.replace("durable@", "reader@", 1)
    with pytest.raises(durable.StoreUnavailable, match="may not create or use"):
        await PostgresStore(as_reader).connect()
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute("DROP OWNED BY reader")
        await connection.execute("DROP ROLE reader")
    finally:
        await connection.close()


async def test_a_sleepers_due_time_never_hides_a_message_it_has_not_taken(
    postgres_dsn: str,
) -> None:
    """A post that raced a runner's suspension keeps the workflow due now: were the runner
    to die before taking the message, serve() elsewhere still claims it once the lease
    lapses (it used to be left due at 'infinity' for ever)."""
    async with PostgresStore(postgres_dsn, lease=0.3) as store:
        journal = await store.open("order-1")
        await journal.append(b"start")
        await store.post("order-1", b"approved")  # (position 0; the runner has not taken it)
        await journal.note(wake_at=float("inf"), inbox_next=0)
        connection = await asyncpg.connect(postgres_dsn)
        try:
            due = "SELECT due FROM durable_journals WHERE name = 'order-1'"
            assert await connection.fetchval(due) is None, "due now: a message is waiting"
            await journal.note(wake_at=float("inf"), inbox_next=1)  # (it took that one)
            assert await connection.fetchval(due) is not None  # ('infinity': a message wakes it)
            await store.post("order-1", b"cancel")
            assert await connection.fetchval(due) is None
        finally:
            await connection.close()
        await journal.note(wake_at=float("inf"), inbox_next=1)
        assert store._heartbeat is not None
        store._heartbeat.cancel()  # (the runner dies with its lease)
        async with PostgresStore(postgres_dsn) as other:
            await asyncio.sleep(0.4)
            assert await other.candidates(10) == ["order-1"]


async def test_a_commit_renews_the_leases_of_its_journals(postgres_dsn: str) -> None:
    """As the heartbeat would: a workflow that commits keeps its lease even if the
    heartbeat has not run (after a database restart, say), here and in the database."""
    async with (
        PostgresStore(postgres_dsn, lease=0.6) as store,
        PostgresStore(postgres_dsn) as other,
    ):
        assert store._heartbeat is not None
        store._heartbeat.cancel()  # (only the commits renew it now)
        journal = await store.open("order-1")
        for n in range(6):  # (1.2 s: twice the lease)
            await asyncio.sleep(0.2)
            before = time.monotonic()
            await journal.append(f"step {n}".encode())
            assert journal.held_until >= before + 0.6 - 0.05
            with pytest.raises(durable.JournalLocked):
                await other.open("order-1")
        journal.check_held()
        await journal.close()
