"""A database blip is not an outage: serve(), the inbox poller, the heartbeat and the
committer ride out terminated connections and a database that refuses connections for a
while, and the work goes on by itself once it answers (against the suite's real server)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import pytest

import durable
from durable import PostgresStore, Runtime
from durable._storage._postgres_journal import PostgresJournal
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio

DONE: list[str] = []


@durable.activity(name="outage-step")
async def step(name: str) -> str:
    DONE.append(name)
    return name


@durable.workflow(name="outage-flow")
async def flow(n: int) -> str:
    first = await step(f"{n} first")
    approval = await durable.wait_for_event("go")
    second = await step(f"{n} second")
    return f"{first}, {approval}, {second}"


async def blip(dsn: str, seconds: float) -> None:
    """The database refuses connections for `seconds`, and every session is terminated."""
    name = dsn.rsplit("/", 1)[1]
    admin_dsn = dsn.rsplit("/", 1)[0] + "/postgres"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await asyncio.sleep(seconds)
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def test_serving_rides_out_a_database_blip(
    postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    DONE.clear()
    caplog.set_level(logging.INFO, logger="durable")
    serving_store, sending_store = PostgresStore(postgres_dsn, lease=2), PostgresStore(postgres_dsn)
    async with (
        Runtime(store=serving_store, workflows=[flow], event_poll_interval=0.1) as server,
        Runtime(store=sending_store, event_poll_interval=0.1) as sender,
    ):
        for n in range(3):
            await server.submit(flow, n, id=f"order-{n}")
        serving = asyncio.ensure_future(server.serve(poll_interval=0.1))
        try:

            async def all_waiting() -> bool:  # (their first steps committed, not only run)
                described = [await sender.describe(f"order-{n}") for n in range(3)]
                return all(d.waiting_for is not None for d in described)

            await wait_until(all_waiting, timeout=20)
            await blip(postgres_dsn, 2.0)
            assert not serving.done(), "serve() rides it out"
            for n in range(3):  # (from another runtime: the server's poller must see them)
                await sender.send_event(f"order-{n}", "go", "yes")

            async def all_done() -> bool:
                described = [await sender.describe(f"order-{n}") for n in range(3)]
                return all(d.state is durable.WorkflowState.COMPLETED for d in described)

            await wait_until(all_done, timeout=30)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    assert sorted(DONE) == sorted(f"{n} {which}" for n in range(3) for which in ("first", "second"))
    messages = [record.getMessage() for record in caplog.records]
    assert any("journal store is unavailable" in m for m in messages), messages
    assert any("journal store answers again" in m for m in messages), messages
    stopped = [m for m in messages if " stopped: " in m or "could not" in m]
    assert stopped == [], stopped


class InterfaceError(Exception):
    """Named as asyncpg's: "the underlying connection is closed" (a session the server
    ended while a claim was in flight)."""


@durable.workflow(name="outage-short")
async def short(n: int) -> str:
    return await step(f"{n} short")


async def test_a_claim_that_fails_under_serve_does_not_end_it(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A raw driver error from a claim (the session ended mid-transaction) is logged and the
    workflow tried again at the next look; serve() used to exit with it."""
    DONE.clear()
    caplog.set_level(logging.WARNING, logger="durable")
    store = PostgresStore(postgres_dsn, lease=2)
    claim = store._claim
    failed: list[str] = []

    async def failing_once(name: str) -> object:
        if not failed:
            failed.append(name)
            await store.connect()
            raise InterfaceError("cannot call Transaction.__aexit__(): the connection is closed")
        return await claim(name)

    async with Runtime(store=store, workflows=[short]) as runtime:
        await runtime.submit(short, 1, id="short-1")
        monkeypatch.setattr(store, "_claim", failing_once)
        serving = asyncio.ensure_future(runtime.serve(poll_interval=0.1))
        try:

            async def done() -> bool:
                return (await runtime.describe("short-1")).state is durable.WorkflowState.COMPLETED

            await wait_until(done, timeout=20)
            assert not serving.done(), "serve() goes on"
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    assert failed == ["short-1"]
    assert DONE == ["1 short"]
    messages = [record.getMessage() for record in caplog.records]
    assert any("cannot start workflow short-1 now: InterfaceError" in m for m in messages), messages


@durable.workflow(name="outage-two-steps")
async def two_steps(n: int) -> list[str]:
    return [await step(f"{n} one"), await step(f"{n} two")]


async def test_a_commit_whose_acknowledgement_was_lost_is_the_database_away(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A commit that reached the server, whose answer was lost with the connection: its
    retry finds its own records there (a duplicate key). That is the database away, not a
    broken journal: the run resumes from what was committed, and the workflow ends."""
    DONE.clear()
    caplog.set_level(logging.INFO, logger="durable")
    store = PostgresStore(postgres_dsn)
    real = store.committer._commit_on
    lost: list[int] = []

    async def answer_lost(
        connection: object, batch: dict[PostgresJournal, list[tuple[int, bytes]]]
    ) -> list[PostgresJournal]:
        held = await real(connection, batch)
        if not lost and any(len(records) for records in batch.values()) and DONE:
            lost.append(1)  # (once: the first commit after the first step ran)
            raise ConnectionResetError("the connection was lost before the answer came")
        return held

    monkeypatch.setattr(store.committer, "_commit_on", answer_lost)
    async with Runtime(store=store, workflows=[two_steps]) as runtime:
        result = await asyncio.wait_for(runtime.run(two_steps, 1, id="lost-ack"), 20)
    assert lost == [1]
    assert result == ["1 one", "1 two"]
    assert DONE.count("1 one") == 1, DONE  # (its result was committed: not run again)
    messages = [record.getMessage() for record in caplog.records]
    assert any("lost-ack" in m and "journal store is away" in m for m in messages), messages
