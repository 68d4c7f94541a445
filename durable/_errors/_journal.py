"""Storage trouble: every JournalError names the journal (.path) and what to do."""

from __future__ import annotations

from pathlib import Path

from ._base import DurableError


class JournalError(DurableError):
    """Trouble with one journal; `path` names it."""

    def __init__(self, message: str, *, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(message)


class InvalidJournalName(JournalError, ValueError):
    """A journal name that could escape its directory or is not a usable file name."""

    def __init__(self, *, name: str, directory: Path | str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(
            f"invalid journal name {name!r}: {reason}. Use 1-200 characters from letters, "
            "digits and . _ - : @ = +, not starting with '.'",
            path=directory,
        )


class JournalNotFound(JournalError, LookupError):
    """Reading a journal that does not exist."""

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(f"no journal at {path}; check the name and the directory", path=path)


class JournalLocked(JournalError):
    """Another writer, in this process or another, has the journal open."""

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(
            f"journal {path} is already open for writing by another runner (in this process "
            "or another one). A journal has one writer at a time: wait for that runner to "
            "finish or stop it, then open the journal again",
            path=path,
        )


class JournalCorrupted(JournalError):
    """Damage followed by valid records: not a torn write, so nothing is repaired."""

    def __init__(self, *, path: Path | str, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"journal {path} is corrupted at byte {offset}: {reason}. The file was left "
            "untouched. Restore it from a backup, or move it aside to start afresh; "
            "durable never skips damaged records silently",
            path=path,
        )


class JournalMisplaced(JournalError):
    """The file at a journal's (or inbox's) name holds another file's frames.

    Copied or renamed from another workflow's file, or the blocks of a deleted journal that
    a crash exposed in a file that never had a sync. A runner opening it moves it aside (to
    `<name>.misplaced`, logged) and starts the file afresh; readers report it.
    """

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(
            f"{path} holds frames written for another file (copied or renamed from another "
            "workflow's journal, or blocks of a deleted journal a crash exposed in a file "
            "that was never synced). Opening it for its workflow moves it aside to "
            f"{path}.misplaced; to run the workflow it belongs to, give it that one's name",
            path=path,
        )


class UnsupportedJournalFormat(JournalError):
    """A journal written by a newer durable than this one."""

    def __init__(self, *, path: Path | str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"journal {path} has format version {found}, but this durable reads versions up "
            f"to {supported}: upgrade durable to read it (the file was left untouched)",
            path=path,
        )


class RecordTooLarge(JournalError, ValueError):
    """A record over the journal's size limit; it was not written."""

    def __init__(self, *, path: Path | str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"a record of {size} bytes exceeds the {limit}-byte limit of journal {path}; "
            "nothing was written. Store large data elsewhere and journal a reference to it, "
            "or raise max_record_size",
            path=path,
        )


class JournalWriteError(JournalError):
    """A write or sync failed; the handle is unusable, records synced before stay readable."""

    def __init__(self, *, path: Path | str, operation: str, errno: int | None, detail: str) -> None:
        self.operation = operation
        self.errno = errno
        super().__init__(
            f"{operation} failed on journal {path}: {detail}. The handle is closed to further "
            "writes and records acknowledged before this stay readable; fix the cause (free "
            "disk space, check the device) and open the journal again to resume",
            path=path,
        )


class TooManyOpenJournals(JournalError, OSError):
    """A journal could not be opened: the open-file limit (EMFILE, ENFILE) is reached.

    Each workflow a runtime holds, sleeping ones too, keeps its journal open.
    """

    def __init__(self, *, path: Path | str, errno: int | None, limits: tuple[int, int]) -> None:
        self.errno = errno
        soft, hard = limits
        super().__init__(
            f"cannot open journal {path}: too many open files (the process may have {soft}, "
            f"at most {hard}). Each workflow a runtime holds keeps its journal open, sleeping "
            "ones included, so that no other runtime takes it: raise the limit (ulimit -Hn; "
            "LimitNOFILE= for a systemd service), or spread the workflows over processes",
            path=path,
        )


class JournalClosed(JournalError):
    """Using a journal handle after close()."""

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(f"journal {path} is closed; open it again to append", path=path)


class JournalFenced(JournalError):
    """This handle may no longer write its journal: its lease lapsed, or another took it.

    `lapsed` (with `silent_for`, seconds): this process did not renew the lease in time
    (a blocked event loop, a pause), and nobody may have claimed it since; the runtime then
    claims it again if it is free. Otherwise another runner claimed it (a newer fence).
    """

    def __init__(
        self, *, path: Path | str, fence: int, lapsed: bool = False, silent_for: float = 0.0
    ) -> None:
        self.fence = fence
        self.lapsed = lapsed
        if lapsed:
            message = (
                f"journal {path}: this runner's lease (fencing token {fence}) may have lapsed: "
                f"it was last renewed {silent_for:.1f} s ago, longer than the lease, for "
                "instance because the event loop was blocked (time.sleep or CPU work in an "
                "async activity or in workflow code: make such activities plain functions, "
                "which run in threads) or the process was paused. Nothing more is written "
                "from this handle; the workflow is claimed again if no other process took it"
            )
        else:
            message = (
                f"journal {path} was taken over by another runner: this runner's lease "
                f"(fencing token {fence}) expired, for instance while the process was paused "
                "or cut off from the database, and another process claimed it. Nothing more "
                "is written from here; the new owner resumes the workflow from its journal"
            )
        super().__init__(message, path=path)


class StoreUnavailable(JournalError):
    """The journal store cannot be reached or used (a database down, a wrong DSN, rights).

    `passing` is True when a store that answered before is away for now (a server restart,
    a dropped connection): the same call may work once it answers again, and what durable
    runs on its own (serve, resumed workflows) waits for it.
    """

    def __init__(self, *, path: Path | str, detail: str, hint: str, passing: bool = False) -> None:
        self.detail = detail
        self.passing = passing
        super().__init__(f"journal store {path}: {detail}. {hint}", path=path)


def store_away(error: BaseException) -> bool:
    """Whether `error` says the journal store is away for now (wait, then try again)."""
    return isinstance(error, StoreUnavailable) and error.passing


class JournalPermissionDenied(JournalError, PermissionError):
    """A journal file, inbox or the directory lacks a permission durable needs.

    `permission` says which ("read", "write", "read and write", "write and search" on a
    directory); `owner` and `mode` are the file's (None when it could not be examined),
    `uid` the user this process runs as.
    """

    def __init__(
        self,
        *,
        path: Path | str,
        permission: str,
        detail: str = "",
        owner: int | None = None,
        mode: int | None = None,
        uid: int | None = None,
    ) -> None:
        self.permission = permission
        self.owner = owner
        self.mode = mode
        self.uid = uid
        facts = []
        if uid is not None:
            facts.append(f"durable runs as uid {uid}")
        if owner is not None and mode is not None:
            facts.append(f"{path} is owned by uid {owner}, mode {mode & 0o7777:04o}")
        said = f" ({'; '.join(facts)})" if facts else ""
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"permission denied: durable needs {permission} permission on {path}{said}"
            f"{extra}. Nothing was written. Grant it (chmod, or chown to the user durable "
            "runs as), or run durable as the user that owns the directory",
            path=path,
        )


class UnsafeJournalFile(JournalError):
    """A symbolic link, directory, fifo, socket or device where a journal file belongs.

    durable opens nothing through a link and only regular files, so that no file outside
    the directory is ever read or written; `found` says what is there. Nothing was opened.
    """

    def __init__(self, *, path: Path | str, found: str, wanted: str = "a regular file") -> None:
        self.found = found
        super().__init__(
            f"{path} is {found}, not {wanted}: durable opens journal files only as "
            "regular files inside their directory, never through a link, so nothing was "
            "read or written. If you did not put it there, someone who can write to the "
            f"directory did: remove it (`rm {path}` removes a link, not its target), check "
            "the directory's other files and who can write to it, then run again",
            path=path,
        )


class UnsafeJournalDirectory(JournalError):
    """The journal directory can be written by other users: refused, as ssh refuses ~/.ssh.

    Whoever can write to it could replace a journal (forging recorded results, so steps are
    skipped or repeated), fill an inbox or plant links. `mode` and `owner` are the
    directory's, `uid` this process's user.
    """

    def __init__(self, *, path: Path | str, mode: int, owner: int, uid: int) -> None:
        self.mode = mode
        self.owner = owner
        self.uid = uid
        if owner not in (uid, 0):
            why = f"it is owned by uid {owner}, not by uid {uid} (this process) or root"
            fix = f"chown it to uid {uid}, or use a directory of your own"
        else:
            writers = {0o020: "its group", 0o002: "others", 0o022: "its group and others"}
            who = writers[mode & 0o022]
            why = f"it is writable by {who} (mode {mode & 0o7777:04o})"
            fix = f"`chmod go-w {path}` (then check its files), or use a directory of your own"
        super().__init__(
            f"journal directory {path} is not safe: {why}. Another user could replace "
            "journals (forging recorded results), fill inboxes or plant links there, so "
            f"durable refuses it, as ssh refuses a group-writable ~/.ssh. Nothing was opened. "
            f"Fix: {fix}; durable creates the directories it makes with mode 0700",
            path=path,
        )
