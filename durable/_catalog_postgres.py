"""A workflow query on PostgreSQL: summaries kept in `durable_summaries`, filtered by indexes.

Storage knows nothing of records, so the database cannot filter journals by what they say.
Each journal row counts its changes instead (`durable_journals.changes`: every committed
batch of records, every new generation, every inbox post adds one), and a query first
brings the summaries of the journals whose count moved up to date (decoding only those,
as the file store's catalog does), then asks for one page of `durable_summaries` through
its indexes (state, workflow, start order, id prefix, parent, error types, times). The
count is read before the records, so a summary is never newer than the count it keeps: a
change in between only makes the next query read that journal again.
"""

from __future__ import annotations

from typing import Any

from ._catalog_index import from_row, to_row
from ._encoding import decode, encode
from ._engine._describe import WorkflowDescription, describe
from ._engine._records import read_journal
from ._errors import DurableError, JournalError
from ._query import WorkflowFilter, WorkflowPage, decode_cursor, encode_cursor, error_types
from ._storage._postgres import PostgresStore

REFRESH_BATCH = 1_000  # journals decoded per round trip
UNREADABLE = "unreadable"  # the state column of a journal that cannot be read (reason kept)

_STALE = """
SELECT j.name, j.changes FROM durable_journals AS j
  LEFT JOIN durable_summaries AS s ON s.name = j.name
 WHERE s.changes IS DISTINCT FROM j.changes AND ($1::text IS NULL OR j.name LIKE $1 || '%')
"""
_UNREADABLE = """
SELECT name, description FROM durable_summaries
 WHERE state = $1 AND ($2::text IS NULL OR name LIKE $2 || '%')
 ORDER BY name LIMIT 500
"""
_UPSERT = """
INSERT INTO durable_summaries AS s
       (name, changes, workflow, state, started, updated, ended, error_types, parent,
        description)
SELECT u.name, u.changes, u.workflow, u.state, u.started, u.updated, u.ended,
       u.errors::text[], u.parent, u.description
  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::float8[],
                     $6::float8[], $7::float8[], $8::text[], $9::text[], $10::bytea[])
    AS u(name, changes, workflow, state, started, updated, ended, errors, parent, description)
 WHERE EXISTS (SELECT 1 FROM durable_journals AS j WHERE j.name = u.name)
ON CONFLICT (name) DO UPDATE SET
       changes = EXCLUDED.changes, workflow = EXCLUDED.workflow, state = EXCLUDED.state,
       started = EXCLUDED.started, updated = EXCLUDED.updated, ended = EXCLUDED.ended,
       error_types = EXCLUDED.error_types, parent = EXCLUDED.parent,
       description = EXCLUDED.description
 WHERE s.changes <= EXCLUDED.changes
"""


async def query_postgres(
    store: PostgresStore, where: WorkflowFilter, limit: int, cursor: str | None
) -> WorkflowPage:
    """One page of the workflows `where` matches (the arguments are checked already)."""
    await refresh(store, where.id_prefix)
    conditions, arguments = _conditions(where)
    after = decode_cursor(cursor)
    counted = " AND ".join(conditions)
    if after is not None:
        arguments_page = [*arguments, -after[0], after[1]]
        n = len(arguments)
        conditions = [
            *conditions,
            f"(s.started < ${n + 1} OR (s.started = ${n + 1} AND s.name > ${n + 2}))",
        ]
    else:
        arguments_page = list(arguments)
    paged = " AND ".join(conditions)
    async with store.session("querying workflows") as connection:
        rows = await connection.fetch(
            f"SELECT s.description FROM durable_summaries AS s WHERE {paged} "  # noqa: S608 (conditions are ours; values are parameters)
            f"ORDER BY s.started DESC, s.name LIMIT {limit + 1}",
            *arguments_page,
        )
        total = await connection.fetchval(
            f"SELECT count(*) FROM durable_summaries AS s WHERE {counted}",  # noqa: S608
            *arguments,
        )
        unreadable: dict[str, str] = {}
        if cursor is None:
            for row in await connection.fetch(_UNREADABLE, UNREADABLE, _like(where.id_prefix)):
                unreadable[row["name"]] = bytes(row["description"]).decode(errors="replace")
    found = [_description(bytes(row["description"])) for row in rows]
    more = len(found) > limit
    page = found[:limit]
    return WorkflowPage(
        workflows=page,
        next_cursor=encode_cursor(page[-1]) if more else None,
        total=int(total),
        unreadable=unreadable,
    )


