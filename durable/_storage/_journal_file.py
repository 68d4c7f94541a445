"""One append-only journal file: open and recover under an exclusive lock, append, close.

Opening an existing journal is blocking (lock, read, maybe truncate a torn tail, sync) and
runs in a worker thread; creating a new one is a few syscalls and runs on the caller's.
An append writes its frame at once (a page-cache write) and leaves the sync to the
directory's GroupCommitter, which shares it with other appenders or, for a lone appender,
does it inline within a bounded budget.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import anyio

from .._errors import (
    JournalClosed,
    JournalCorrupted,
    JournalMisplaced,
    JournalPermissionDenied,
    RecordTooLarge,
)
from ._file_io import write_all
from ._format import FileFormat, Parsed, new_format
from ._frames import StoredRecord, encode_frame, encode_frame_v2
from ._group_commit import CommitTarget, GroupCommitter
from ._id_locks import IdLocks
from ._journal_opening import (
    INLINE_OPEN_MAX,
    disk_error,
    durable_end,
    open_and_lock_stat,
    open_locked,
    parse,
    read_all,
    recover_file,
    reopen_same_file,
)
from ._opening import (
    check_regular,
    move_aside,
    permission_denied,
)

logger = logging.getLogger("durable.storage")


class JournalFile:
    """An open journal: the one writer of its file until `close()`.

    `records` holds what was durable when it was opened. `write()` writes a record that
    becomes durable with the next `append()` or `flush()` (a crash of the process keeps it
    already; power loss may not); `append()` returns once the record is durable. A failed
    write or sync closes the handle to further appends: `JournalWriteError`, then reopen.
    Use from one event loop.
    """

    read_only = False
    held_until: float | None = None  # (held by its lock for as long as it is open)

    def __init__(
        self,
        *,
        path: Path,
        fd: int,
        records: list[StoredRecord],
        committer: GroupCommitter,
        same_device: bool,
        max_record_size: int,
        file_format: FileFormat,
        written: int,
        synced: int,
        new_entry: bool = False,
    ) -> None:
        self.path = path
        self.records = records
        self.format = file_format
        # What the open wrote (a new header, a sync mark) need not be durable: nothing was
        # promised of it. So a sync mark follows, and close() syncs, only what the handle
        # itself wrote after that.
        self._opened_at = written
        self._target = CommitTarget(
            fd, path, same_device=same_device, new_entry=new_entry, written=written, synced=synced
        )
        self._committer = committer
        committer.register(self._target)
        self._max_record_size = max_record_size
        self._closed = False
        self.loop: asyncio.AbstractEventLoop | None = None  # set by the first use
        # The directory's name locks (see _id_locks) and its descriptor, to reopen the file
        # in: set by use_names(). `_holds_name` once suspend() took the name's lock (kept
        # until close). While suspended, the descriptor (and its flock) is closed and
        # `_file` is the (device, inode) that resume() must find at the name.
        self._names: IdLocks | None = None
        self._directory_fd = -1
        self._holds_name = False
        self._file: tuple[int, int] | None = None

    def use_names(self, names: IdLocks, directory_fd: int, *, held: bool = False) -> None:
        """Let suspend() hold the workflow by its name's lock (`held`: one hold taken)."""
        self._names, self._directory_fd, self._holds_name = names, directory_fd, held

    def _let_go_of_name(self) -> None:
        if self._holds_name and self._names is not None:
            self._holds_name = False
            self._names.release(self.path.name)

    @classmethod
    def open_blocking(
        cls,
        path: Path,
        *,
        directory_fd: int,
        directory_device: int,
        committer: GroupCommitter,
        max_record_size: int,
        names: IdLocks | None = None,
    ) -> JournalFile:
        """Open, lock and recover `path` (blocking; run it in a worker thread)."""
        try:
            fd, parsed, created, writable, end = open_locked(directory_fd, path, names)
        except JournalMisplaced as misplaced:
            # Another file's journal at this name (see JournalMisplaced): keep it, aside,
            # and start the file afresh, as after a crash that left nothing of it.
            try:
                moved = move_aside(directory_fd, path)
            except OSError:
                raise misplaced from None
            logger.warning("journal %s: %s; moved aside to %s", path, misplaced, moved)
            fd, parsed, created, writable, end = open_locked(directory_fd, path, names)
        journal = (cls if writable else ReadOnlyJournalFile)(
            path=path,
            fd=fd,
            records=parsed.records,
            committer=committer,
            new_entry=created,
            same_device=os.fstat(fd).st_dev == directory_device,
            max_record_size=max_record_size,
            file_format=parsed.format,
            written=end,
            synced=durable_end(parsed, created),
        )
        if names is not None:
            journal.use_names(names, directory_fd)
        return journal

    @classmethod
    def create_if_new(
        cls,
        path: Path,
        *,
        directory_fd: int,
        directory_device: int,
        committer: GroupCommitter,
        max_record_size: int,
        names: IdLocks | None = None,
    ) -> JournalFile | None:
        """Open and lock `path` if it is new (empty) or small, else None: open_blocking.

        A creation is an open, a flock, an fstat and a header write (~30 us), cheaper than
        the hop to a worker thread and back (~250 us each when 100 workflows start at once).
        Opened by name relative to the directory, never through a link (an openat with
        O_NOFOLLOW costs what an open by path does); a file that is not regular is refused.
        """
        try:
            fd, info = open_and_lock_stat(directory_fd, path, names=names)
        except JournalPermissionDenied as denied:
            if denied.path == path:
                return None  # (open_blocking may open it read-only)
            raise
        try:
            check_regular(info, path)
            if info.st_size != 0:
                opened = cls._opened_here(
                    fd,
                    path,
                    info,
                    committer,
                    directory_fd=directory_fd,
                    directory_device=directory_device,
                    max_record_size=max_record_size,
                )
                if opened is not None and names is not None:
                    opened.use_names(names, directory_fd)
                return opened
            file_format = new_format(path)
            header = file_format.header
            write_all(fd, header)
        except BaseException as error:
            os.close(fd)
            if (failure := disk_error(error, path, "writing a new journal's header")) is None:
                raise
            raise failure from error
        journal = cls(
            path=path,
            fd=fd,
            records=[],
            committer=committer,
            new_entry=True,
            same_device=info.st_dev == directory_device,
            max_record_size=max_record_size,
            file_format=file_format,
            written=len(header),
            synced=0,
        )
        if names is not None:
            journal.use_names(names, directory_fd)
        return journal

    @classmethod
    def _opened_here(
        cls,
        fd: int,
        path: Path,
        info: os.stat_result,
        committer: GroupCommitter,
        *,
        directory_fd: int,
        directory_device: int,
        max_record_size: int,
    ) -> JournalFile | None:
        """A small journal (an unloaded sleeper's), recovered on this thread; else None.

        Reading and parsing a few KiB and syncing a file already durable (~30 us) cost
        less than the hop to a worker thread and back, which a recover() of 100,000
        sleepers would pay each. Only for a small file, that needs no sync (it proves its
        records durable) or while syncs are fast (the committer's inline budget); anything
        unusual (damage, a read-only file, another file's journal) is left to
        open_blocking in a worker thread, which says what it is.
        """
        if info.st_size > INLINE_OPEN_MAX:
            os.close(fd)  # (releases the lock: open_blocking takes it again)
            return None
        try:
            recovered = recover_file(
                fd, path, True, directory_fd, may_sync=committer.syncs_are_fast()
            )
        except Exception:  # (open_blocking, in a worker thread, raises it properly)
            recovered = None
        if recovered is None:
            os.close(fd)
            return None
        parsed, created, _, end = recovered
        return cls(
            path=path,
            fd=fd,
            records=parsed.records,
            committer=committer,
            new_entry=created,  # (as open_blocking: a file a crash left before its first sync)
            same_device=info.st_dev == directory_device,
            max_record_size=max_record_size,
            file_format=parsed.format,
            written=end,
            synced=durable_end(parsed, created),
        )

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    @property
    def holds_name(self) -> bool:
        """Whether this handle holds its journal's name lock (see suspend())."""
        return self._holds_name

    def _mark_synced(self) -> None:
        """Leave a sync mark after the last sync: proof that the last batch was durable.

        Damage to that batch is then bit rot to refuse, not a tail to cut. A page-cache
        write, never a sync of its own: a crash may lose it, which leaves the last batch
        unprovable, so only damage coinciding with that crash would be cut.
        """
        target = self._target
        if target.failure is None and self._opened_at < target.synced == target.written:
            mark = self.format.sync_mark(target.synced)
            if mark:
                try:
                    write_all(target.fd, mark)
                except OSError as error:  # (only a proof is lost; every record is durable)
                    logger.warning("journal %s: no sync mark written: %s", self.path, error)

    async def abandon(self) -> None:
        """Give the file back without syncing (nothing was written through this handle)."""
        self._closed = True
        if self._file is None:  # (suspended: the descriptor is closed already)
            self._committer.release(self._target)
        self._let_go_of_name()

    def _frame(self, payload: bytes) -> bytes:
        if self._closed or self._file is not None:  # (closed, or suspended: no descriptor)
            raise JournalClosed(path=self.path)
        if not 0 < len(payload) <= self._max_record_size:
            if not payload:
                raise ValueError("a journal record cannot be empty")
            raise RecordTooLarge(path=self.path, size=len(payload), limit=self._max_record_size)
        file_format = self.format
        if file_format.version == 1:
            return encode_frame(payload)
        return encode_frame_v2(payload, self._target.synced, file_format.file_id, file_format.seed)

    def write(self, payload: bytes) -> None:
        """Write a record now; durable with the next append() or flush().

        Raises:
            JournalWriteError: the write failed; the handle takes no more appends.
            RecordTooLarge: the payload is over the limit; nothing was written.
        """
        self._target.write(self._frame(payload))

    async def append(self, payload: bytes) -> None:
        """Append a record and return once it (and every record before it) is durable.

        Cancelling the caller does not unwrite the record: it may still become durable.

        Raises:
            JournalWriteError: the write or the sync failed; the handle takes no more appends.
            RecordTooLarge: the payload is over the limit; nothing was written.
        """
        self._target.write(self._frame(payload))
        loop = asyncio.get_running_loop()
        if self._committer.sync_inline(self._target, loop):
            return  # (no extra suspension: it would cost a loop iteration per record)
        waiter = loop.create_future()
        self._committer.join_round(self._target, waiter, loop)
        await waiter

    async def flush(self) -> None:
        """Make every record written so far durable."""
        if self._closed:
            raise JournalClosed(path=self.path)
        target = self._target
        # (what the open wrote, a sync mark, need not be durable: nothing was promised of it)
        if target.written > target.synced and target.written > self._opened_at:
            if target.failure is not None:
                raise target.error()
            loop = asyncio.get_running_loop()
            if self._committer.sync_inline(target, loop):
                return
            waiter = loop.create_future()
            self._committer.join_round(target, waiter, loop)
            await waiter

    def check_held(self) -> None:
        """Always held: the flock lasts as long as the descriptor."""

    async def suspend(self) -> None:
        """Make written records durable and drop them from memory; keep the workflow held.

        An unloaded sleeper's journal is held this way, so no other runtime, here or in
        another process, can take the workflow meanwhile: by the lock on its name (see
        _id_locks) when this handle has one, its descriptor and flock then closed, so a
        sleeper holds no descriptor; else (no OFD locks here) by the descriptor kept open.
        """
        await self.flush()
        self.records = []
        target, names = self._target, self._names
        if names is None or self._closed or self._file is not None or self.read_only:
            return
        unsynced = target.written not in (target.synced, self._opened_at)
        if target.in_flight or target.failure is not None or unsynced:
            return  # (a sync still settling: keep the descriptor, as without name locks)
        if not self._holds_name:
            # (on this thread, with no await until the descriptor is closed: a lock of a
            # byte, ~20 us with 100,000 held, is cheaper than a hop to a worker thread)
            try:
                self._holds_name = names.acquire(self.path.name)
            except OSError as error:
                logger.warning(
                    "journal %s: no name lock (%s): its descriptor stays", self.path, error
                )
            if not self._holds_name:  # (no OFD locks, or another name's hash elsewhere)
                return
        info = os.fstat(target.fd)
        if self._opened_at < target.synced:
            # The sync mark close() would leave: without it, damage to the last batch would
            # read as a torn tail after a restart, and be cut. It is part of the file now.
            mark = self.format.sync_mark(target.synced)
            try:
                write_all(target.fd, mark)
                target.written += len(mark)
            except OSError as error:  # (only a proof is lost; every record is durable)
                logger.warning("journal %s: no sync mark written: %s", self.path, error)
        self._committer.release(target)  # (closes it: the flock goes, the name lock stays)
        target.fd = -1
        self._file = (info.st_dev, info.st_ino)

    async def resume(self) -> None:
        """Read the records back (after suspend()), under the lock held all along.

        A handle that closed its descriptor opens the file again by name and takes its
        flock: it must be the same file, as long as it was (nobody else wrote to it).

        Raises:
            JournalLocked: a process that does not know the name locks (an older durable)
                took the flock meanwhile; the workflow is its now.
            JournalCorrupted: the file changed under the lock (someone wrote to it), or was
                replaced or removed.
        """
        if self._closed:
            raise JournalClosed(path=self.path)
        path, end, file = self.path, self._target.written, self._file
        directory_fd = self._directory_fd

        def blocking() -> tuple[int, Parsed]:
            fd = self._target.fd if file is None else reopen_same_file(directory_fd, path, file)
            try:
                return fd, parse(read_all(fd), path)
            except BaseException:
                if file is not None:
                    os.close(fd)
                raise

        fd, parsed = await anyio.to_thread.run_sync(blocking)
        if file is not None and self._closed:  # (closed meanwhile, by the store's close())
            os.close(fd)
            raise JournalClosed(path=path)
        if parsed.torn is not None or parsed.valid_end != end:
            if file is not None:
                os.close(fd)
            raise JournalCorrupted(
                path=path,
                offset=min(parsed.valid_end, end),
                reason=f"it changed while its runner held it (it wrote {end} bytes, the file "
                f"now reads as {parsed.valid_end} valid bytes"
                + (f", then {parsed.torn})" if parsed.torn else ")"),
            )
        if file is not None:
            old = self._target
            self._target = CommitTarget(
                fd, path, same_device=old.same_device, written=old.written, synced=old.synced
            )
            self._committer.register(self._target)
            self._file = None
        self.records = parsed.records

    async def note(
        self, *, finished: bool = False, wake_at: float | None = None, inbox_next: int | None = None
    ) -> None:
        """Nothing to do: a directory is not shared between processes by leases."""

    async def close(self) -> None:
        """Make written records durable, then release the lock and the file.

        Raises:
            JournalWriteError: a written record could not be made durable.
        """
        if self._closed:
            return
        self._closed = True
        if self._file is not None:  # (suspended: durable already, and no descriptor)
            self._let_go_of_name()
            return
        target, committer = self._target, self._committer
        unwritten = target.written in (target.synced, self._opened_at)
        if unwritten and not target.in_flight and target.failure is None:
            self._mark_synced()
            committer.release(target)  # nothing to sync and the thread holds no request
            self._let_go_of_name()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def release(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:  # (raised below)
                self._mark_synced()
            committer.release(target)
            self._let_go_of_name()

        # The fd closes only once the sync thread is done with it, even if close() is
        # cancelled: the request settles after every request queued before it.
        waiter.add_done_callback(release)
        self._committer.request_sync(self._target, waiter)
        await asyncio.shield(waiter)


class ReadOnlyJournalFile(JournalFile):
    """A journal this user may read but not write: opened O_RDONLY, and still locked.

    Enough for a finished workflow, which returns its recorded outcome without writing.
    Every write is refused with JournalPermissionDenied, and so is `check_held` (asked
    before an activity starts), so an unfinished workflow stops before a side effect it
    could not record.
    """

    read_only = True  # (suspend() keeps its descriptor: it could not be reopened to write)

    def _refusal(self) -> JournalPermissionDenied | JournalClosed:
        if self.closed:
            return JournalClosed(path=self.path)
        try:
            info: os.stat_result | None = os.fstat(self._target.fd)
        except OSError:
            info = None
        return permission_denied(
            self.path,
            "write",
            "it was opened read-only because it is not writable: a finished workflow's "
            "outcome can be read from it, but this workflow has more to record",
            info,
        )

    def write(self, payload: bytes) -> None:
        """Refused: JournalPermissionDenied."""
        raise self._refusal()

    async def append(self, payload: bytes) -> None:
        """Refused: JournalPermissionDenied."""
        raise self._refusal()

    def check_held(self) -> None:
        """Refused: no side effect may start that this journal could not record."""
        raise self._refusal()
