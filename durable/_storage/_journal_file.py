"""One append-only journal file: open and recover under an exclusive lock, append, close.

Opening an existing journal is blocking (lock, read, maybe truncate a torn tail, sync) and
runs in a worker thread; creating a new one is a few syscalls and runs on the caller's.
An append writes its frame at once (a page-cache write) and leaves the sync to the
directory's GroupCommitter, which shares it with other appenders or, for a lone appender,
does it inline within a bounded budget.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import overload

import anyio

from .._errors import (
    JournalClosed,
    JournalCorrupted,
    JournalError,
    JournalLocked,
    JournalMisplaced,
    JournalPermissionDenied,
    JournalWriteError,
    RecordTooLarge,
    UnsafeJournalFile,
)
from .._gc_pause import collector_paused
from ._file_io import sync_file, write_all
from ._format import FileFormat, Parsed, new_format
from ._format import parse as parse_bytes
from ._frames import StoredRecord, encode_frame, encode_frame_v2
from ._group_commit import CommitTarget, GroupCommitter
from ._id_locks import IdLocks, hostile
from ._opening import (
    READ_FLAGS,
    WRITE_FLAGS,
    check_regular,
    move_aside,
    open_in,
    permission_denied,
    translate,
)

logger = logging.getLogger("durable.storage")


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, max(size - offset, 1 << 16), offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def parse(data: bytes, path: Path, *, salvage: bool = False) -> Parsed:
    """A file's records and what to cut (see _format.parse), with the collector paused.

    Frames are read whatever their size (a frame cannot claim more bytes than the file
    holds): the record size limit applies to writing, so lowering it never hides records.
    """
    with collector_paused():
        return parse_bytes(data, path, salvage=salvage)


def _lock(
    directory_fd: int, path: Path, flags: int = WRITE_FLAGS, names: IdLocks | None = None
) -> int:
    """Open `path` in the directory (never through a link) and take its exclusive flock.

    Then, with `names`, check that no runner holds the journal's name lock: an unloaded
    sleeper's runtime holds the name alone, its descriptor closed (see _id_locks).

    The lock is on the file opened, and the name may have moved on meanwhile: between the
    open and the flock, a runner's continue_as_new may rename the next generation over
    the name and let go of the old file. A lock on that old file would make a second
    writer, so the descriptor must still be the file at the name once locked; else again.
    """
    while True:
        fd = open_in(directory_fd, path, flags, "read and write")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _still_named(fd, directory_fd, path):
                if names is not None and _name_taken(names, directory_fd, path):
                    raise BlockingIOError
                return fd
        except BlockingIOError:
            os.close(fd)
            raise JournalLocked(path=path) from None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # (a generation replaced meanwhile: lock the one named now)


def _name_taken(names: IdLocks, directory_fd: int, path: Path) -> bool:
    """Whether a runner holds the journal's name lock (a lock file it could not open: say why)."""
    try:
        return names.taken(path.name)
    except OSError as error:
        if (planted := hostile(directory_fd, path.name)) is not None:
            # (no runner could take a name lock there either; but one may hold it in the
            # folder that was there before: refuse, never guess the name free)
            where, found, wanted = planted
            unsafe = UnsafeJournalFile(path=path.parent / where, found=found, wanted=wanted)
            raise unsafe from error
        refusal = translate(error, directory_fd, path, "read and write")
        if refusal is None:
            raise
        raise refusal from error


