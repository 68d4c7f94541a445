"""PostgresStore's group commit: one transaction per batch, for every journal of a store.

Each batch confirms, in its own transaction, that every journal in it still holds its
lease (fence and owner), and inserts the records of those that do; the others are fenced.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from .._errors import JournalError, JournalFenced
from ._postgres_sql import CONFIRM, INSERT_RECORDS

if TYPE_CHECKING:
    from ._postgres import PostgresJournal, PostgresStore


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
        while self._waiters or any(j.queued for j in self._store.open_journals()):
            waiters, self._waiters = self._waiters, []
            # A waiter's journal is in the batch even if the store no longer lists it (closed
            # or replaced meanwhile): its records are committed or it is fenced, never
            # reported committed without being so.
            journals = [*self._store.open_journals(), *(j for j, _ in waiters)]
            batch = {j: j.queued for j in journals if j.queued and j.failure is None}
            for journal in batch:
                journal.queued = []
            try:
                await self._commit(batch)
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
        if not batch:
            return
        if self._connection is None:  # (kept between batches: a pool's release costs a
            self._connection = await self._store.pool.acquire()  # reset query per commit)
        connection = self._connection
        try:
            await self._commit_on(connection, batch)
        except BaseException:
            self._connection = None  # (its state is unknown: give it back to be reset)
            await self._store.pool.release(connection)
            raise
        self.commits += 1

    async def _commit_on(
        self, connection: Any, batch: dict[PostgresJournal, list[tuple[int, bytes]]]
    ) -> None:
        async with connection.transaction():
            journals = list(batch)
            confirmed = {
                row["name"]
                for row in await connection.fetch(
                    CONFIRM,
                    [j.name for j in journals],
                    [j.fence for j in journals],
                    self._store.owner,
                )
            }
            names, generations, seqs, payloads = [], [], [], []
            for journal, records in batch.items():
                if journal.name not in confirmed:
                    where = self._store.location(journal.name)
                    journal.lose(JournalFenced(path=where, fence=journal.fence))
                    continue
                for seq, payload in records:
                    names.append(journal.name)
                    generations.append(journal.generation)
                    seqs.append(seq)
                    payloads.append(payload)
            if names:
                await connection.execute(INSERT_RECORDS, names, generations, seqs, payloads)

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await self._store.pool.release(connection)
