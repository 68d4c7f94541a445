"""A directory of journals: validated names -> paths, creation at 0700, listing, one committer.

Files are `<directory>/<name>.journal`, created 0600; the directory, when durable creates
it, 0700. All journals opened through one JournalDirectory share one GroupCommitter, which
is what lets 100 workflows share one sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errno_codes
import fcntl
import os
import re
import resource
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import anyio.to_thread

from .._errors import (
    InvalidJournalName,
    JournalClosed,
    JournalCorrupted,
    JournalError,
    JournalNotFound,
    JournalWriteError,
)
from . import _inbox as inbox
from ._descriptor_users import DescriptorUsers
from ._file_io import sync_file, write_all
from ._format import new_format
from ._frames import DEFAULT_MAX_RECORD_SIZE, StoredRecord
from ._group_commit import DEFAULT_BUDGET, GroupCommitter, SyncMode
from ._id_locks import IdLocks
from ._inbox import INBOX_SUFFIX, Refusal
from ._inbox_news import announce, read_news
from ._interface import (
    DEFAULT_INBOX_MAX_BYTES,
    DEFAULT_INBOX_MAX_MESSAGES,
    Journal,
    check_inbox_bounds,
)
from ._journal_file import JournalFile
from ._journal_opening import parse
from ._opening import (
    NEW_FLAGS,
    check_regular,
    open_directory,
    open_in,
    permission_denied,
    read_regular,
    reading,
)
from ._pages import Cursor, Page, read_page

SUFFIX = ".journal"
MAX_NAME_LENGTH = 200
_NAME = re.compile(r"[A-Za-z0-9_\-:@=+][A-Za-z0-9._\-:@=+]*")


def _is_journal_name(name: str) -> bool:
    """Whether `name` is one validate_name accepts (for names read from files)."""
    return 0 < len(name) <= MAX_NAME_LENGTH and ".." not in name and bool(_NAME.fullmatch(name))


def validate_name(name: str, directory: Path | str) -> str:
    """Refuse names that could escape the directory or are not portable file names."""
    if not isinstance(name, str):
        raise InvalidJournalName(name=repr(name), directory=directory, reason="not a string")
    if not name:
        reason = "it is empty"
    elif len(name) > MAX_NAME_LENGTH:
        reason = f"it is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    elif "/" in name or "\\" in name or "\0" in name:
        reason = "it contains a path separator"
    elif ".." in name:
        reason = "it contains '..'"
    elif _NAME.fullmatch(name) is None:
        reason = "it contains a character outside the allowed set, or starts with '.'"
    else:
        return name
    raise InvalidJournalName(name=name, directory=directory, reason=reason)


def _read_records(directory_fd: int, path: Path) -> list[StoredRecord]:
    """A journal's records, read without a lock while its writer may be at work.

    A read that overlaps a recovery (the writer cuts a torn tail, then appends and syncs)
    can hold the old tail's bytes and, after them, new frames whose watermark covers that
    offset: damage a sync covered, as far as those bytes go. Damage is believed only when
    a second read finds the very same bytes.
    """
    data = read_regular(directory_fd, path)
    for _ in range(3):
        try:
            return parse(data, path).records
        except JournalCorrupted:
            again = read_regular(directory_fd, path)
            if again == data:
                raise
            data = again
    return parse(data, path).records


def _read_one(directory_fd: int | None, path: Path) -> list[StoredRecord] | JournalError:
    """One journal's records for a listing, or why it cannot be read (not raised)."""
    try:
        if directory_fd is None:
            raise FileNotFoundError(path)
        return _read_records(directory_fd, path)
    except FileNotFoundError:
        return JournalNotFound(path=path)
    except JournalError as error:
        return error