def _still_named(fd: int, directory_fd: int, path: Path) -> bool:
    """Whether the open file `fd` is the one at `path`'s name in the directory now."""
    held = os.fstat(fd)
    try:
        named = os.stat(path.name, dir_fd=directory_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _reopen(directory_fd: int, path: Path, file: tuple[int, int]) -> int:
    """A suspended journal's file, opened and flocked again: it must be `file` still.

    Its runtime holds the name's lock, so an opener that takes the flock lets go of it at
    once (it checks the name next): try again for a while. A flock held longer is a
    process that does not take name locks (JournalLocked: it has the workflow now).
    """
    pause = 0.001
    while True:
        try:
            fd = _lock(directory_fd, path, WRITE_FLAGS & ~os.O_CREAT)
            break
        except FileNotFoundError:
            fd = -1
            break
        except JournalLocked:
            if pause > REOPEN_PATIENCE:
                raise
            time.sleep(pause)
            pause *= 2
    if fd < 0 or (os.fstat(fd).st_dev, os.fstat(fd).st_ino) != file:
        if fd >= 0:
            os.close(fd)
        raise JournalCorrupted(
            path=path,
            offset=0,
            reason="it was replaced or removed while its runner held it (another file is "
            "at its name now)",
        )
    return fd


def _disk_error(error: BaseException, path: Path, operation: str) -> JournalWriteError | None:
    """A plain OSError (ENOSPC, EIO) while opening as JournalWriteError (None: keep `error`)."""
    if not isinstance(error, OSError) or isinstance(error, JournalError):
        return None
    detail = error.strerror or str(error)
    return JournalWriteError(path=path, operation=operation, errno=error.errno, detail=detail)


# Seconds (about) a waking sleeper tries to take its flock back (see _reopen).
REOPEN_PATIENCE = 1.0
# Journals up to this size are opened on the loop's thread (see JournalFile._opened_here).
INLINE_OPEN_MAX = 64 * 1024


def _open_locked(
    directory_fd: int, path: Path, names: IdLocks | None = None
) -> tuple[int, Parsed, bool, bool, int]:
    """Blocking: open, lock, recover. Leaves the file byte-for-byte as it was unless torn.

    Returns the descriptor, what was read (its records end where the file now ends), and
    whether the file was (re)created: then its header and directory entry are made durable
    by its first sync, not here (a creation would otherwise cost an fdatasync and a
    directory fsync of its own); whether it is writable; and where the file now ends.

    A writer killed after its last sync left no sync mark: nothing in the file proves its
    last batch durable, and damage to it later would be cut as a tail. The recovery sync
    makes it durable, so a mark is written after it (a page-cache write).

    A journal this user may read but not write (EACCES, EPERM, EROFS) is opened read-only,
    and locked all the same (flock works on a read-only descriptor): enough for a finished
    workflow to return its recorded outcome (see ReadOnlyJournalFile).
    """
    writable = True
    try:
        fd = _lock(directory_fd, path, names=names)
    except JournalPermissionDenied as denied:
        if denied.path != path:  # (the directory's permission, to create the file)
            raise
        try:
            fd = _lock(directory_fd, path, READ_FLAGS, names)
        except (JournalPermissionDenied, FileNotFoundError):
            raise denied from None
        writable = False
    try:
        check_regular(os.fstat(fd), path)
        return (fd, *_recover(fd, path, writable, directory_fd))
    except BaseException as error:
        os.close(fd)
        if (failure := _disk_error(error, path, "opening (recovery, header or sync)")) is None:
            raise
        raise failure from error


def proven_durable(parsed: Parsed) -> bool:
    """Whether what the file says proves every record in it durable (format 2 and later).

    Version 1 has no watermarks: its `synced` is only the valid end, never a proof.
    """
    return parsed.format.version >= 2 and 0 < parsed.records_end <= parsed.synced


def durable_end(parsed: Parsed, created: bool) -> int:
    """How much of a file just opened a completed sync covers (the next frame's watermark).

    The whole file once the opener synced it; what its last watermark proves when it did
    not (a sync mark after that may not be durable: no frame may claim it is).
    """
    if created:
        return 0
    return parsed.synced if proven_durable(parsed) else parsed.valid_end


@overload
def _recover(
    fd: int, path: Path, writable: bool, directory_fd: int
) -> tuple[Parsed, bool, bool, int]: ...
@overload
def _recover(
    fd: int, path: Path, writable: bool, directory_fd: int, *, may_sync: bool
) -> tuple[Parsed, bool, bool, int] | None: ...
def _recover(
    fd: int, path: Path, writable: bool, directory_fd: int, *, may_sync: bool = True
) -> tuple[Parsed, bool, bool, int] | None:
    """Blocking: read, cut a torn tail, sync what is there (the rest of _open_locked).

    None, with the file untouched, if it needs more than a read and `may_sync` is False.
    """
    data = _read_all(fd)
    parsed = parse(data, path)
    if not may_sync and (parsed.torn is not None or not proven_durable(parsed)):
        return None
    if not writable and (parsed.torn is not None or parsed.valid_end == 0):
        raise permission_denied(
            path,
            "write",
            "it is readable only, and opening it needs a write (to cut an unsynced tail "
            "or write its header)",
            os.fstat(fd),
        )
    if parsed.torn is not None:
        logger.warning(
            "journal %s: truncating the unsynced tail at byte %d (%d bytes: %s); "
            "no completed sync covered it, so it was never reported durable",
            path,
            parsed.valid_end,
            len(data) - parsed.valid_end,
            parsed.torn,
        )
        os.ftruncate(fd, parsed.valid_end)
    if parsed.valid_end == 0:  # new file, or one a crash left before its first sync
        header = parsed.format.header
        write_all(fd, header)
        return parsed, True, writable, len(header)
    if parsed.torn is None and proven_durable(parsed):
        # A sync mark (or a frame's watermark) proves every record durable: a completed
        # sync covered them all, so there is nothing to sync (a journal closed cleanly, or
        # a sleeper unloaded: a recover() of 100,000 sleepers saves one fdatasync each).
        return parsed, False, writable, parsed.valid_end
    # A crashed writer may have left records it never synced in the page cache:
    # `records` promises durability, so make them durable before reporting them.
    sync_file(fd)
    if parsed.synced == 0:
        # Nothing proves a completed sync: the writer may have died before its first one,
        # which makes the directory entry durable too (new_entry). Do it here, before the
        # sync mark below claims the file synced: else a power loss takes the whole file,
        # with what this handle acknowledges. (Only after a crash: a closed file has a mark.)
        os.fsync(directory_fd)
    end = parsed.valid_end
    if writable and parsed.synced < parsed.records_end:
        mark = parsed.format.sync_mark(end)
        write_all(fd, mark)
        end += len(mark)
    return parsed, False, writable, end


class JournalFile:
    """An open journal: the one writer of its file until `close()`.

    `records` holds what was durable when it was opened. `write()` writes a record that
    becomes durable with the next `append()` or `flush()` (a crash of the process keeps it
    already; power loss may not); `append()` returns once the record is durable. A failed
    write or sync closes the handle to further appends: `JournalWriteError`, then reopen.
    Use from one event loop.
    """

    read_only = False

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
            fd, parsed, created, writable, end = _open_locked(directory_fd, path, names)
        except JournalMisplaced as misplaced:
            # Another file's journal at this name (see JournalMisplaced): keep it, aside,
            # and start the file afresh, as after a crash that left nothing of it.
            try:
                moved = move_aside(directory_fd, path)
            except OSError:
                raise misplaced from None
            logger.warning("journal %s: %s; moved aside to %s", path, misplaced, moved)
            fd, parsed, created, writable, end = _open_locked(directory_fd, path, names)
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
            fd = _lock(directory_fd, path, names=names)
        except JournalPermissionDenied as denied:
            if denied.path == path:
                return None  # (open_blocking may open it read-only)
            raise
        try:
            info = os.fstat(fd)
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
            write_all(fd, file_format.header)
        except BaseException as error:
            os.close(fd)
            if (failure := _disk_error(error, path, "writing a new journal's header")) is None:
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
            written=len(file_format.header),
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
            recovered = _recover(fd, path, True, directory_fd, may_sync=committer.syncs_are_fast())
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
            fd = self._target.fd if file is None else _reopen(directory_fd, path, file)
            try:
                return fd, parse(_read_all(fd), path)
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