def _description(data: bytes) -> WorkflowDescription:
    entry = from_row(decode(data, path="durable_summaries", offset=0))
    if entry is None:  # (written by this module: a bad one is a bug or a hand-edited row)
        raise DurableError("a row of durable_summaries is not a workflow summary")
    return entry[2]


def _conditions(where: WorkflowFilter) -> tuple[list[str], list[Any]]:
    """The SQL conditions on durable_summaries `s` for the filter, and their parameters."""
    conditions = ["s.state <> 'unreadable'"]
    arguments: list[Any] = []

    def add(sql: str, value: Any) -> None:
        arguments.append(value)
        conditions.append(sql.replace("$?", f"${len(arguments)}"))

    if where.states:
        add("s.state = ANY($?::text[])", list(where.states))
    if where.names:
        add("s.workflow = ANY($?::text[])", list(where.names))
    if where.ids:
        add("s.name = ANY($?::text[])", sorted(where.ids))
    if where.id_prefix is not None:
        add("s.name LIKE $? || '%'", _like(where.id_prefix))
    if where.parent is not None:
        add("s.parent = $?", where.parent)
    if where.error_type is not None:
        add("s.error_types @> ARRAY[$?::text]", where.error_type)
    if where.queue is not None:
        add(
            "EXISTS (SELECT 1 FROM durable_queue_requests AS q "
            "WHERE q.id = s.name AND q.queue = $?)",
            where.queue,
        )
    for name, bound in where.bounds.items():
        column, side = name.rsplit("_", 1)
        add(f"s.{column} {'>=' if side == 'after' else '<'} $?", bound)
    return conditions, arguments


async def refresh(store: PostgresStore, prefix: str | None) -> int:
    """Bring the summaries of the journals that changed up to date; how many were read."""
    async with store.session("finding changed journals") as connection:
        found = await connection.fetch(_STALE, _like(prefix))
    stale = [(row["name"], row["changes"]) for row in found]
    for first in range(0, len(stale), REFRESH_BATCH):
        await _refresh_batch(store, stale[first : first + REFRESH_BATCH])
    return len(stale)


async def _refresh_batch(store: PostgresStore, batch: list[tuple[str, int]]) -> None:
    names = [name for name, _ in batch]
    stored = await store.read_many(names)
    sizes = await store.inbox_sizes(names)
    columns: list[list[Any]] = [[] for _ in range(10)]
    for name, changes in batch:
        records = stored.get(name)
        if not records:  # (created, its start record not committed yet: next time)
            continue
        row: list[Any]
        try:
            if isinstance(records, JournalError):
                raise records
            journal = read_journal(records, path=store.location(name))
            inbox = await store.inbox(name) if sizes.get(name, -1) > 0 else []
            described = describe(name, journal, inbox_size=len(inbox))
            row = [
                described.workflow_name,
                str(described.state),
                described.started.timestamp(),
                described.updated.timestamp(),
                None if described.ended is None else described.ended.timestamp(),
                sorted(error_types(described.error)),
                described.parent,
                encode(to_row((0,) * 8, described), context="a workflow's summary"),
            ]
        except DurableError as error:
            row = ["", UNREADABLE, 0.0, 0.0, None, [], None, str(error).encode()]
        for column, value in zip(columns, [name, changes, *row], strict=True):
            column.append(value)
    if columns[0]:
        columns[7] = [_array_text(errors) for errors in columns[7]]
        async with store.session("keeping workflow summaries") as connection:
            await connection.execute(_UPSERT, *columns)


def _like(prefix: str | None) -> str | None:
    """A prefix for LIKE, its wildcards (and the escape character) escaped."""
    if prefix is None:
        return None
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _array_text(errors: list[str]) -> str:
    """A text[] as one PostgreSQL array literal (unnest of a 2-D array cannot be ragged)."""
    quoted = ('"' + e.replace("\\", "\\\\").replace('"', '\\"') + '"' for e in errors)
    return "{" + ",".join(quoted) + "}"
