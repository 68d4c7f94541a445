"""Reading a journal directory for people: listings, histories, inboxes (CLI and web UI).

Reads only: no lock is taken and nothing is written, so it works while workflows run, in
this process or another. A journal being appended to reads as its complete records. What
it finds is turned into JSON-ready values by `_json_ready` (the CLI's --json, the web UI).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio.to_thread

from ._catalog_index import LOAD_AFTER, WRITE_AFTER
from ._catalog_index import load as load_index
from ._catalog_index import save as save_index
from ._catalog_postgres import query_postgres
from ._engine._describe import WorkflowDescription, WorkflowState, describe
from ._engine._history import History, history
from ._engine._records import Record, read_journal, read_message, undecodable_message
from ._errors import (
    DurableError,
    InvalidJournalName,
    InvalidWorkflowId,
    JournalCorrupted,
    JournalError,
    JournalNotFound,
    WorkflowNotFound,
)
from ._json_ready import to_plain
from ._query import WorkflowFilter, WorkflowPage, check_limit, decode_cursor, page_of
from ._queue_reading import (
    QueueLoad,
    damaged_requests,
    describe_orphans,
    describe_waiting,
    find_waiting,
    load_of,
    postgres_queued,
)
from ._storage._directory import SUFFIX, JournalDirectory, validate_name
from ._storage._frames import StoredRecord
from ._storage._id_locks import held_names
from ._storage._inbox import INBOX_SUFFIX
from ._storage._locks import held_on
from ._storage._opening import reading
from ._storage._postgres import PostgresStore
from ._storage._queue_files import QueueFiles, queue_names
from ._streams import StreamSnapshot, stream_snapshot


@dataclass
class Listing:
    """The workflows of a directory (newest update first), and the journals unreadable."""

    workflows: list[WorkflowDescription] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # id -> what is wrong
    runners: dict[str, str] | None = None  # id -> the process holding its journal
    queues: list[QueueLoad] = field(default_factory=list)  # each queue's load (directories)

    def runner(self, workflow_id: str) -> Runner:
        """Who holds this workflow's journal (see Runner)."""
        return Runner.of(workflow_id, self.runners)


@dataclass(frozen=True)
class Runner:
    """Whether a process holds a workflow's journal now.

    A directory tells by its flock or name lock (`holder` is the pid, from the holders'
    /proc/<pid>/fdinfo; "?" for another user's process holding a name), PostgreSQL by
    its live lease (`holder` is the owner, host:pid:id). `known` is False where that cannot
    be read. A runtime that unloads a sleeping or waiting workflow keeps holding it (the
    one that wakes it); a running one (an activity under way) that nobody holds is
    stalled: it resumes when a runtime runs it again. A process forked from an activity
    (multiprocessing's "fork") inherits the descriptors, so the lock outlives its runtime
    until that process exits: start such processes with "spawn" or "forkserver".
    """

    known: bool
    holder: str | None

    @classmethod
    def of(cls, workflow_id: str, runners: dict[str, str] | None) -> Runner:
        if runners is None:
            return cls(known=False, holder=None)
        return cls(known=True, holder=runners.get(workflow_id))

    def stalled(self, described: WorkflowDescription) -> bool:
        """Journaled as running an activity, yet no process holds it."""
        return self.known and self.holder is None and described.state is WorkflowState.RUNNING

    def says(self, described: WorkflowDescription) -> str:
        """Who runs the workflow and, while it sleeps or waits, who wakes it: in words.

        A runtime that unloads a sleeper keeps its journal's lock (or lease), so the holder
        of a sleeping or waiting workflow is the runtime that will wake it.
        """
        if described.ended is not None or not self.known:
            return ""
        if self.holder is None:
            if self.stalled(described):
                return "none: stalled, it resumes when a runtime runs it again"
            return "no process holds it now: it resumes when a runtime runs it (run, recover)"
        who = f"process {self.holder}{_command_of(self.holder)}"
        if described.state is WorkflowState.SLEEPING:
            return f"{who} holds it while it sleeps and wakes it then (or when a message comes)"
        if described.state is WorkflowState.WAITING:
            return f"{who} holds it while it waits and wakes it when the event comes"
        return f"{who} runs it"


