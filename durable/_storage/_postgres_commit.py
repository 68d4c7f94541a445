"""PostgresStore's group commit: one transaction per batch, for every journal of a store.

Each batch confirms, in its own transaction, that every journal in it still holds its
lease (fence and owner), and inserts the records of those that do; the others are fenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import JournalError, JournalFenced, StoreUnavailable, store_away
from ._postgres_sql import CONFIRM, INSERT_RECORDS

if TYPE_CHECKING:
    from ._postgres import PostgresStore
    from ._postgres_journal import PostgresJournal


# asyncpg's errors for a server that is away or refusing connections for now.
_AWAY = {
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "ObjectNotInPrerequisiteStateError",
    "TooManyConnectionsError",
    "AdminShutdownError",
    "ConnectionFailureError",
}


class LeaseLapsed(Exception):
    """A commit could not reach the database before the batch's leases may have lapsed.

    Its journals are fenced as lapsed, so their runs follow (and claim again when free)
    rather than fail: a paused process, or a database away for longer than the lease.
    """


class CommitInDoubt(Exception):
    """A commit retried after the database went away found its records already there.

    The try before reached the server and committed; only its answer was lost with the
    connection. Its journals are failed as "the database is away", so their runs resume
    from what was committed (it included these records), as after any outage.
    """


def database_away(error: BaseException) -> bool:
    """Whether the driver's `error` says the database is away for now (not that the work is wrong).

    A StoreUnavailable that says so counts too.
    """
    if isinstance(error, ConnectionError | TimeoutError) or type(error).__name__ in _AWAY:
        return True
    return store_away(error)


def connection_gone(connection: Any) -> bool:
    """Whether a pooled connection can no longer be used.

    Closed by the server, or taken back by the pool after its session ended.
    """
    try:
        return bool(connection.is_closed())
    except Exception:  # (asyncpg: "connection has been released back to the pool")
        return True


class Committer:
    """One commit at a time, for every journal of the store.

    A batch is whatever was queued when the previous commit ended.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._waiters: list[tuple[PostgresJournal, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None  # the committer's own, while the store is open
        self.commits = 0  # transactions committed (for tests and benchmarks)
        self.on_commit: Callable[[float, int], None] | None = None  # (observe_syncs)

    def wake(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="durable commit")

    async def wait_for(self, journal: PostgresJournal) -> None:
        """Until what `journal` queued so far is committed.

        A waiter is settled after the batch that follows its registration, so records in
        a batch already in flight are covered too.
        """
        if not journal.queued and not self._busy:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((journal, waiter))
        self.wake()
        await waiter

    @property
    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        await asyncio.sleep(0)  # (let every workflow ready now write its records first)
        # (only what can be committed keeps it going: a lost journal's records never can)
        while self._waiters or any(
            j.queued and j.failure is None for j in self._store.open_journals()
        ):
            waiters, self._waiters = self._waiters, []
            # A waiter's journal is in the batch even if the store no longer lists it (closed
            # or replaced meanwhile): its records are committed or it is fenced, never
            # reported committed without being so.
            journals = [*self._store.open_journals(), *(j for j, _ in waiters)]
            batch = {j: j.queued for j in journals if j.queued and j.failure is None}
            for journal in batch:
                journal.queued = []
            try:
                started = time.perf_counter()
                await self._commit(batch)
                if self.on_commit is not None:
                    appends = sum(len(queued) for queued in batch.values())
                    self.on_commit(time.perf_counter() - started, appends)
            except CommitInDoubt as doubt:
                for journal in batch:
                    journal.lose(
                        StoreUnavailable(
                            path=self._store.location(journal.name),
                            detail="the database is away: a commit whose answer was lost with "
                            f"the connection was tried again and found its records there ({doubt})",
                            hint="The workflow resumes from its journal, which has them",
                            passing=True,
                        )
                    )
            except LeaseLapsed:  # (the database stayed away past the leases, or a pause)
                now = time.monotonic()
                for journal in batch:
                    silent_for = now - (journal.held_until - self._store.lease)
                    where = self._store.location(journal.name)
                    fenced = JournalFenced(
                        path=where, fence=journal.fence, lapsed=True, silent_for=silent_for
                    )
                    journal.lose(fenced)
            except JournalError as error:
                for journal in batch:
                    journal.lose(error)
            except Exception as error:
                for journal in batch:
                    journal.lose(self._store.write_error(journal.name, error))
            for journal, waiter in waiters:
                if waiter.done():
                    continue
                if journal.failure is not None:
                    waiter.set_exception(journal.failure)
                else:
                    waiter.set_result(None)

    async def _commit(self, batch: dict[PostgresJournal, list[tuple[int, bytes]]]) -> None:
        """Commit the batch, riding out a database that is briefly away.

        A server restart or a terminated session leaves the pool's connections dead until
        used, and a database may refuse connections for a while: such a failure is retried
        on a new connection, backing off, while every journal of the batch may still hold
        its lease (its fence is checked in the commit itself, so a retry can never write
        for a runner that lost its journal). Had a failed commit reached the server, its
        retry fails on the records' keys: CommitInDoubt, and the journals are failed as the
        database away (their runs resume from what was committed). Other errors fail the
        batch's journals at once.
        """
        if not batch:
            return
        delay = 0.05
        retried = False
        while True:
            connection = None
            try:
                if self._connection is not None and connection_gone(self._connection):
                    with contextlib.suppress(Exception):
                        await self._store.pool.release(self._connection)
                    self._connection = None
                if self._connection is None:  # (kept between batches: a pool's release
                    self._connection = await self._store.pool.acquire()  # costs a reset)
                connection = self._connection
                sent = time.monotonic()  # (before the transaction: its now() is later)
                renewed = await self._commit_on(connection, batch)
            except Exception as error:
                away = database_away(error) or (
                    connection is not None and connection_gone(connection)
                )
                self._connection = None  # (its state is unknown: give it back to be reset)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await self._store.pool.release(connection)
                held_until = min(journal.held_until for journal in batch)
                if retried and type(error).__name__ == "UniqueViolationError":
                    raise CommitInDoubt(f"{type(error).__name__}: {error}") from error
                if not away:
                    raise
                if time.monotonic() + delay >= held_until:
                    raise LeaseLapsed from error
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                retried = True
                continue
            self.commits += 1
            for journal in renewed:  # (a commit renews its journals' leases, as the heartbeat)
                journal.held_until = max(journal.held_until, sent + self._store.lease)
            return

    async def _commit_on(
        self, connection: Any, batch: dict[PostgresJournal, list[tuple[int, bytes]]]
    ) -> list[PostgresJournal]:
        """Commit what the batch's journals that still hold their leases queued; those."""
        async with connection.transaction():
            journals = list(batch)
            confirmed = {
                row["name"]
                for row in await connection.fetch(
                    CONFIRM,
                    [j.name for j in journals],
                    [j.fence for j in journals],
                    self._store.owner,
                    self._store.lease,
                )
            }
            names, generations, seqs, payloads = [], [], [], []
            held = []
            for journal, records in batch.items():
                if journal.name not in confirmed:
                    where = self._store.location(journal.name)
                    journal.lose(JournalFenced(path=where, fence=journal.fence))
                    continue
                held.append(journal)
                for seq, payload in records:
                    names.append(journal.name)
                    generations.append(journal.generation)
                    seqs.append(seq)
                    payloads.append(payload)
            if names:
                await connection.execute(INSERT_RECORDS, names, generations, seqs, payloads)
        return held

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await self._store.pool.release(connection)
