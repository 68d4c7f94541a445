"""PostgresStore's tables and statements, and the migration that creates the tables.

Schema version 5 (older databases are upgraded in place: version 2 adds the `unreadable`
column, version 3 the queue tables `durable_queue_requests` and `durable_queue_starts`,
version 4 the journals' change count and `durable_summaries`, which workflow queries read,
version 5 `durable_queue_config`, each queue's limits for readers that do not declare it).

A migration runs in one transaction under an advisory lock, so it either
happens whole or not at all, and two processes starting at once do not race.
"""

from __future__ import annotations

from typing import Any

from .._errors import StoreUnavailable, UnsupportedJournalFormat

SCHEMA_VERSION = 5
MIGRATION_LOCK = 0x64757261  # pg_advisory_xact_lock key: "dura"
SCHEMA = """
CREATE TABLE durable_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE durable_journals (
    name        text PRIMARY KEY,
    generation  integer NOT NULL DEFAULT 0,
    owner       text,
    fence       bigint NOT NULL DEFAULT 0,
    lease_until timestamptz,
    done        boolean NOT NULL DEFAULT false,
    due         timestamptz,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE durable_records (
    name        text NOT NULL REFERENCES durable_journals (name) ON DELETE CASCADE,
    generation  integer NOT NULL,
    seq         integer NOT NULL,
    payload     bytea NOT NULL,
    PRIMARY KEY (name, generation, seq)
);
CREATE INDEX durable_journals_work ON durable_journals (due) WHERE NOT done;
CREATE TABLE durable_inbox (
    name        text NOT NULL,
    seq         integer NOT NULL,
    payload     bytea NOT NULL,
    PRIMARY KEY (name, seq)
);
"""
# The steps from each version to the next, applied in order by migrate().
UPGRADES = {
    # Why serve() set a journal aside (its bytes cannot be read as a journal): it skips it
    # until a runtime opens it on purpose (run, start, recover), which clears it.
    2: "ALTER TABLE durable_journals ADD COLUMN unreadable text",
    # Durable queues (`_postgres_queues.py`): a request per queued workflow, waiting until a
    # runtime claims it (admitted), deleted when its workflow ends; a queue's recent starts
    # for its rate limit. A dedup id is unique per queue while its request exists.
    3: """
CREATE TABLE durable_queue_requests (
    id          text PRIMARY KEY,
    queue       text NOT NULL,
    priority    smallint NOT NULL,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    enqueued    timestamptz NOT NULL DEFAULT now(),
    not_before  timestamptz NOT NULL,
    key         text,
    dedup_id    text,
    workflow    text NOT NULL,
    payload     bytea NOT NULL,
    admitted    boolean NOT NULL DEFAULT false
);
CREATE INDEX durable_queue_requests_order ON durable_queue_requests (queue, priority, seq)
    WHERE NOT admitted;
CREATE UNIQUE INDEX durable_queue_requests_dedup ON durable_queue_requests (queue, dedup_id)
    WHERE dedup_id IS NOT NULL;
CREATE TABLE durable_queue_starts (queue text NOT NULL, at timestamptz NOT NULL);
CREATE INDEX durable_queue_starts_queue ON durable_queue_starts (queue, at);
""",
    # Workflow queries (`_catalog_postgres.py`): every committed batch of records, new
    # generation and inbox post adds one to `changes`; a query re-reads the journals whose
    # summary keeps another count, then filters the summaries through these indexes.
    4: """
ALTER TABLE durable_journals ADD COLUMN changes bigint NOT NULL DEFAULT 0;
CREATE TABLE durable_summaries (
    name        text PRIMARY KEY REFERENCES durable_journals (name) ON DELETE CASCADE,
    changes     bigint NOT NULL,
    workflow    text NOT NULL,
    state       text NOT NULL,
    started     double precision NOT NULL,
    updated     double precision NOT NULL,
    ended       double precision,
    error_types text[] NOT NULL,
    parent      text,
    description bytea NOT NULL
);
CREATE INDEX durable_summaries_order ON durable_summaries (started DESC, name);
CREATE INDEX durable_summaries_state ON durable_summaries (state, started DESC, name);
CREATE INDEX durable_summaries_workflow ON durable_summaries (workflow, started DESC, name);
CREATE INDEX durable_summaries_prefix ON durable_summaries (name text_pattern_ops);
CREATE INDEX durable_summaries_parent ON durable_summaries (parent) WHERE parent IS NOT NULL;
CREATE INDEX durable_summaries_errors ON durable_summaries USING gin (error_types);
CREATE INDEX durable_summaries_updated ON durable_summaries (updated);
CREATE INDEX durable_summaries_ended ON durable_summaries (ended) WHERE ended IS NOT NULL;
""",
    # Each queue's limits as last declared (the file store's queues/<name>/config), so that
    # readers that do not declare it (`durable list`, the web UI) can say why requests wait.
    5: "CREATE TABLE durable_queue_config (queue text PRIMARY KEY, config bytea NOT NULL)",
}
CLAIM = """
UPDATE durable_journals
   SET owner = $2, fence = fence + 1, lease_until = now() + make_interval(secs => $3),
       due = NULL, unreadable = NULL
 WHERE name = $1 AND (owner IS NULL OR lease_until < now() OR owner = $2)
RETURNING fence, generation,
          (SELECT value FROM durable_meta WHERE key = 'schema_version') AS schema
"""
CANDIDATES = """
UPDATE durable_journals SET owner = $1, lease_until = now() + make_interval(secs => $2)
 WHERE name IN (
       SELECT name FROM durable_journals
        WHERE NOT done AND (owner IS NULL OR lease_until < now())
          AND (due IS NULL OR due <= now()) AND unreadable IS NULL
        ORDER BY due NULLS FIRST, name
        LIMIT $3
          FOR UPDATE SKIP LOCKED)
RETURNING name
"""
RENEW = """
UPDATE durable_journals AS j SET lease_until = now() + make_interval(secs => $4)
  FROM unnest($1::text[], $2::bigint[]) AS h(name, fence)
 WHERE j.name = h.name AND j.fence = h.fence AND j.owner = $3
RETURNING j.name, j.fence
"""
NEXT_DUE = """
SELECT extract(epoch FROM min(due) - now()) FROM durable_journals
 WHERE NOT done AND owner IS NULL AND due > now() AND due < 'infinity'
"""
CHANNEL = "durable_work"
CONFIRM = """
UPDATE durable_journals AS j
   SET updated = now(), changes = j.changes + 1, lease_until = now() + make_interval(secs => $4)
  FROM unnest($1::text[], $2::bigint[]) AS b(name, fence)
 WHERE j.name = b.name AND j.fence = b.fence AND j.owner = $3
RETURNING j.name
"""
INSERT_RECORDS = """
INSERT INTO durable_records (name, generation, seq, payload)
SELECT * FROM unnest($1::text[], $2::integer[], $3::integer[], $4::bytea[])
"""
# A page of a generation's records (stream readers): from a record number on, in order.
PAGE = """
SELECT seq, payload FROM durable_records
 WHERE name = $1 AND generation = $2 AND seq >= $3 ORDER BY seq LIMIT $4
"""
RECORDS = """
SELECT r.seq, r.payload FROM durable_records AS r
  JOIN durable_journals AS j ON r.name = j.name AND r.generation = j.generation
 WHERE j.name = $1 ORDER BY r.seq
"""