def _create_next(directory_fd: int, fresh: Path) -> int:
    """Create a rotation's next generation: a new file (O_EXCL), never through a link.

    A regular file there is an earlier rotation's, which a crash stopped before its rename
    (the journal still names the old generation): removed. Anything else is refused.
    """
    try:
        return open_in(directory_fd, fresh, NEW_FLAGS, "read and write")
    except FileExistsError:
        pass
    check_regular(os.stat(fresh.name, dir_fd=directory_fd, follow_symlinks=False), fresh)
    os.unlink(fresh.name, dir_fd=directory_fd)
    return open_in(directory_fd, fresh, NEW_FLAGS, "read and write")


def _keep_previous(directory_fd: int, name: str) -> None:
    """Link the current generation as `<name>.prev` (through `.prev.tmp`: one atomic rename).

    link, unlink and rename act on names, never through links: a link planted at either
    name is replaced, not followed.
    """
    linking = name + ".prev.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(linking, dir_fd=directory_fd)
    os.link(name, linking, src_dir_fd=directory_fd, dst_dir_fd=directory_fd, follow_symlinks=False)
    os.replace(linking, name + ".prev", src_dir_fd=directory_fd, dst_dir_fd=directory_fd)


def _rotation_error(error: OSError, path: Path, step: str) -> JournalError:
    """A failed rotation step as a durable error: the directory's permission, or the disk."""
    if error.errno in (errno_codes.EACCES, errno_codes.EPERM, errno_codes.EROFS):
        return permission_denied(
            path.parent, "write and search (w and x)", f"for {step}", _stat_or_none(path.parent)
        )
    return JournalWriteError(
        path=path, operation=step, errno=error.errno, detail=error.strerror or str(error)
    )


def allow_open_files_to_the_hard_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit.

    Each workflow a runtime runs keeps its journal's descriptor (an unloaded sleeper only
    where name locks are missing: see _id_locks), and the name locks take up to 1,024, past
    the soft limit of 1,024 many systems start processes with. The hard limit is the one the
    administrator meant; the soft one is kept low for select(), which durable never uses.
    Go's runtime does the same at start-up (go.dev/issue/46279).
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError):  # (a sandbox that refuses: the soft limit stays)
        pass


