"""Every exception durable raises on purpose, in one tree.

This module is a leaf: it imports nothing from durable, so every layer can use it.

    DurableError                      anything durable raises on purpose
      SerializationError (TypeError)  a value msgpack cannot carry
      JournalError                    storage trouble; .path names the journal
        InvalidJournalName (ValueError)
        JournalNotFound (LookupError)
        JournalLocked                 another writer holds the journal
        JournalCorrupted              bad bytes before valid data; .offset
        UnsupportedJournalFormat      written by a newer durable
        RecordTooLarge (ValueError)
        JournalWriteError             write or sync failed (ENOSPC, EIO); .errno
        JournalClosed                 the handle was closed

Constructors take facts keyword-only, keep them as attributes and build a message that says
what happened and what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class DurableError(Exception):
    """Root of everything durable raises on purpose."""


class SerializationError(DurableError, TypeError):
    """A value cannot be encoded for the journal; nothing was written."""

    def __init__(self, *, value_type: str, context: str, detail: str = "") -> None:
        self.value_type = value_type
        self.context = context
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"cannot store a value of type {value_type} in {context}{extra}: journal records "
            "hold None, bool, int, float, str, bytes, list, tuple and dict; convert the value "
            "to one of those first"
        )


class JournalError(DurableError):
    """Trouble with one journal; `path` names it."""

    def __init__(self, message: str, *, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(message)


class InvalidJournalName(JournalError, ValueError):
    """A journal name that could escape its directory or is not a usable file name."""

    def __init__(self, *, name: str, directory: Path | str, reason: str) -> None:
        self.name = name
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


class JournalClosed(JournalError):
    """Using a journal handle after close()."""

    def __init__(self, *, path: Path | str) -> None:
        super().__init__(f"journal {path} is closed; open it again to append", path=path)
