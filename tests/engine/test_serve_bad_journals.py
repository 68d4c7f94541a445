"""One bad journal cannot take down serve(): it is set aside, the rest of its batch runs.

A journal whose bytes are not a journal (a malformed record, a foreign format) made
serve() raise, so every process that claimed it died in turn and the other workflows of
its batch never ran. Now serve() logs it once, skips it until a person acts (repairs or
replaces the file; on PostgreSQL, opens it on purpose), and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

import durable
from durable import JournalDirectory, PostgresStore, Runtime
from durable._encoding import encode
from durable._storage._postgres_sql import SCHEMA, SCHEMA_VERSION
from tests.conftest import wait_until

pytestmark = pytest.mark.anyio


@durable.workflow(name="serve-good")
async def good(n: int) -> int:
    return n * 2


@contextlib.asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.get_running_loop().create_task(runtime.serve(poll_interval=0.05))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_malformed_journal_is_set_aside_on_a_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "journals"
    async with JournalDirectory(directory) as store:
        bad = await store.open("a-bad")  # (first in the batch: names are sorted)
        bad.write(encode(["not", "a", "start", "record"]))
        await bad.close()
    caplog.set_level(logging.INFO, logger="durable")
    async with Runtime(directory, workflows=[good]) as runtime:
        for n in range(3):
            await runtime.submit(good, n, id=f"good-{n}")
        async with serving(runtime) as served:

            async def all_done() -> bool:
                states = [(await runtime.describe(f"good-{n}")).state for n in range(3)]
                return all(state is durable.WorkflowState.COMPLETED for state in states)

            await wait_until(all_done)
            await asyncio.sleep(0.2)  # (a few more looks: it is not tried again)
            assert not served.done(), "serve() goes on"
            set_aside = [r for r in caplog.records if "a-bad set aside" in r.getMessage()]
            assert len(set_aside) == 1, "logged once, not at every look"
            assert "is corrupted" in set_aside[0].getMessage()
            # A person replaces it: serve() looks at it again (and runs it).
            (directory / "a-bad.journal").unlink()
            await runtime.submit(good, 7, id="a-bad")

            async def repaired() -> bool:
                return (await runtime.describe("a-bad")).state is durable.WorkflowState.COMPLETED

            await wait_until(repaired)


async def test_a_malformed_row_is_set_aside_on_postgres(
    postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durable")
    async with Runtime(store=PostgresStore(postgres_dsn), workflows=[good]) as runtime:
        for n in range(3):
            await runtime.submit(good, n, id=f"good-{n}")
        connection = await asyncpg.connect(postgres_dsn)
        try:
            await connection.execute("INSERT INTO durable_journals (name) VALUES ('a-bad')")
            await connection.execute(
                "INSERT INTO durable_records VALUES ('a-bad', 0, 0, $1)", b"\xc1garbage"
            )
            async with serving(runtime) as served:

                async def all_done() -> bool:
                    states = [(await runtime.describe(f"good-{n}")).state for n in range(3)]
                    return all(state is durable.WorkflowState.COMPLETED for state in states)

                await wait_until(all_done)
                unreadable = await connection.fetchval(
                    "SELECT unreadable FROM durable_journals WHERE name = 'a-bad'"
                )
                assert unreadable is not None
                assert "a-bad" in unreadable
                await asyncio.sleep(0.2)
                assert not served.done(), "serve() goes on"
                set_aside = [r for r in caplog.records if "a-bad set aside" in r.getMessage()]
                assert len(set_aside) == 1, "skipped while set aside: logged once"
        finally:
            await connection.close()


async def test_a_version_1_database_is_upgraded_in_place(postgres_dsn: str) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        await connection.execute(SCHEMA)
        await connection.execute("INSERT INTO durable_meta VALUES ('schema_version', '1')")
        await connection.execute("INSERT INTO durable_journals (name) VALUES ('old')")
        async with PostgresStore(postgres_dsn) as store:
            await store.connect()
        version = await connection.fetchval(
            "SELECT value FROM durable_meta WHERE key = 'schema_version'"
        )
        assert version == str(SCHEMA_VERSION) == "5"
        assert await connection.fetchval(
            "SELECT unreadable IS NULL FROM durable_journals WHERE name = 'old'"
        )
    finally:
        await connection.close()
