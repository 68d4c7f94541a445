"""The storage interface the engine uses: a store of named journals.

The file store (JournalDirectory) implements it; a PostgreSQL store can too, without the
engine noticing. Payloads are opaque, non-empty bytes.
"""

from __future__ import annotations

from typing import Protocol

from ._frames import StoredRecord


class Journal(Protocol):
    """One journal open for appending, by its only writer."""

    @property
    def records(self) -> list[StoredRecord]:
        """What was durable when the journal was opened, in append order."""
        ...

    @property
    def closed(self) -> bool: ...

    def write(self, payload: bytes) -> None:
        """Queue a record; it is durable once a later append() or flush() returns."""

    async def append(self, payload: bytes) -> None:
        """Append a record; return once it and every record before it is durable."""

    async def flush(self) -> None:
        """Make every queued record durable."""

    async def close(self) -> None:
        """Make queued records durable and give up the writer's lock."""


class JournalStore(Protocol):
    """Named journals: open one to write (exclusively), read any, list them."""

    async def open(self, name: str) -> Journal:
        """Open (creating if needed) and lock a journal; JournalLocked if someone has it."""
        ...

    async def read(self, name: str) -> list[StoredRecord]:
        """The durable records of a journal, without locking it or changing it."""
        ...

    async def list(self) -> list[str]:
        """The names of all journals, sorted."""
        ...

    async def close(self) -> None:
        """Release shared resources; open journals must be closed first."""