def _command_of(holder: str) -> str:
    """A local process's command line, as " (python app.py)" (from /proc); else ""."""
    if not holder.isdigit():
        return ""  # (a lease owner, host:pid:id: not a process of this machine to look at)
    try:
        raw = Path(f"/proc/{holder}/cmdline").read_bytes()
    except OSError:
        return ""
    command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return f" ({command[:77]}...)" if len(command) > 80 else f" ({command})" if command else ""


@dataclass(frozen=True)
class InboxMessage:
    """A message sent to a workflow, and whether its run has received it yet.

    Received: journaled by the run that holds the workflow, in the order it read its inbox.
    A received event the code has not waited for yet stays buffered in the workflow.
    """

    position: int
    kind: str  # "event" or "cancel" ("undecodable": the run skips it, see its journal)
    name: str  # the event's name, or the cancellation's reason (or why it is undecodable)
    payload: Any
    sent: float
    message_id: str | None
    received: bool


@dataclass(frozen=True)
class Details:
    """All a workflow's page needs, from one read of its journal and inbox."""

    history: History
    description: WorkflowDescription
    inbox: list[InboxMessage]
    runner: Runner


def is_postgres(source: str | os.PathLike[str]) -> bool:
    """Whether `source` names a PostgreSQL database (a DSN) rather than a directory."""
    return os.fspath(source).startswith(("postgresql://", "postgres://"))