def _version_of(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of a file, which a repair or a replacement changes."""
    info = _stat_or_none(path)
    return None if info is None else (info.st_ino, info.st_size, info.st_mtime_ns)


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _next_generation(  # noqa: PLR0917 (what a rotation writes, and where)
    directory_fd: int,
    device: int,
    committer: GroupCommitter,
    path: Path,
    first_payload: bytes,
    max_record_size: int,
) -> JournalFile:
    """Blocking: write and sync `path`'s next generation, rename it over the name; its handle."""
    fresh = path.with_name(path.name + ".next")
    fd = _create_next(directory_fd, fresh)
    step, swapped = f"writing the next generation {fresh.name}", False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        file_format = new_format(path)
        header = file_format.header
        first_frame = file_format.frame(first_payload, 0)
        write_all(fd, header + first_frame)
        sync_file(fd)
        step = f"keeping the previous generation as {path.name}.prev"
        _keep_previous(directory_fd, path.name)
        step = f"renaming {fresh.name} over {path.name}"
        os.replace(fresh.name, path.name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
        swapped, step = True, "fsync of the directory (the rename)"
        os.fsync(directory_fd)
    except BaseException as error:
        os.close(fd)
        if not swapped:  # the old generation stays the journal: drop the new one
            with contextlib.suppress(OSError):
                os.unlink(fresh.name, dir_fd=directory_fd)
        if isinstance(error, OSError) and not isinstance(error, JournalError):
            raise _rotation_error(error, path, step) from error
        raise
    return JournalFile(
        path=path,
        fd=fd,
        records=[StoredRecord(len(header), first_payload)],
        committer=committer,
        same_device=os.fstat(fd).st_dev == device,
        max_record_size=max_record_size,
        file_format=file_format,
        written=len(header) + len(first_frame),
        synced=len(header) + len(first_frame),
    )


async def _to_the_end(blocking: Callable[[], JournalFile]) -> JournalFile:
    """Run `blocking` (an open or a rotation) in a worker thread, to its end.

    A worker thread cannot be stopped, and a cancelled `anyio.to_thread.run_sync` returns at
    once while it runs on: an open would leave its journal locked by a handle nobody has (the
    workflow then "already running" in this process), a rotation would go on renaming files
    after the runtime closed. So a cancellation waits for the thread, gives back the journal
    it opened, and only then propagates.
    """
    call = asyncio.ensure_future(anyio.to_thread.run_sync(blocking))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        while not call.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([call])
        if not call.cancelled() and call.exception() is None:
            await call.result().abandon()
        raise


class JournalDirectory:
    """The file store: one journal file per name in one directory.

    Args:
        path: the directory; created (0700, with missing parents) on first open.
        max_record_size: the largest payload accepted, in bytes (default 64 MiB).
        sync: "auto" (default), "fdatasync" or "syncfs"; see GroupCommitter.
        inline_sync_budget: seconds (default 0.002); syncs run on the event loop's thread
            while recent syncs took less (see GroupCommitter). 0 always uses the sync thread.
        inbox_max_messages: each inbox's bound on the messages its runner has not taken yet
            (default 10,000); a send past it is refused with InboxFull.
        inbox_max_bytes: the same bound in bytes (default 128 MiB).

    Use `async with JournalDirectory(path) as store:` or call `close()` when done.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        sync: SyncMode = "auto",
        inline_sync_budget: float = DEFAULT_BUDGET,
        inbox_max_messages: int = DEFAULT_INBOX_MAX_MESSAGES,
        inbox_max_bytes: int = DEFAULT_INBOX_MAX_BYTES,
    ) -> None:
        check_inbox_bounds(inbox_max_messages, inbox_max_bytes)
        self.path = Path(path)
        self.max_record_size = max_record_size
        self.inbox_max_messages = inbox_max_messages
        self.inbox_max_bytes = inbox_max_bytes
        self._sync_mode: SyncMode = sync
        self._inline_sync_budget = inline_sync_budget
        self._directory_fd: int | None = None
        self._directory_device = -1
        self._committer: GroupCommitter | None = None
        self._names: IdLocks | None = None  # (the locks on journal names: see _id_locks)
        self._on_sync: Callable[[float, int], None] | None = None  # (observe_syncs)
        self._opened: weakref.WeakSet[JournalFile] = weakref.WeakSet()
        self._closed = False
        self._descriptor_users = DescriptorUsers()  # (threads using _directory_fd: see close)
        # Locations are built as text from this (the directory and its separator): no Path
        # and no os.path.join per call.
        self._prefix = os.path.join(str(self.path), "")
        # Journals serve() could not read, with their file's version then (set_aside).
        self._set_aside: dict[str, tuple[int, int, int] | None] = {}

    def check_name(self, name: str) -> None:
        """Refuse a name that could escape the directory (InvalidJournalName)."""
        validate_name(name, self.path)

    def location(self, name: str) -> str:
        """The journal's path, for messages."""
        return self._prefix + validate_name(name, self.path) + SUFFIX

    def _inbox_file(self, name: str) -> str:
        """The file name of journal `name`'s inbox (validated), relative to the directory.

        Text, not a Path: the inbox poll asks for every workflow of a runtime each second,
        and a Path with its suffix swapped costs ~8 us, a name ~1 us.
        """
        return validate_name(name, self.path) + INBOX_SUFFIX

    async def candidates(self, limit: int) -> list[str]:
        """Every journal but those set aside and unchanged since.

        (Runtime.serve skips the finished ones and those held.)
        """
        names = await self.list()
        if self._set_aside:
            names = [name for name in names if not self._still_set_aside(name)]
        return names[:limit] if limit else names

    async def set_aside(self, name: str, reason: str) -> None:
        """serve() could not read journal `name`: candidates() skips it while unchanged.

        A person repairing or replacing the file changes it.
        """
        self._set_aside[name] = _version_of(self.path_of(name))

    def _still_set_aside(self, name: str) -> bool:
        if name not in self._set_aside:
            return False
        if self._set_aside[name] == _version_of(self.path_of(name)):
            return True
        del self._set_aside[name]
        return False

    async def wait_for_work(self, longest: float) -> None:
        """A directory cannot tell: wait `longest` seconds (serve's poll interval)."""
        await asyncio.sleep(longest)

    def may_have_mail(self, name: str) -> bool:
        """Whether the inbox file has anything (a stat on this thread: no thread hop).

        Asked at every pull of a running workflow: by name, relative to the directory.
        """
        return inbox.size_of(self._directory_fd, self.path, self._inbox_file(name)) > 0

    def observe_syncs(self, observer: Callable[[float, int], None]) -> None:
        """Tell `observer` of each sync from now on: seconds, appends it made durable."""
        self._on_sync = observer
        if self._committer is not None:
            self._committer.on_sync = observer

    def path_of(self, name: str) -> Path:
        """The file of journal `name` (validated)."""
        return self.path / (validate_name(name, self.path) + SUFFIX)

    def _prepare(self) -> tuple[int, int, GroupCommitter]:
        """Blocking: create the directory and the committer on first use."""
        if self._closed:
            raise JournalClosed(path=self.path)
        if self._directory_fd is None or self._committer is None:
            fd = open_directory(self.path, create=True)  # (refused if others can write it)
            allow_open_files_to_the_hard_limit()
            self._directory_device = os.fstat(fd).st_dev
            self._committer = GroupCommitter(
                fd, mode=self._sync_mode, inline_budget=self._inline_sync_budget
            )
            self._committer.on_sync = self._on_sync
            self._names = IdLocks(fd)
            self._directory_fd = fd
        return self._directory_fd, self._directory_device, self._committer

    def _open_blocking(self, path: Path) -> JournalFile:
        with self._descriptor_users.use(path):
            directory_fd, device, committer = self._prepare()
            return JournalFile.open_blocking(
                path,
                directory_fd=directory_fd,
                directory_device=device,
                committer=committer,
                max_record_size=self.max_record_size,
                names=self._names,
            )

    async def open(self, name: str) -> JournalFile:
        """Open journal `name` for appending, creating it if needed.

        A torn final frame (a crash mid-append) is truncated away and logged.

        Raises:
            InvalidJournalName: the name could escape the directory.
            JournalLocked: another writer has it open, in this process or another.
            JournalCorrupted: damage before valid records; the file is left untouched.
            UnsupportedJournalFormat: written by a newer durable.
        """
        path = self.path_of(name)
        journal = self._open_here(path)
        if journal is not None:
            return journal
        journal = await _to_the_end(lambda: self._open_blocking(path))
        if self._closed:  # closed while this open ran: its committer is gone
            await journal.abandon()
            raise JournalClosed(path=path)
        journal.loop = asyncio.get_running_loop()
        self._opened.add(journal)
        return journal

    def open_now(self, name: str) -> JournalFile | None:
        """open() on the calling thread, when it can be: a new journal, or a small one.

        None: it needs a worker thread (a large or damaged file, a read-only one, the
        directory's first open); call open(), which raises what that finds. A workflow's
        start takes its journal here without a task switch or a thread hop.

        Raises:
            As open(): JournalLocked, InvalidJournalName, and errors of the file or disk.
        """
        return self._open_here(self.path_of(name))

    def _open_here(self, path: Path) -> JournalFile | None:
        if self._closed:
            raise JournalClosed(path=path)
        directory_fd = self._directory_fd
        if self._committer is None or directory_fd is None:  # (_prepare, in a thread)
            return None
        journal = JournalFile.create_if_new(
            path,
            directory_fd=directory_fd,
            directory_device=self._directory_device,
            committer=self._committer,
            max_record_size=self.max_record_size,
            names=self._names,
        )
        if journal is not None:
            journal.loop = asyncio.get_running_loop()
            self._opened.add(journal)
        return journal

    async def read(self, name: str) -> list[StoredRecord]:
        """The records in journal `name` now, without locking or modifying it.

        Safe while a writer appends: a partial final frame is an append in progress and is
        left out, not truncated. A live writer's records may not be durable yet; `open()`
        makes what it reports durable.

        Raises:
            JournalNotFound: there is no such journal.
            JournalCorrupted: damage before valid records.
            UnsafeJournalFile: a link or a special file at its name (never followed).
            JournalPermissionDenied: it, or the directory, is not readable.
        """
        path = self.path_of(name)

        def blocking() -> list[StoredRecord]:
            with reading(self.path, None) as directory_fd:
                try:
                    if directory_fd is None:
                        raise FileNotFoundError(path)
                    return _read_records(directory_fd, path)
                except FileNotFoundError:
                    raise JournalNotFound(path=path) from None

        return await anyio.to_thread.run_sync(blocking)

    async def read_page(self, name: str, cursor: Cursor, max_bytes: int) -> Page:
        """Journal `name`'s records from `cursor`, about `max_bytes` of them (see _pages).

        Raises:
            JournalNotFound: there is no such journal.
            JournalCorrupted: damage before valid records.
            UnsafeJournalFile, JournalPermissionDenied: as read().
        """
        path = self.path_of(name)

        def blocking() -> Page:
            with reading(self.path, None) as directory_fd:
                try:
                    if directory_fd is None:
                        raise FileNotFoundError(path)
                    return read_page(directory_fd, path, cursor, max_bytes)
                except FileNotFoundError:
                    raise JournalNotFound(path=path) from None

        return await anyio.to_thread.run_sync(blocking)

    async def read_many(self, names: list[str]) -> dict[str, list[StoredRecord] | JournalError]:
        """The records of several journals, read in one worker thread (for listings).

        Like read(), without locks; a journal that cannot be read maps to its error
        (JournalNotFound if it went away meanwhile, JournalCorrupted, UnsafeJournalFile,
        JournalPermissionDenied), not raised.
        """
        paths = {name: self.path_of(name) for name in names}

        def blocking() -> dict[str, list[StoredRecord] | JournalError]:
            found: dict[str, list[StoredRecord] | JournalError] = {}
            with reading(self.path, None) as directory_fd:
                for name, path in paths.items():
                    found[name] = _read_one(directory_fd, path)
            return found

        return await anyio.to_thread.run_sync(blocking)

    async def rotate(self, journal: Journal, first_payload: bytes) -> JournalFile:
        """Replace a journal by a new generation that holds `first_payload`; its handle.

        The new file is written and synced under its own lock, then renamed over the old
        one, so the name always points at a complete, locked generation and a crash leaves
        either. The old generation stays as `<name>.journal.prev` (one kept, for reading);
        `journal` is closed.
        """
        if not isinstance(journal, JournalFile):
            raise TypeError(f"not a journal of this directory: {journal!r}")
        if journal.closed:
            raise JournalClosed(path=journal.path)
        path = journal.path

        def named() -> JournalFile:
            with self._descriptor_users.use(path):
                directory_fd, device, committer = self._prepare()
                rotated = _next_generation(
                    directory_fd, device, committer, path, first_payload, self.max_record_size
                )
                names = self._names
                if names is not None:
                    # (the name's lock, if `journal` holds it: a second hold, counted)
                    held = journal.holds_name and names.acquire(path.name)
                    rotated.use_names(names, directory_fd, held=held)
                return rotated

        await journal.flush()
        rotated = await _to_the_end(named)
        if self._closed:  # closed while it ran: the new generation is the journal now
            await rotated.abandon()  # (its one record is durable; the next open reads it)
            raise JournalClosed(path=path)
        rotated.loop = asyncio.get_running_loop()
        self._opened.add(rotated)
        try:
            await journal.close()
        except BaseException:
            await rotated.abandon()  # (its one record is durable; the next open reads it)
            raise
        return rotated

    async def post(self, name: str, payload: bytes, refuse: Refusal | None = None) -> int:
        """Append a message to journal `name`'s inbox, durably; its position in the inbox.

        Anyone may post, in this process or another, while the journal's writer runs.

        Raises:
            InvalidJournalName: the name could escape the directory.
            DurableError: whatever `refuse` returns, given the messages already there
                (nothing written).
            OSError: the disk refused the append or its sync.
        """
        path = self.path_of(name).with_suffix(INBOX_SUFFIX)

        def blocking() -> int:
            with self._descriptor_users.use(path):
                directory_fd, _, _ = self._prepare()
                position = inbox.post(path, payload, directory_fd, refuse)
                announce(directory_fd, name)  # (once durable: pollers elsewhere look at it)
                return position

        return await anyio.to_thread.run_sync(blocking)

    async def inbox_news(self, cursor: int | None) -> tuple[list[str] | None, int]:
        """The journals whose inboxes were posted to since `cursor`; the next cursor.

        None instead of names: look at every inbox (first call, lost track): see
        _inbox_news. Names may repeat, and name journals that are not yours.
        """

        def blocking() -> tuple[list[str] | None, int]:
            with reading(self.path, None) as directory_fd:
                return read_news(directory_fd, cursor, _is_journal_name)

        return await anyio.to_thread.run_sync(blocking)

    async def inbox(self, name: str, first: int = 0) -> list[StoredRecord]:
        """The messages in journal `name`'s inbox from position `first` on."""
        path = self.path_of(name).with_suffix(INBOX_SUFFIX)

        def blocking() -> list[StoredRecord]:
            with reading(self.path, None) as directory_fd:
                return inbox.read_from(directory_fd, path, first)

        return await anyio.to_thread.run_sync(blocking)

    async def inbox_sizes(self, names: list[str]) -> dict[str, int]:
        """The size in bytes of each inbox (-1: none yet): one cheap poll for news."""
        files = {name: self._inbox_file(name) for name in names}
        size_of, directory = inbox.size_of, self.path

        def blocking() -> dict[str, int]:
            with reading(self.path, None) as directory_fd:
                return {
                    name: size_of(directory_fd, directory, file) for name, file in files.items()
                }

        return await anyio.to_thread.run_sync(blocking)

    async def list(self) -> list[str]:
        """The names of the journals in the directory, sorted."""

        def names() -> list[str]:
            try:
                entries = os.listdir(self.path)
            except FileNotFoundError:
                return []
            return sorted(
                entry[: -len(SUFFIX)]
                for entry in entries
                if entry.endswith(SUFFIX) and _NAME.fullmatch(entry[: -len(SUFFIX)])
            )

        return await anyio.to_thread.run_sync(names)

    async def close(self) -> None:
        """Close the journals still open here (making them durable), then stop the sync thread.

        Raises:
            JournalWriteError: a journal still open could not be made durable; the others
                were closed all the same.
        """
        loop = asyncio.get_running_loop()
        still_open = [journal for journal in self._opened if not journal.closed]
        elsewhere = [journal for journal in still_open if journal.loop is not loop]
        if elsewhere:
            raise JournalError(
                f"cannot close {self.path}: journal {elsewhere[0].path} is still open on "
                "another event loop; close it there first",
                path=self.path,
            )
        self._closed = True
        outcomes = await asyncio.gather(
            *(journal.close() for journal in still_open), return_exceptions=True
        )
        # (an open, rotation or post still in its worker thread uses the descriptor and the
        # committer: let it end first; what it opened, its caller gives back, seeing _closed)
        await anyio.to_thread.run_sync(self._descriptor_users.close)
        committer, self._committer = self._committer, None
        directory_fd, self._directory_fd = self._directory_fd, None
        if committer is not None:
            await anyio.to_thread.run_sync(committer.stop)
        names, self._names = self._names, None
        if names is not None:
            names.close()
        if directory_fd is not None:
            os.close(directory_fd)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def __aenter__(self) -> JournalDirectory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
