"""PostgreSQL as the journal store: the same JournalStore, for runtimes on many hosts.

Knows nothing of workflows or msgpack: payloads are opaque bytes, as in the file store.

Tables (created by a versioned, idempotent migration in one transaction):

    durable_meta      key, value                 ("schema_version" -> "4")
    durable_journals  name, generation, owner, fence, lease_until, done, due, unreadable,
                      created, updated, changes (one more per commit, generation, post)
    durable_records   name, generation, seq, payload      the records of each generation
    durable_inbox     name, seq, payload                  messages posted to a journal
    durable_queue_requests, durable_queue_starts          queues (`_postgres_queues`)
    durable_summaries  a description per journal, for queries (kept by the catalog)

A journal has one writer, which holds a *lease* on its row: `owner` and `lease_until`,
renewed by a heartbeat. Opening claims the row only if it is free or its lease expired,
and bumps `fence`. Every commit checks, in its own transaction, that the fence is still the
one its handle got, so a writer that lost its lease (paused, cut off) can never append
after another process took the journal over: it gets JournalFenced. Records of many
journals share one transaction (group commit): appends made while a commit is in flight go
into the next one. A record is acknowledged only once its transaction committed.

Its parts: a journal open under its lease (`_postgres_journal`), the group commit
(`_postgres_commit`), the work queue serve() uses (which journals want a runner,
LISTEN/NOTIFY: `_postgres_work`), the tables (`_postgres_sql`), a DSN's passwords kept out
of messages (`_postgres_dsn`).

asyncpg is imported when a store first connects, so `import durable` works without it
(it comes with the `postgres` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._errors import (
    JournalError,
    JournalFenced,
    JournalLocked,
    JournalNotFound,
    JournalWriteError,
    StoreUnavailable,
    UnsupportedJournalFormat,
)
from ._directory import validate_name
from ._frames import DEFAULT_MAX_RECORD_SIZE, StoredRecord
from ._interface import DEFAULT_INBOX_MAX_BYTES, DEFAULT_INBOX_MAX_MESSAGES, check_inbox_bounds
from ._pages import PREVIOUS, START, Cursor, Page
from ._postgres_commit import Committer, database_away
from ._postgres_dsn import redacted, without_password
from ._postgres_ends import EndBatcher
from ._postgres_journal import PostgresJournal
from ._postgres_sql import CLAIM, PAGE, RECORDS, RENEW, SCHEMA_VERSION, migrate, schema_number
from ._postgres_work import PostgresWorkQueue

logger = logging.getLogger("durable.storage")

PAGE_RECORDS = 256  # records a page of read_page holds at most


async def _keep_session(connection: Any) -> None:
    """The pool's reset of a connection given back: nothing more than asyncpg's own.

    asyncpg has already rolled back an open transaction and dropped the connection's
    listener callbacks; its default reset would also send `pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL`, a round trip per session for state durable does not leave
    on pooled connections (no session settings, no cursors outside a transaction). The two
    that hold session state, the queues' slot connection (LISTEN, session advisory locks)
    and serve()'s listener, reset it themselves before they give it back.
    """


class PostgresStore:
    """Journals and inboxes in a PostgreSQL database: `Runtime(store=PostgresStore(dsn))`.

    Args:
        dsn: a libpq connection URI, `postgresql://user:password@host:port/database`.
        lease: seconds a runner's claim on a journal lasts without renewal (default 30).
            Another process may take a journal over once its lease expired; the heartbeat
            renews every lease / 3, so only a runner paused or cut off for longer loses it.
        pool_size: at most this many connections (default 10).
        max_record_size: the largest record a journal takes, in bytes (default 64 MiB, as
            a directory's).
        inbox_max_messages: each inbox's bound on the messages its runner has not taken yet
            (default 10,000); a send past it is refused with InboxFull.
        inbox_max_bytes: the same bound in bytes (default 128 MiB).

    Raises (on first use):
        StoreUnavailable: the database cannot be reached, or this user may not create or
            use durable's tables.
        UnsupportedJournalFormat: the tables were made by a newer durable.
    """

    def __init__(
        self,
        dsn: str,
        *,
        lease: float = 30.0,
        pool_size: int = 10,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        inbox_max_messages: int = DEFAULT_INBOX_MAX_MESSAGES,
        inbox_max_bytes: int = DEFAULT_INBOX_MAX_BYTES,
    ) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be positive (seconds), not {lease!r}")
        check_inbox_bounds(inbox_max_messages, inbox_max_bytes)
        self.max_record_size = max_record_size
        self.inbox_max_messages = inbox_max_messages
        self.inbox_max_bytes = inbox_max_bytes
        self.dsn = dsn
        self.lease = float(lease)
        self._pool_size = pool_size
        self._shown = without_password(dsn)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._pool: Any = None
        self._connecting: asyncio.Task[Any] | None = None
        self._open: dict[str, PostgresJournal] = {}
        self._opening: set[str] = set()  # (claims under way: a second open here is refused)
        self._claimed: dict[str, tuple[int, int, bool, float]] = {}  # (see claimed())
        self._heartbeat: asyncio.Task[None] | None = None
        # How late the loop ran its latest ticks (see _tick), until the heartbeat reads it.
        self._loop_lag = 0.0
        self._ticker: asyncio.TimerHandle | None = None
        # Journals whose inbox is known not to be empty: from open(), post() and the runtime's
        # inbox poll (inbox_sizes), so a run's frequent "any mail?" costs no query.
        self._with_mail: set[str] = set()
        self.committer = Committer(self)
        self.ends = EndBatcher(self)  # (done marks and leases given back, batched)
        self.work = PostgresWorkQueue(self)  # (serve()'s: candidates, hints, waiting for work)

    # -- connection and schema ------------------------------------------------------------

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise StoreUnavailable(
                path=self._shown, detail="not connected", hint="use the store in a Runtime"
            )
        return self._pool

    @contextlib.asynccontextmanager
    async def session(self, doing: str) -> AsyncIterator[Any]:
        """A pooled connection for one piece of work (connecting first if need be).

        The one place where the driver's "the database is away" errors (a server restart, a
        terminated session, a refused connection) become durable's StoreUnavailable, with
        `passing` set: callers are told in durable's words, and durable's own loops wait.
        """
        await self.connect()
        try:
            async with self.pool.acquire() as connection:
                yield connection
        except Exception as error:
            if isinstance(error, StoreUnavailable) or not database_away(error):
                raise
            raise StoreUnavailable(
                path=self._shown,
                detail=f"{doing}: the database is away ({type(error).__name__}: "
                f"{redacted(str(error), self.dsn)})",
                hint="Try again once it answers (serve() and resumed workflows wait for it)",
                passing=True,
            ) from error

    async def connect(self) -> None:
        """Connect and bring the tables to this version (done on first use; idempotent).

        A failed try is not kept: the next call tries again (a process started while the
        server restarts connects once it answers, instead of failing for ever).
        """
        if self._pool is not None:
            return
        if self._connecting is None or (
            self._connecting.done()
            and (self._connecting.cancelled() or self._connecting.exception() is not None)
        ):
            self._connecting = asyncio.ensure_future(self._connect())
        await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        try:
            import asyncpg  # noqa: PLC0415 (optional: the postgres extra)
        except ImportError as error:
            raise StoreUnavailable(
                path=self._shown,
                detail="asyncpg is not installed",
                hint="install the postgres extra: pip install 'aiodurable[postgres]'",
            ) from error
        try:
            # A process paused inside a transaction (SIGSTOP, a debugger) would hold its
            # row locks for ever; the server ends such a session after one lease instead.
            idle = str(max(1000, int(self.lease * 1000)))
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self._pool_size,
                server_settings={"idle_in_transaction_session_timeout": idle},
                reset=_keep_session,
            )
        except (OSError, asyncpg.PostgresError, ValueError) as error:
            raise StoreUnavailable(
                path=self._shown,
                detail=f"cannot connect: {redacted(str(error), self.dsn)}",
                hint="Check the DSN (host, port, database, user, password) and that the "
                "server runs and accepts this client",
            ) from error
        try:
            await migrate(pool, asyncpg, self._shown)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._renew_leases(), name="durable lease heartbeat"
        )
        if self._ticker is not None:
            self._ticker.cancel()
        self._tick(time.monotonic())

    def _tick(self, due: float) -> None:
        """Every lease / 6, on the loop: note how late it ran (the heartbeat says so).

        A timer of its own, so a loop blocked while the heartbeat awaits its query (not
        its sleep) is noticed too.
        """
        now = time.monotonic()
        self._loop_lag = max(self._loop_lag, now - due)
        interval = self.lease / 6
        self._ticker = asyncio.get_running_loop().call_later(interval, self._tick, now + interval)

    async def _renew_leases(self) -> None:
        """Every lease / 3: renew this store's leases; journals that lost theirs are fenced.

        A renewal finds a lease that lapsed while nobody claimed it (same fence) still ours.
        A heartbeat late by more than the lease means the event loop was blocked: said so.
        """
        while True:
            asleep = time.monotonic()
            await asyncio.sleep(self.lease / 3)
            late = max(time.monotonic() - asleep - self.lease / 3, self._loop_lag)
            self._loop_lag = 0.0
            if late > self.lease / 2 and self._open:
                logger.warning(
                    "durable: the event loop of this process did not run for %.1f s (the "
                    "PostgreSQL lease is %.1f s), so the leases of its %d open workflows may "
                    "have lapsed: blocking code (time.sleep, CPU work) in an async activity or "
                    "in workflow code holds every workflow of the process; make such "
                    "activities plain functions (they run in threads), or raise the lease",
                    late + self.lease / 3,
                    self.lease,
                    len(self._open),
                )
            held = list(self._open.values())  # (before the query: one opened during it is new)
            if not held:
                continue
            sent = time.monotonic()
            try:
                async with self.session("renewing leases") as connection:
                    rows = await connection.fetch(
                        RENEW,
                        [j.name for j in held],
                        [j.fence for j in held],
                        self.owner,
                        self.lease,
                    )
            except Exception:  # noqa: S112 (the database is away: commits will say so)
                continue
            kept = {(row["name"], row["fence"]) for row in rows}
            for journal in held:
                if (journal.name, journal.fence) in kept:
                    journal.held_until = sent + self.lease
                else:
                    where = self.location(journal.name)
                    journal.lose(JournalFenced(path=where, fence=journal.fence))

    # -- JournalStore -----------------------------------------------------------------------

    def check_name(self, name: str) -> None:
        """The same names as the file store (so journals can move between the two)."""
        validate_name(name, self._shown)

    def location(self, name: str) -> str:
        return f"{self._shown} journal {name!r}"

    def open_journals(self) -> list[PostgresJournal]:
        return list(self._open.values())

    def forget(self, journal: PostgresJournal) -> None:
        if self._open.get(journal.name) is journal:
            del self._open[journal.name]

    def write_error(self, name: str, error: BaseException) -> JournalWriteError:
        return JournalWriteError(
            path=self.location(name), operation="commit", errno=None, detail=repr(error)
        )

    async def open(self, name: str) -> PostgresJournal:
        """Claim journal `name` (creating it) and read its records.

        Raises JournalLocked if another runner's lease on it is live.
        """
        self.check_name(name)
        if name in self._open or name in self._opening:  # (before any await: one claim)
            raise JournalLocked(path=self.location(name))
        claimed = self._claimed.pop(name, None)
        if claimed is not None:
            fence, generation, mail, sent = claimed
            # (the admission's lease surely holds: it was sent at `sent`, renewed from now on)
            if time.monotonic() < sent + self.lease / 3:
                journal = PostgresJournal(self, name, fence, generation, [])
                journal.held_until = sent + self.lease
                if mail:
                    self._with_mail.add(name)
                self._open[name] = journal
                return journal
        self._opening.add(name)
        try:
            return await self._claim(name)
        finally:
            self._opening.discard(name)

    async def _claim(self, name: str) -> PostgresJournal:
        await self.connect()
        claimed_at = time.monotonic()
        try:
            async with (
                self.session(f"claiming journal {name!r}") as connection,
                connection.transaction(),
            ):
                # (a row another session has locked: give up after a lease, as if leased)
                await connection.execute(f"SET LOCAL lock_timeout = {int(self.lease * 1000)}")
                await connection.execute(
                    "INSERT INTO durable_journals (name) VALUES ($1) ON CONFLICT DO NOTHING", name
                )
                claimed = await connection.fetchrow(CLAIM, name, self.owner, self.lease)
                if claimed is None:
                    raise JournalLocked(path=self.location(name))
                if claimed["schema"] != str(SCHEMA_VERSION):  # (rolled back: no claim)
                    # A newer durable migrated the tables since this store connected.
                    found = schema_number(claimed["schema"], self._shown)
                    raise UnsupportedJournalFormat(
                        path=self._shown, found=found, supported=SCHEMA_VERSION
                    )
                rows = await connection.fetch(RECORDS, name)
                if await connection.fetchval("SELECT 1 FROM durable_inbox WHERE name = $1", name):
                    self._with_mail.add(name)
        except Exception as error:
            if type(error).__name__ == "LockNotAvailableError":  # (asyncpg's, imported late)
                raise JournalLocked(path=self.location(name)) from error
            if type(error).__name__ == "ReadOnlySQLTransactionError":
                raise StoreUnavailable(
                    path=self._shown,
                    detail="the database is read-only (a standby, or default_transaction_"
                    f"read_only): journal {name!r} cannot be claimed",
                    hint="Point the DSN at the primary",
                ) from error
            raise
        records = [StoredRecord(row["seq"], bytes(row["payload"])) for row in rows]
        journal = PostgresJournal(self, name, claimed["fence"], claimed["generation"], records)
        journal.held_until = claimed_at + self.lease
        self._open[name] = journal
        return journal

    def claimed(self, name: str, fence: int, generation: int, mail: bool, sent: float) -> None:
        """Note a journal row another statement created and claimed for this store.

        A queue's admission (the row new, so no records). The next open() takes it without a
        round trip, as `_claim` would have left it, while its lease surely holds (a third of
        it from `sent`, the monotonic time the statement was sent); later it claims it as usual.
        """
        self._claimed[name] = (fence, generation, mail, sent)

    def unclaimed(self, name: str) -> None:
        """Forget what `claimed` noted (the workflow was not started here)."""
        self._claimed.pop(name, None)

    def _fenced(self, journal: PostgresJournal) -> JournalFenced:
        """A held journal found taken over (its fence moved on): unusable from now on."""
        failure = JournalFenced(path=self.location(journal.name), fence=journal.fence)
        journal.lose(failure)
        return failure

    async def reread(self, journal: PostgresJournal) -> list[StoredRecord]:
        """A held journal's records, read again (after suspend); JournalFenced if not ours.

        Clears its `due`: the holder runs it now, so serve() need not look at it.
        """
        async with (
            self.session(f"reading journal {journal.name!r}") as connection,
            connection.transaction(),
        ):
            held = await connection.fetchval(
                "UPDATE durable_journals SET due = NULL "
                "WHERE name = $1 AND fence = $2 AND owner = $3 RETURNING 1",
                journal.name,
                journal.fence,
                self.owner,
            )
            if held is None:
                raise self._fenced(journal)
            rows = await connection.fetch(RECORDS, journal.name)
        return [StoredRecord(row["seq"], bytes(row["payload"])) for row in rows]

    async def release(self, journal: PostgresJournal) -> None:
        with contextlib.suppress(Exception):  # (a lease not given back simply expires)
            # (with the other journals given back or ended meanwhile: one statement)
            await self.ends.end(journal.name, journal.fence, finished=False, released=True)

    # -- the work queue serve() uses (PostgresWorkQueue) ----------------------------------

    async def note(
        self,
        journal: PostgresJournal,
        *,
        finished: bool,
        wake_at: float | None,
        inbox_next: int | None = None,
    ) -> None:
        """Record that a journal's workflow ended, or sleeps until `wake_at` (inf: a message)."""
        await self.work.note(journal, finished=finished, wake_at=wake_at, inbox_next=inbox_next)

    async def candidates(self, limit: int) -> list[str]:
        """Claim up to `limit` journals that want a runner now (see PostgresWorkQueue)."""
        return await self.work.candidates(limit)

    async def set_aside(self, name: str, reason: str) -> None:
        """serve() could not read journal `name`: candidates() skips it until it is opened."""
        await self.work.set_aside(name, reason)

    async def wait_for_work(self, longest: float) -> None:
        """Until a journal is posted to or released, a timer is due, or `longest` s."""
        await self.work.wait_for_work(longest)

    async def read(self, name: str) -> list[StoredRecord]:
        """The committed records of the journal's current generation; no lease taken."""
        self.check_name(name)
        async with self.session(f"reading journal {name!r}") as connection:
            rows = await connection.fetch(RECORDS, name)
            if not rows and not await connection.fetchval(
                "SELECT 1 FROM durable_journals WHERE name = $1", name
            ):
                raise JournalNotFound(path=self.location(name))
        return [StoredRecord(row["seq"], bytes(row["payload"])) for row in rows]

    async def read_page(self, name: str, cursor: Cursor, max_bytes: int) -> Page:
        """The committed records of the journal from `cursor` (generation, record number).

        At most PAGE_RECORDS records a page (`max_bytes` is the file store's measure). A
        cursor of the generation before the current one (kept by rotate; PREVIOUS: from its
        start) reads on to its end; then, or once its generation is gone, the page is
        `rotated`.
        """
        self.check_name(name)
        generation, position = cursor
        async with self.session(f"reading journal {name!r}") as connection:
            current = await connection.fetchval(
                "SELECT generation FROM durable_journals WHERE name = $1", name
            )
            if current is None:
                raise JournalNotFound(path=self.location(name))
            if generation == START[0]:
                generation, position = current, 0
            elif generation == PREVIOUS[0]:
                generation, position = current - 1, 0
            elif generation not in (current, current - 1):
                return Page([], cursor, rotated=True)
            rows = await connection.fetch(PAGE, name, generation, position, PAGE_RECORDS + 1)
        if generation != current and not rows:  # (the one before, read to its end)
            return Page([], cursor, rotated=True)
        more = len(rows) > PAGE_RECORDS
        found = [StoredRecord(row["seq"], bytes(row["payload"])) for row in rows[:PAGE_RECORDS]]
        end = found[-1].offset + 1 if found else position
        return Page(found, (generation, end), more=more)

    async def read_many(self, names: list[str]) -> dict[str, list[StoredRecord] | JournalError]:
        """The committed records of several journals, in one query (for listings)."""
        async with self.session("reading journals") as connection:
            rows = await connection.fetch(
                "SELECT r.name, r.seq, r.payload FROM durable_records AS r "
                "JOIN durable_journals AS j ON r.name = j.name AND r.generation = j.generation "
                "WHERE j.name = ANY($1) ORDER BY r.name, r.seq",
                names,
            )
        found: dict[str, list[StoredRecord] | JournalError] = {name: [] for name in names}
        for row in rows:
            records = found[row["name"]]
            assert isinstance(records, list)
            records.append(StoredRecord(row["seq"], bytes(row["payload"])))
        return found

    async def holders(self, names: list[str]) -> dict[str, str]:
        """The owner of each journal whose lease is live now."""
        async with self.session("reading leases") as connection:
            rows = await connection.fetch(
                "SELECT name, owner FROM durable_journals "
                "WHERE name = ANY($1) AND owner IS NOT NULL AND lease_until > now()",
                names,
            )
        return {row["name"]: row["owner"] for row in rows}

    async def rotate(self, journal: Any, first_payload: bytes) -> PostgresJournal:
        """Start the journal's next generation with `first_payload` (one previous kept)."""
        assert isinstance(journal, PostgresJournal)
        await journal.flush()
        async with (
            self.session(f"starting the next generation of journal {journal.name!r}") as connection,
            connection.transaction(),
        ):
            generation = await connection.fetchval(
                "UPDATE durable_journals SET generation = generation + 1, updated = now(), "
                "changes = changes + 1 "
                "WHERE name = $1 AND fence = $2 AND owner = $3 RETURNING generation",
                journal.name,
                journal.fence,
                self.owner,
            )
            if generation is None:
                raise self._fenced(journal)
            await connection.execute(
                "DELETE FROM durable_records WHERE name = $1 AND generation < $2",
                journal.name,
                generation - 1,
            )
            await connection.execute(
                "INSERT INTO durable_records VALUES ($1, $2, 0, $3)",
                journal.name,
                generation,
                first_payload,
            )
        journal.end_generation()
        following = PostgresJournal(
            self, journal.name, journal.fence, generation, [StoredRecord(0, first_payload)]
        )
        following.held_until = journal.held_until
        self._open[journal.name] = following
        return following

    async def post(
        self,
        name: str,
        payload: bytes,
        refuse: Callable[[list[StoredRecord]], Any] | None = None,
    ) -> int:
        """Append a message to the journal's inbox, committed; its position."""
        self.check_name(name)
        async with (
            self.session(f"posting to the inbox of {name!r}") as connection,
            connection.transaction(),
        ):
            # (one poster at a time per inbox: the refusal sees every message before it)
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext('durable inbox ' || $1))", name
            )
            rows = await connection.fetch(
                "SELECT seq, payload FROM durable_inbox WHERE name = $1 ORDER BY seq", name
            )
            if refuse is not None:
                stored = [StoredRecord(row["seq"], bytes(row["payload"])) for row in rows]
                if (refusal := refuse(stored)) is not None:
                    raise refusal
            await connection.execute(
                "INSERT INTO durable_inbox VALUES ($1, $2, $3)", name, len(rows), payload
            )
            await self.work.posted(connection, name)
        self._with_mail.add(name)
        return len(rows)

    async def inbox(self, name: str, first: int = 0) -> list[StoredRecord]:
        async with self.session(f"reading the inbox of {name!r}") as connection:
            rows = await connection.fetch(
                "SELECT seq, payload FROM durable_inbox WHERE name = $1 AND seq >= $2 ORDER BY seq",
                name,
                first,
            )
        return [StoredRecord(row["seq"], bytes(row["payload"])) for row in rows]

    async def inbox_sizes(self, names: list[str]) -> dict[str, int]:
        """The number of messages in each inbox (-1: none yet)."""
        async with self.session("reading inboxes") as connection:
            rows = await connection.fetch(
                "SELECT name, count(*) AS n FROM durable_inbox WHERE name = ANY($1) GROUP BY name",
                names,
            )
        counts = {row["name"]: row["n"] for row in rows}
        self._with_mail.update(counts)
        return {name: counts.get(name, -1) for name in names}

    async def inbox_news(self, cursor: int | None) -> tuple[list[str] | None, int]:
        """No news kept: the poll counts every inbox in one query (inbox_sizes)."""
        return None, 0

    def may_have_mail(self, name: str) -> bool:
        """Whether the inbox is known not to be empty (from open, post or the poll).

        A message posted from another process is seen by the runtime's inbox poll
        (`event_poll_interval`), which then tells the run, as with the file store.
        """
        return name in self._with_mail

    def observe_syncs(self, observer: Callable[[float, int], None]) -> None:
        """Tell `observer` of each commit from now on: seconds, appends it made durable."""
        self.committer.on_commit = observer

    async def close(self) -> None:
        """Stop the heartbeat and close the connections (open journals first)."""
        await self.committer.stop()
        await self.ends.close()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self.work.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            self._connecting = None

    async def __aenter__(self) -> PostgresStore:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def list(self) -> list[str]:
        """The names of all journals, sorted (last: its name hides the builtin below)."""
        async with self.session("listing journals") as connection:
            rows = await connection.fetch("SELECT name FROM durable_journals ORDER BY name")
        return [row["name"] for row in rows]
