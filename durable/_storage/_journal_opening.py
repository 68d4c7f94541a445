"""Opening a journal file: its locks, the read and recovery of its tail, a sleeper's reopening.

The flock (and a check of the name lock an unloaded sleeper's runtime holds), the read and
the recovery of the tail, and the reopening of the very file a sleeper left; JournalFile
(`_journal_file`) is what an open journal does after this. Blocking: callers run these in a
worker thread, or inline for a small file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from typing import overload

from .._errors import (
    JournalCorrupted,
    JournalError,
    JournalLocked,
    JournalPermissionDenied,
    JournalWriteError,
    UnsafeJournalFile,
)
from .._gc_pause import collector_paused
from ._file_io import sync_file, write_all
from ._format import Parsed
from ._format import parse as parse_bytes
from ._id_locks import IdLocks, hostile
from ._opening import (
    READ_FLAGS,
    WRITE_FLAGS,
    check_regular,
    open_in,
    permission_denied,
    translate,
)

logger = logging.getLogger("durable.storage")


def read_all(fd: int) -> bytes:
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


def open_and_lock(
    directory_fd: int, path: Path, flags: int = WRITE_FLAGS, names: IdLocks | None = None
) -> int:
    """open_and_lock_stat, without the file's stat."""
    return open_and_lock_stat(directory_fd, path, flags, names)[0]


def open_and_lock_stat(
    directory_fd: int, path: Path, flags: int = WRITE_FLAGS, names: IdLocks | None = None
) -> tuple[int, os.stat_result]:
    """Open `path` in the directory (never through a link) and take its exclusive flock.

    Then, with `names`, check that no runner holds the journal's name lock: an unloaded
    sleeper's runtime holds the name alone, its descriptor closed (see _id_locks).

    The lock is on the file opened, and the name may have moved on meanwhile: between the
    open and the flock, a runner's continue_as_new may rename the next generation over
    the name and let go of the old file. A lock on that old file would make a second
    writer, so the descriptor must still be the file at the name once locked; else again.
    Returns the descriptor and the open file's stat (taken once locked).
    """
    while True:
        fd = open_in(directory_fd, path, flags, "read and write")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = _still_named(fd, directory_fd, path)
            if held is not None:
                if names is not None and _name_taken(names, directory_fd, path):
                    raise BlockingIOError
                return fd, held
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


def _still_named(fd: int, directory_fd: int, path: Path) -> os.stat_result | None:
    """The open file `fd`'s stat if it is the one at `path`'s name in the directory now."""
    held = os.fstat(fd)
    try:
        named = os.stat(path.name, dir_fd=directory_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return held if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino) else None


def reopen_same_file(directory_fd: int, path: Path, file: tuple[int, int]) -> int:
    """A suspended journal's file, opened and flocked again: it must be `file` still.

    Its runtime holds the name's lock, so an opener that takes the flock lets go of it at
    once (it checks the name next): try again for a while. A flock held longer is a
    process that does not take name locks (JournalLocked: it has the workflow now).
    """
    pause = 0.001
    while True:
        try:
            fd = open_and_lock(directory_fd, path, WRITE_FLAGS & ~os.O_CREAT)
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


def disk_error(error: BaseException, path: Path, operation: str) -> JournalWriteError | None:
    """A plain OSError (ENOSPC, EIO) while opening as JournalWriteError (None: keep `error`)."""
    if not isinstance(error, OSError) or isinstance(error, JournalError):
        return None
    detail = error.strerror or str(error)
    return JournalWriteError(path=path, operation=operation, errno=error.errno, detail=detail)


# Seconds (about) a waking sleeper tries to take its flock back (see reopen_same_file).
REOPEN_PATIENCE = 1.0
# Journals up to this size are opened on the loop's thread (see JournalFile._opened_here).
INLINE_OPEN_MAX = 64 * 1024


def open_locked(
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
        fd = open_and_lock(directory_fd, path, names=names)
    except JournalPermissionDenied as denied:
        if denied.path != path:  # (the directory's permission, to create the file)
            raise
        try:
            fd = open_and_lock(directory_fd, path, READ_FLAGS, names)
        except (JournalPermissionDenied, FileNotFoundError):
            raise denied from None
        writable = False
    try:
        check_regular(os.fstat(fd), path)
        return (fd, *recover_file(fd, path, writable, directory_fd))
    except BaseException as error:
        os.close(fd)
        if (failure := disk_error(error, path, "opening (recovery, header or sync)")) is None:
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
def recover_file(
    fd: int, path: Path, writable: bool, directory_fd: int
) -> tuple[Parsed, bool, bool, int]: ...
@overload
def recover_file(
    fd: int, path: Path, writable: bool, directory_fd: int, *, may_sync: bool
) -> tuple[Parsed, bool, bool, int] | None: ...
def recover_file(
    fd: int, path: Path, writable: bool, directory_fd: int, *, may_sync: bool = True
) -> tuple[Parsed, bool, bool, int] | None:
    """Blocking: read, cut a torn tail, sync what is there (the rest of open_locked).

    None, with the file untouched, if it needs more than a read and `may_sync` is False.
    """
    data = read_all(fd)
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