class Catalog:
    """A read-only view of one journal directory, or of a PostgreSQL store (a DSN).

    Keeps each journal's description while its files are unchanged (same inode, size and
    mtime), so a UI that lists 10,000 workflows every few seconds decodes only what moved.
    A PostgreSQL store is read afresh each time (its queries keep summaries in the database).
    Use `async with` (or close()) to let go of a database's connections; a `store` given
    (a runtime's) is left open.
    """

    def __init__(
        self, source: str | os.PathLike[str], *, store: PostgresStore | None = None
    ) -> None:
        self._store: JournalDirectory | PostgresStore
        self._owns_store = store is None  # (a runtime's store is the runtime's to close)
        if store is not None or is_postgres(source):
            self._store = store or PostgresStore(os.fspath(source))
            self.directory: Path | str = self._store.location("").rsplit(" journal", 1)[0]
        else:
            self.directory = Path(source)
            self._store = JournalDirectory(self.directory)
        self._described: dict[str, tuple[tuple[int, ...], WorkflowDescription]] = {}
        self._reads = 0  # (a PostgreSQL store's "version": every read is new)
        self._index_loaded = False  # (the directory's .catalog-index, read at first listing)

    async def close(self) -> None:
        """Close a database's connections (a directory holds nothing open)."""
        if self._owns_store:
            await self._store.close()

    async def __aenter__(self) -> Catalog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def listing(
        self, *, state: WorkflowState | str | None = None, search: str | None = None
    ) -> Listing:
        """Every workflow's description, newest update first, filtered if asked.

        Args:
            state: only workflows in this state.
            search: only those whose id, workflow name or status contains it (any case).

        Raises:
            ValueError: `state` is not a WorkflowState.
        """
        wanted = WorkflowState(state) if state is not None else None
        listing = await self._described_now(await self._store.list())
        needle = search.lower() if search else None
        kept = listing.workflows
        listing.workflows = [
            described
            for described in kept
            if (wanted is None or described.state is wanted)
            and (needle is None or _matches(described, needle))
        ]
        listing.workflows.sort(key=lambda described: described.updated, reverse=True)
        return listing

    async def query(
        self, where: WorkflowFilter | None = None, *, limit: int = 100, cursor: str | None = None
    ) -> WorkflowPage:
        """One page of the workflows `where` matches, newest start first (then by id).

        Args:
            where: the filter (None: every workflow).
            limit: the page's size, 1..10,000.
            cursor: the previous page's next_cursor (None: the first page).

        Raises:
            InvalidFilter: a bad limit or cursor (the filter checked itself when made).
        """
        where = where or WorkflowFilter()
        check_limit(limit)
        decode_cursor(cursor)
        if isinstance(self._store, PostgresStore):
            return await query_postgres(self._store, where, limit, cursor)
        names = await self._store.list()
        if where.id_prefix is not None:  # (the fields a name alone can answer)
            names = [name for name in names if name.startswith(where.id_prefix)]
        if where.ids:
            names = [name for name in names if name in where.ids]
        every = where.id_prefix is None and not where.ids
        listing = await self._described_now(names, every=every)
        queues = await anyio.to_thread.run_sync(self._queue_members) if where.queue else {}
        matching = [d for d in listing.workflows if where.matches(d, queues)]
        return page_of(matching, limit, cursor, listing.unreadable)

    def _queue_members(self) -> dict[str, str]:
        """Blocking: each workflow a queue holds (waiting or admitted) -> the queue's name."""
        if not isinstance(self.directory, Path):
            return {}
        members: dict[str, str] = {}
        for name in queue_names(self.directory):
            try:
                files = QueueFiles(self.directory, name, create=False)
            except OSError:
                continue
            try:
                members.update(dict.fromkeys([*files.waiting(), *files.admitted()], name))
            except JournalError:
                continue  # (a file at its request log's name that is none: skipped)
            finally:
                files.close()
        return members

    async def _described_now(self, names: list[str], *, every: bool = True) -> Listing:
        """Every named journal's description, decoding only those that changed.

        With the queues' waiting requests, the unreadable journals and who holds each; with
        `every` (`names` are all the journals), what went away is forgotten.
        """
        if not self._index_loaded and isinstance(self.directory, Path) and len(names) >= LOAD_AFTER:
            self._index_loaded = True  # (a few journals are read sooner than the whole index)
            on_disk = await anyio.to_thread.run_sync(load_index, self.directory)
            self._described = {**on_disk, **self._described}
        versions = await self._versions_of(names)
        stale = [name for name in names if self._described.get(name, ((),))[0] != versions[name]]
        stored = await self._store.read_many(stale) if stale else {}
        listing = Listing(runners=await self._holders(names, versions))
        mail: dict[str, int] = {}  # (a database tells every inbox's size in one query)
        if isinstance(self._store, PostgresStore) and stale:
            mail = await self._store.inbox_sizes(stale)
        for name in stale:
            records = stored[name]
            self._described.pop(name, None)
            if isinstance(records, JournalError):
                listing.unreadable[name] = str(records)
            elif records:  # (none: created, its start record not written yet)
                try:
                    journal = self._decode(name, records)
                    messages = 0
                    if mail.get(name, versions[name][6]) > 0:
                        messages = len(await self._inbox(name))
                    described = describe(name, journal, inbox_size=messages)
                except DurableError as error:
                    listing.unreadable[name] = str(error)
                else:
                    self._described[name] = (versions[name], described)
        if every:
            for gone in self._described.keys() - set(names):
                del self._described[gone]
        for name in names:
            if (kept := self._described.get(name)) is not None:
                listing.workflows.append(kept[1])
        if isinstance(self.directory, Path):  # (the queues' waiting requests: no journal)
            listing.workflows += await anyio.to_thread.run_sync(self._queued, listing)
        elif isinstance(self._store, PostgresStore):
            loads, waiting = await postgres_queued(self._store, time.time())
            listing.queues += loads
            listing.workflows += waiting
        if len(stale) >= WRITE_AFTER and isinstance(self.directory, Path):
            snapshot = dict(self._described)
            await anyio.to_thread.run_sync(save_index, self.directory, snapshot)
        return listing

    def _queued(self, listing: Listing) -> list[WorkflowDescription]:
        """Blocking: every queue's waiting requests, described, and its load (a directory)."""
        if not isinstance(self.directory, Path):
            return []
        found: list[WorkflowDescription] = []
        now = time.time()
        described = {d.workflow_id for d in listing.workflows} | set(listing.unreadable)
        for name in queue_names(self.directory):
            try:
                files = QueueFiles(self.directory, name, create=False)
            except OSError:
                continue  # (half made, or not ours)
            try:
                listing.queues.append(load_of(files, now))
                found += describe_waiting(files, now, listing.unreadable)
                found += describe_orphans(files, described)
                listing.unreadable.update(damaged_requests(files))
            except JournalError as error:  # (its request log cannot be read: said, skipped)
                listing.unreadable[f"queue {name}"] = str(error)
            finally:
                files.close()
        return found

    async def details(self, workflow_id: str) -> Details:
        """One workflow's history, description and inbox (WorkflowNotFound if none).

        A request waiting in a queue (no journal yet) has an empty history and the state
        "queued", its place and why it waits as the description's `current`.
        """
        try:
            journal = await self._journal(workflow_id)
        except WorkflowNotFound:
            queued = await self._queued_details(workflow_id)
            if queued is None:
                raise
            return queued
        messages = await self._inbox(workflow_id)
        return Details(
            history=history(workflow_id, journal),
            description=describe(workflow_id, journal, inbox_size=len(messages)),
            inbox=_inbox_messages(journal, messages),
            runner=await self.runner(workflow_id),
        )

    async def _queued_details(self, workflow_id: str) -> Details | None:
        """A waiting request's details (None: no queue of the directory holds it)."""
        if not isinstance(self.directory, Path):
            return None
        found = await anyio.to_thread.run_sync(
            find_waiting, self.directory, workflow_id, time.time()
        )
        if found is None:
            return None
        described, arguments = found
        started = described.started.timestamp()
        queued = History(workflow_id, described.workflow_name, arguments, started, 0, None, [], [])
        return Details(
            history=replace(queued, outcome="queued"),
            description=described,
            inbox=[],
            runner=Runner(known=False, holder=None),  # (nobody runs it yet: nothing to say)
        )

    async def runners(self, workflow_ids: list[str]) -> dict[str, str] | None:
        """Who holds each workflow's journal now (id -> holder; None: it cannot be told)."""
        versions = await self._versions_of(workflow_ids)
        return await self._holders(workflow_ids, versions)

    async def runner(self, workflow_id: str) -> Runner:
        """Who holds the workflow's journal now (no lock is taken to find out)."""
        self.check_id(workflow_id)
        versions = await self._versions_of([workflow_id])
        return Runner.of(workflow_id, await self._holders([workflow_id], versions))

    async def _versions_of(self, names: list[str]) -> dict[str, tuple[int, ...]]:
        if isinstance(self._store, PostgresStore):
            self._reads += 1  # (never equal to a kept one: always read afresh)
            return dict.fromkeys(names, (-1, -1, -1, -1, -1, -1, 1, -self._reads))
        return await anyio.to_thread.run_sync(self._versions, names)

    async def _holders(
        self, names: list[str], versions: dict[str, tuple[int, ...]]
    ) -> dict[str, str] | None:
        """Who holds each journal: a live lease's owner, or a flock's pid (None: unknown)."""
        if isinstance(self._store, PostgresStore):
            return await self._store.holders(names)
        return await anyio.to_thread.run_sync(self._directory_holders, names, versions)

    def _directory_holders(
        self, names: list[str], versions: dict[str, tuple[int, ...]]
    ) -> dict[str, str] | None:
        """Blocking: a journal's flock holder, else (an unloaded sleeper) its name lock's.

        A pid, or "?" for a holder this user cannot look at (another user's process).
        """
        if not Path("/proc/self/fdinfo").is_dir():
            return None  # (not Linux: nothing can be known)
        holders = held_on({_file_of(versions[name]) for name in names})
        found = {name: str(pid) for name in names if (pid := holders.get(_file_of(versions[name])))}
        rest = [name for name in names if name not in found]
        named = held_names(Path(self.directory), [name + SUFFIX for name in rest]) if rest else None
        for file_name, pid in (named or {}).items():
            found[file_name.removesuffix(SUFFIX)] = str(pid) if pid > 0 else "?"
        return found

    async def streams(
        self, workflow_id: str, name: str | None, offset: int, limit: int
    ) -> StreamSnapshot:
        """The workflow's streams now: each one's count, and values of `name` from `offset`."""
        self.check_id(workflow_id)
        return await stream_snapshot(self._store, workflow_id, name, offset, limit)

    async def describe(self, workflow_id: str) -> WorkflowDescription:
        """One workflow's description (WorkflowNotFound if there is none)."""
        journal = await self._journal(workflow_id)
        return describe(workflow_id, journal, inbox_size=len(await self._inbox(workflow_id)))

    async def history(self, workflow_id: str) -> History:
        """One workflow's history: its steps, attempts, timers, events and outcome."""
        return history(workflow_id, await self._journal(workflow_id))

    async def inbox(self, workflow_id: str) -> list[InboxMessage]:
        """The messages sent to a workflow, oldest first, with whether it received each yet."""
        journal = await self._journal(workflow_id)
        return _inbox_messages(journal, await self._inbox(workflow_id))

    def check_id(self, workflow_id: str) -> None:
        """Refuse an id that is not a valid workflow id (InvalidWorkflowId)."""
        try:
            validate_name(workflow_id, self.directory)
        except InvalidJournalName as error:
            raise InvalidWorkflowId.of(error) from None

    def version(self, workflow_id: str) -> tuple[int, ...]:
        """What changes whenever the workflow's journal or inbox does.

        The journal's device, inode, size and mtime, then the inbox's (-1s where missing).
        A PostgreSQL store's differs every time (nothing is kept).
        """
        self.check_id(workflow_id)
        if isinstance(self._store, PostgresStore):
            self._reads += 1
            return (-self._reads,)
        return self._versions([workflow_id])[workflow_id]

    def _versions(self, names: list[str]) -> dict[str, tuple[int, ...]]:
        """Blocking: each journal's and inbox's stamp (see version()).

        One listing of the directory says which inboxes exist, so a directory of 100,000
        journals costs 100,000 stats, not 200,000 (most workflows never get a message).
        """
        assert isinstance(self._store, JournalDirectory)
        missing = (-1, -1, -1, -1)
        for name in names:
            validate_name(name, self.directory)
        with reading(self._store.path, None) as directory_fd:
            if directory_fd is None:
                return dict.fromkeys(names, missing + missing)
            present = set(os.listdir(directory_fd)) if len(names) > 1 else None
            found = {}
            for name in names:
                stamp: tuple[int, ...] = ()
                for file in (name + SUFFIX, name + INBOX_SUFFIX):
                    if present is not None and file not in present:
                        stamp += missing
                        continue
                    try:  # (a link is reported by the read, never followed)
                        info = os.stat(file, dir_fd=directory_fd, follow_symlinks=False)
                    except FileNotFoundError:
                        stamp += missing
                    else:
                        stamp += (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
                found[name] = stamp
        return found

    async def _journal(self, workflow_id: str) -> list[dict[str, Any]]:
        self.check_id(workflow_id)
        try:
            records = await self._store.read(workflow_id)
        except JournalNotFound:
            raise WorkflowNotFound(workflow_id=workflow_id, directory=self.directory) from None
        if not records:
            raise WorkflowNotFound(workflow_id=workflow_id, directory=self.directory)
        return self._decode(workflow_id, records)

    async def _inbox(self, workflow_id: str) -> list[dict[str, Any]]:
        """The inbox's messages, read by the schema (`read_message`); a bad one as undecodable."""
        path = f"{self._store.location(workflow_id)} (inbox)"
        found: list[dict[str, Any]] = []
        for record in await self._store.inbox(workflow_id):
            try:
                found.append(read_message(record, path=path))
            except JournalCorrupted as error:  # (one bad message hides none of the others)
                found.append(dict(undecodable_message(error.reason)))
        return found

    def _decode(self, workflow_id: str, records: list[StoredRecord]) -> list[Record]:
        """The journal's records, validated by the schema (JournalCorrupted names the bad one).

        Every reader below (describe, history, the inbox's received marks) may then index
        them without checking: a malformed journal is one DurableError here, which a listing
        shows as that journal unreadable, the others listed as ever.
        """
        return read_journal(records, path=self._store.location(workflow_id))


def _file_of(version: tuple[int, ...]) -> tuple[int, int]:
    """The journal's (device, inode), from a Catalog.version()."""
    return version[0], version[1]


def _inbox_messages(
    journal: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> list[InboxMessage]:
    received = journal[0].get("q", 0)  # (a new generation starts past what it carried)
    for record in journal[1:]:
        if "q" in record and record.get("k") in ("event", "cancel", "skip"):
            received = max(received, record["q"] + 1)
    found = []
    for position, message in enumerate(messages):  # (validated, or UNDECODABLE's)
        kind = message["k"]
        found.append(
            InboxMessage(
                position=position,
                kind=kind,
                name=message.get("n", "") if kind == "event" else message.get("m", ""),
                payload=message.get("p"),
                sent=message.get("t", 0.0),
                message_id=message.get("id"),
                received=position < received,
            )
        )
    return found


def _matches(described: WorkflowDescription, needle: str) -> bool:
    return any(
        needle in text.lower()
        for text in (
            described.workflow_id,
            described.workflow_name,
            "" if described.status is None else json.dumps(to_plain(described.status)),
        )
    )
