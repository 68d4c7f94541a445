"""PostgresStore's work queue: which journals want a runner, for Runtime.serve() on any host.

Each journal's row carries the queue's hints beside its lease: `done` (the workflow ended),
`due` (when it wants a runner again: NULL now, a sleeper's wake-up time, or infinity while
it waits for a message) and `unreadable` (serve() could not read it: set aside). Runners
write them (`note`); `candidates` claims the rows that want a runner now, `FOR UPDATE SKIP
LOCKED`, so processes looking at once get different journals. A post or a lease given back
is announced on the `durable_work` channel (NOTIFY), which `wait_for_work` listens to on a
connection of its own.

The hints only steer serve(): a stale one costs a wasted claim or a later look, never a
record, since opening a journal takes its lease (and its fence) whatever they say.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ._postgres_commit import connection_gone
from ._postgres_sql import CANDIDATES, CHANNEL, NEXT_DUE

if TYPE_CHECKING:
    from ._postgres import PostgresStore
    from ._postgres_journal import PostgresJournal


class PostgresWorkQueue:
    """The store's part that serve() uses: candidates, hints, set-asides, waiting for work."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._listener: Any = None  # the connection that LISTENs, once serve() waits
        self._work = asyncio.Event()

    async def candidates(self, limit: int) -> list[str]:
        """Claim up to `limit` journals that want a runner now (unfinished, due, unleased).

        FOR UPDATE SKIP LOCKED: processes claiming at once get different journals. A claim
        is a lease not yet opened: open() takes it up; if nothing does, it expires.
        """
        store = self._store
        async with store.session("looking for work") as connection:
            rows = await connection.fetch(CANDIDATES, store.owner, store.lease, limit)
        return sorted(row["name"] for row in rows)

    async def set_aside(self, name: str, reason: str) -> None:
        """serve() could not read journal `name`: candidates() skips it from now on.

        Until a runtime opens it on purpose (run, start, recover: a person acted), which
        clears the mark. Its lease, if this store holds it, is given back.
        """
        async with self._store.session(f"setting journal {name!r} aside") as connection:
            await connection.execute(
                "UPDATE durable_journals SET unreadable = $2, owner = NULL, lease_until = NULL "
                "WHERE name = $1 AND (owner IS NULL OR owner = $3 OR lease_until < now())",
                name,
                reason[:2000],
                self._store.owner,
            )

    async def note(
        self,
        journal: PostgresJournal,
        *,
        finished: bool,
        wake_at: float | None,
        inbox_next: int | None = None,
    ) -> None:
        """Record that a journal's workflow ended, or sleeps until `wake_at` (inf: a message).

        A sleeper's due time never hides a message: under the inbox's lock (the one post()
        takes), a message at or past `inbox_next` (the first its runner has not taken) keeps
        the workflow due now, so a post that raced the runner's suspension is not left
        behind a far (or infinite) due time should the runner die before taking it.
        """
        if finished:  # (with the other journals ended meanwhile: one statement)
            with contextlib.suppress(Exception):
                await self._store.ends.end(
                    journal.name, journal.fence, finished=True, released=False
                )
            return
        with contextlib.suppress(Exception):  # (a hint: a stale one costs a wasted claim)
            async with self._store.session(
                f"noting how journal {journal.name!r} stands"
            ) as connection:
                if wake_at is None:  # (resumed by an operator: it wants a runner again)
                    await connection.execute(
                        "UPDATE durable_journals SET done = false, due = NULL "
                        "WHERE name = $1 AND fence = $2",
                        journal.name,
                        journal.fence,
                    )
                elif wake_at is not None:
                    async with connection.transaction():
                        await connection.execute(
                            "SELECT pg_advisory_xact_lock(hashtext('durable inbox ' || $1))",
                            journal.name,
                        )
                        pending = await connection.fetchval(
                            "SELECT EXISTS (SELECT 1 FROM durable_inbox "
                            "WHERE name = $1 AND seq >= $2)",
                            journal.name,
                            inbox_next or 0,
                        )
                        await connection.execute(
                            "UPDATE durable_journals SET due = CASE WHEN $4 THEN NULL "
                            "WHEN $3 = 'Infinity'::float8 THEN 'infinity'::timestamptz "
                            "ELSE to_timestamp($3) END WHERE name = $1 AND fence = $2",
                            journal.name,
                            journal.fence,
                            wake_at,
                            pending and inbox_next is not None,
                        )

    async def posted(self, connection: Any, name: str) -> None:
        """In a post's transaction: the workflow wants a runner now; tell the waiters.

        A workflow nobody runs now is then taken by any serving process.
        """
        await connection.execute(
            "UPDATE durable_journals SET changes = changes + 1, "
            "due = CASE WHEN done THEN due ELSE NULL END WHERE name = $1",
            name,
        )
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, name)

    async def wait_for_work(self, longest: float) -> None:
        """Until a journal is posted to or released (NOTIFY), a timer is due, or `longest` s."""
        store = self._store
        await store.connect()
        if self._listener is not None and connection_gone(self._listener):
            # (its server connection ended: a restart, a terminated backend; listen anew)
            with contextlib.suppress(Exception):
                await store.pool.release(self._listener)
            self._listener = None
        if self._listener is None:
            listener = await store.pool.acquire()
            try:
                await listener.add_listener(CHANNEL, self._on_notify)
            except BaseException:
                with contextlib.suppress(Exception):
                    await store.pool.release(listener)
                raise
            self._listener = listener
            self._work.set()  # (what was notified while nobody listened: look now)
        async with store.session("waiting for work") as connection:
            next_due = await connection.fetchval(NEXT_DUE)
        if next_due is not None:
            longest = min(longest, max(0.0, float(next_due)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(longest):
                await self._work.wait()
        self._work.clear()

    def _on_notify(self, *args: object) -> None:
        self._work.set()

    async def close(self) -> None:
        """Stop listening and give the listener's connection back (before the pool closes)."""
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.remove_listener(CHANNEL, self._on_notify)
                await self._listener.reset()  # (the pool's does not UNLISTEN)
                await self._store.pool.release(self._listener)
            self._listener = None
