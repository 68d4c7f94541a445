"""The storage interface the engine uses: a store of named journals.

The file store (JournalDirectory) implements it; a PostgreSQL store can too, without the
engine noticing. Payloads are opaque, non-empty bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._errors import JournalError
from ._frames import StoredRecord
from ._pages import Cursor, Page

# Each inbox's bound: messages its runner has not taken yet (pending), and their bytes.
# Only pending messages count: an inbox is append-only and never rewritten, so a bound on
# its whole size would stop a long-lived workflow for good. A send past the bound is
# refused (InboxFull) with nothing written. Stores take other values as inbox_max_messages
# and inbox_max_bytes (so does Runtime).
DEFAULT_INBOX_MAX_MESSAGES = 10_000
DEFAULT_INBOX_MAX_BYTES = 128 * 1024 * 1024


def check_inbox_bounds(max_messages: int, max_bytes: int) -> None:
    """Refuse inbox bounds that are not positive integers (ValueError)."""
    for what, value in (("inbox_max_messages", max_messages), ("inbox_max_bytes", max_bytes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{what} must be a positive integer, not {value!r}")


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

    @property
    def held_until(self) -> float | None:
        """Until when (time.monotonic()) this handle surely holds its journal, if on a lease.

        None: for as long as it is open (a lock). An activity attempt still running then is
        cancelled (another process may take the workflow over once the lease lapsed).
        """
        ...

    def check_held(self) -> None:
        """Raise unless this handle may still act for its journal (before a side effect).

        A store with leases raises JournalFenced once the lease may have lapsed, so a
        runner that was paused does not start an activity another runner now owns.
        """

    async def append(self, payload: bytes) -> None:
        """Append a record; return once it and every record before it is durable."""

    async def flush(self) -> None:
        """Make every queued record durable."""

    async def close(self) -> None:
        """Make queued records durable and give up the writer's lock."""

    async def suspend(self) -> None:
        """Make queued records durable and drop `records` from memory, keeping the lock.

        A runner unloading a sleeper keeps its journal this way, so no other runtime can
        take the workflow meanwhile; `resume()` reads the records back.
        """

    async def resume(self) -> None:
        """Read the records back after `suspend()`, still this writer's.

        A store with leases raises JournalFenced if the lease lapsed meanwhile.
        """

    async def note(
        self, *, finished: bool = False, wake_at: float | None = None, inbox_next: int | None = None
    ) -> None:
        """A hint for stores that share work between processes (Runtime.serve).

        The workflow has ended (`finished`), or it sleeps until `wake_at` (epoch seconds;
        inf: until a message arrives), having taken its inbox's messages before position
        `inbox_next` (one at or past it keeps it due now). Neither: it wants a runner again
        now (an operator resumed it). The file store ignores it.
        """


class JournalStore(Protocol):
    """Named journals: open one to write (exclusively), read any, list them.

    And each journal's inbox, which anyone may post to.

    Attributes:
        max_record_size: the largest record a journal takes, in bytes; a message sent to a
            workflow must leave room for the record that wraps it.
        inbox_max_messages, inbox_max_bytes: each inbox's bound on messages not yet taken
            by its runner (see DEFAULT_INBOX_MAX_MESSAGES); senders check it as they post.
    """

    max_record_size: int
    inbox_max_messages: int
    inbox_max_bytes: int

    def check_name(self, name: str) -> None:
        """Refuse a name the store cannot hold (InvalidJournalName)."""

    def location(self, name: str) -> str:
        """Where journal `name` lives, for messages (a path, a database and name)."""
        ...

    async def open(self, name: str) -> Journal:
        """Open (creating if needed) and lock a journal; JournalLocked if someone has it."""
        ...

    async def read(self, name: str) -> list[StoredRecord]:
        """The durable records of a journal, without locking it or changing it."""
        ...

    async def read_page(self, name: str, cursor: Cursor, max_bytes: int) -> Page:
        """The durable records of a journal from `cursor` on, a bounded page of them.

        For readers that follow a journal (streams): `_pages.START` is its current
        generation's first record; the page says where the next one starts, whether more
        is there already, and whether the cursor's generation was replaced (rotated).
        JournalNotFound if there is no such journal.
        """
        ...

    async def read_many(self, names: list[str]) -> dict[str, list[StoredRecord] | JournalError]:
        """Several journals' records at once (one thread hop, one query); errors, not raised.

        A journal that cannot be read maps to its JournalError (JournalNotFound if it went
        away meanwhile, JournalCorrupted, ...). Optional: without it, recover() reads each.
        """
        ...

    async def rotate(self, journal: Journal, first_payload: bytes) -> Journal:
        """Replace an open journal by a new generation holding `first_payload`; its handle.

        The previous generation may be kept for inspection; readers see the new one.
        """
        ...

    async def post(
        self, name: str, payload: bytes, refuse: Callable[[list[StoredRecord]], Any] | None = None
    ) -> int:
        """Append a message to journal `name`'s inbox, durably; its position.

        `refuse` sees the messages already there and may return an exception to raise
        instead (a duplicate id), atomically with the append.
        """
        ...

    async def inbox(self, name: str, first: int = 0) -> list[StoredRecord]:
        """The messages in journal `name`'s inbox from position `first` on."""
        ...

    async def inbox_sizes(self, names: list[str]) -> dict[str, int]:
        """A value per name that changes when its inbox grows (-1: no inbox yet)."""
        ...

    async def inbox_news(self, cursor: int | None) -> tuple[list[str] | None, int]:
        """The journals posted to since `cursor` (a hint), and the next cursor.

        None instead of names: the store cannot tell, look at every inbox (inbox_sizes).
        Optional: without it, the poller looks at every inbox each time.
        """
        ...

    async def candidates(self, limit: int) -> list[str]:
        """Journals that may need a runner now (Runtime.serve tries to start them).

        A store shared by many processes claims them for this one, so that the others
        skip them; the file store names every journal.
        """
        ...

    async def set_aside(self, name: str, reason: str) -> None:
        """Journal `name` cannot be read as a journal (`reason`): leave it out of candidates().

        Until a person acts: repairs or replaces it, or opens it on purpose.
        """

    async def wait_for_work(self, longest: float) -> None:
        """Return when new work may be there (a message, a due timer), or after `longest` s."""

    def may_have_mail(self, name: str) -> bool:
        """A cheap hint: False only if the inbox is certainly empty (checked often)."""
        ...

    async def close(self) -> None:
        """Release shared resources; open journals must be closed first."""

    def observe_syncs(self, observer: Callable[[float, int], None]) -> None:
        """Tell `observer` of every sync (or commit) from now on: seconds, appends covered.

        Called on whichever thread synced (a sync thread's too): it must be quick and
        thread-safe. For metrics (durable's OpenTelemetry); one observer per store.
        """

    async def list(self) -> list[str]:
        """The names of all journals, sorted."""
        ...