def schema_number(found: str | None, shown: str) -> int:
    """durable_meta's schema_version as a number (StoreUnavailable if it is not one)."""
    try:
        return int(found or "")
    except ValueError:
        raise StoreUnavailable(
            path=shown,
            detail=f"durable_meta's schema_version is {found!r}, not a version number",
            hint="Restore the row (the version of the tables: 5 for this durable) from a "
            "backup, or as the tables show",
        ) from None


async def migrate(pool: Any, asyncpg: Any, shown: str) -> None:
    """Create or check the tables, under an advisory lock, in one transaction.

    A migration either happens whole or not at all.
    """
    try:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            version = 0
            if await connection.fetchval("SELECT to_regclass('durable_meta')") is not None:
                found = await connection.fetchval(
                    "SELECT value FROM durable_meta WHERE key = 'schema_version'"
                )
                version = schema_number(found or "0", shown)
            if version > SCHEMA_VERSION:
                raise UnsupportedJournalFormat(path=shown, found=version, supported=SCHEMA_VERSION)
            if version < 1:
                await connection.execute(SCHEMA)
                await connection.execute("INSERT INTO durable_meta VALUES ('schema_version', '1')")
                version = 1
            for step in range(version + 1, SCHEMA_VERSION + 1):
                await connection.execute(UPGRADES[step])
            if version < SCHEMA_VERSION:
                await connection.execute(
                    "UPDATE durable_meta SET value = $1 WHERE key = 'schema_version'",
                    str(SCHEMA_VERSION),
                )
    except asyncpg.ReadOnlySQLTransactionError as error:
        raise StoreUnavailable(
            path=shown,
            detail="the database is read-only (a standby, or default_transaction_read_only), "
            "and its tables need creating or upgrading",
            hint="Point the DSN at the primary",
        ) from error
    except asyncpg.InsufficientPrivilegeError as error:
        raise StoreUnavailable(
            path=shown,
            detail=f"this user may not create or use durable's tables: {error}",
            hint="Grant it CREATE on the database's schema (or create the tables once "
            "as an owner) and SELECT, INSERT, UPDATE, DELETE on durable_* tables",
        ) from error
