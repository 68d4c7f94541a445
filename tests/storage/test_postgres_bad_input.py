"""PostgresStore and what a user or a database can get wrong: passwords never shown, a
read-only database, a damaged schema version, a newer schema installed meanwhile, events
over the record bound. Each is a durable error that says what to do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

import durable
from durable import PostgresStore, Runtime
from durable._storage._postgres_dsn import redacted
from durable._storage._postgres_sql import SCHEMA_VERSION

pytestmark = pytest.mark.anyio

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://user:{SECRET}@127.0.0.1:1/db",
        f"postgresql://user@127.0.0.1:1/db?password={SECRET}",
        f"postgresql://user@127.0.0.1:1/db?sslmode=disable&password={SECRET}&x=1",
        f"host=127.0.0.1 port=1 user=user password={SECRET} dbname=db",
        f"host=127.0.0.1 port=1 password = '{SECRET} with spaces' dbname=db",
    ],
)
async def test_no_form_of_password_appears_in_an_error(dsn: str) -> None:
    store = PostgresStore(dsn)
    with pytest.raises(durable.StoreUnavailable) as caught:
        await store.connect()
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(store) + store.location("x")
    assert "***" in redacted(dsn, dsn)


async def test_a_read_only_database_is_a_clear_error(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:  # (the tables exist)
        await store.connect()
    admin = await asyncpg.connect(postgres_dsn)
    try:
        name = await admin.fetchval("SELECT current_database()")
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    finally:
        await admin.close()
    async with PostgresStore(postgres_dsn) as store:
        with pytest.raises(durable.StoreUnavailable, match=r"read-only.*primary"):
            await store.open("order-1")


async def test_a_damaged_schema_version_is_a_clear_error(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        await store.connect()
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute("UPDATE durable_meta SET value = 'two' WHERE key = 'schema_version'")
    finally:
        await admin.close()
    with pytest.raises(durable.StoreUnavailable, match="schema_version is 'two'"):
        await PostgresStore(postgres_dsn).connect()


async def test_a_newer_schema_installed_meanwhile_stops_claims(postgres_dsn: str) -> None:
    async with PostgresStore(postgres_dsn) as store:
        journal = await store.open("before")
        await journal.close()
        admin = await asyncpg.connect(postgres_dsn)
        try:
            await admin.execute(
                "UPDATE durable_meta SET value = $1 WHERE key = 'schema_version'",
                str(SCHEMA_VERSION + 1),
            )
            with pytest.raises(durable.UnsupportedJournalFormat, match="upgrade durable"):
                await store.open("after")
            owner = await admin.fetchval("SELECT owner FROM durable_journals WHERE name = 'after'")
            assert owner is None, "the claim was rolled back"
        finally:
            await admin.close()


@pytest.fixture
async def runtime(postgres_dsn: str) -> AsyncIterator[Runtime]:
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        yield runtime


@durable.workflow(name="bad-input-waiter")
async def waiter() -> object:
    return await durable.wait_for_event("big")


async def test_an_event_over_the_record_bound_is_refused_at_send(runtime: Runtime) -> None:
    handle = await runtime.start(waiter, id="waiter")
    with pytest.raises(durable.MessageTooLarge):
        await runtime.send_event("waiter", "big", b"x" * (80 << 20))
    await runtime.send_event("waiter", "big", "small")
    assert await handle.result() == "small"
