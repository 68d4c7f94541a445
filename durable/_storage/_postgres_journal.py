"""PostgresJournal: one journal open for appending on PostgreSQL, under its store's lease.

Records are queued and committed by the store's group commit; every commit checks the
journal's fence, so a handle whose lease lapsed (a pause, a lost connection) can never
append after another runner took the journal over: it is lost (JournalFenced) instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from .._errors import JournalClosed, JournalError, JournalFenced, RecordTooLarge
from ._frames import StoredRecord


class Commits(Protocol):
    """The store's group commit, as a journal uses it."""

    def wake(self) -> None: ...

    async def wait_for(self, journal: PostgresJournal) -> None: ...


class LeaseStore(Protocol):
    """What a journal needs of its PostgresStore."""

    @property
    def lease(self) -> float: ...

    @property
    def max_record_size(self) -> int: ...

    @property
    def committer(self) -> Commits: ...

    def location(self, name: str) -> str: ...

    def forget(self, journal: PostgresJournal) -> None: ...

    async def release(self, journal: PostgresJournal) -> None: ...

    async def reread(self, journal: PostgresJournal) -> list[StoredRecord]: ...

    async def note(
        self,
        journal: PostgresJournal,
        *,
        finished: bool,
        wake_at: float | None,
        inbox_next: int | None = None,
    ) -> None: ...


class PostgresJournal:
    """One journal open for appending, under this store's lease (see the module)."""

    def __init__(
        self,
        store: LeaseStore,
        name: str,
        fence: int,
        generation: int,
        records: list[StoredRecord],
    ) -> None:
        self._store = store
        self.name = name
        self.fence = fence
        self.generation = generation
        self._records = records
        self._next_seq = len(records)
        self.queued: list[tuple[int, bytes]] = []  # (seq, payload) not yet committed
        self.failure: JournalError | None = None
        self._closed = False
        # Until when (monotonic) the lease surely holds: from before the claim or renewal
        # was sent, so this side always thinks it lapsed no later than the database does.
        self.held_until = time.monotonic() + store.lease

    @property
    def records(self) -> list[StoredRecord]:
        """What was committed when the journal was opened, in append order."""
        return self._records

    @property
    def closed(self) -> bool:
        return self._closed

    def check_held(self) -> None:
        """Raise JournalFenced if the lease may have lapsed (a pause longer than it)."""
        self._check_usable()
        if time.monotonic() >= self.held_until:
            silent_for = time.monotonic() - (self.held_until - self._store.lease)
            where = self._store.location(self.name)
            self.lose(
                JournalFenced(path=where, fence=self.fence, lapsed=True, silent_for=silent_for)
            )
            self._check_usable()

    def write(self, payload: bytes) -> None:
        """Queue a record for the next commit (durable once a later append/flush returns)."""
        self._check_usable()
        if not payload:
            raise ValueError("a journal record must not be empty")
        if len(payload) > self._store.max_record_size:
            location = self._store.location(self.name)
            raise RecordTooLarge(
                path=location, size=len(payload), limit=self._store.max_record_size
            )
        self.queued.append((self._next_seq, bytes(payload)))
        self._next_seq += 1
        self._store.committer.wake()

    async def append(self, payload: bytes) -> None:
        """Append a record; return once it (and all before it) is committed."""
        self.write(payload)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every record queued so far is committed."""
        self._check_usable()
        await self._store.committer.wait_for(self)

    async def close(self) -> None:
        """Commit what is queued, then give the lease back (another runner may open it)."""
        if self._closed:
            return
        try:
            if self.failure is None:
                await self.flush()
        finally:
            self._closed = True
            self._store.forget(self)
            if self.failure is None:
                # To the end even if the closing task is cancelled meanwhile: a lease left
                # behind would lock the workflow out of every runner until it expired.
                release = asyncio.ensure_future(self._store.release(self))
                try:
                    await asyncio.shield(release)
                except asyncio.CancelledError:
                    await asyncio.wait([release])
                    raise

    async def suspend(self) -> None:
        """Commit what is queued and drop the records from memory; keep the lease.

        The heartbeat goes on renewing it, so no other runtime claims the unloaded sleeper
        while this one lives; if this one dies, its lease lapses and serve() elsewhere
        takes the workflow when it is due.
        """
        await self.flush()
        self._records = []

    async def resume(self) -> None:
        """Read the records back under the lease (JournalFenced if it lapsed meanwhile)."""
        self.check_held()
        self._records = await self._store.reread(self)
        self.check_held()  # (the lease may have lapsed during the read)

    async def note(
        self, *, finished: bool = False, wake_at: float | None = None, inbox_next: int | None = None
    ) -> None:
        """Tell the other processes: the workflow ended, or when it wants a runner again."""
        if self.failure is not None or self._closed:
            return
        await self._store.note(self, finished=finished, wake_at=wake_at, inbox_next=inbox_next)

    def lose(self, failure: JournalError) -> None:
        """The handle is unusable from now on (fenced, or a commit failed).

        What it queued can never be committed: dropped, so no commit waits on it.
        """
        if self.failure is None:
            self.failure = failure
        self.queued = []

    def end_generation(self) -> None:
        """A rotation replaced this handle: it closes without giving the lease back."""
        self._closed = True
        self._store.forget(self)

    def _check_usable(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self._closed:
            raise JournalClosed(path=self._store.location(self.name))
