"""The catalog's descriptions kept on disk between processes: `<directory>/.catalog-index`.

A cache, never a source of truth: each entry is a journal's description with the version
(device, inode, size, mtime of its journal and inbox) it was made from, and a reader uses
it only while the files still have that version; anything else is read from the journal
again. So it is consistent with the journals by construction, whoever writes them, and a
missing, stale, damaged or forged index costs time, never a wrong answer a journal could
not give too (whoever can write the directory can write journals). A cold `durable list`
over 100,000 journals then stats them instead of decoding them (see benchmarks/query.py).

Written by a catalog after a listing that decoded many journals, atomically (a new file
renamed over the old), best effort: a directory the reader may not write keeps no index.
Knows nothing of the catalog; bounded on read like any file of the directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

from ._encoding import decode, encode
from ._engine._describe import WorkflowDescription, WorkflowState
from ._engine._records import moment
from ._errors import DurableError
from ._storage._opening import reading

logger = logging.getLogger("durable")

INDEX_NAME = ".catalog-index"
INDEX_VERSION = 1
INDEX_MAX_BYTES = 1 << 30  # a larger file is not read (and not written)
WRITE_AFTER = 1_000  # journals decoded by one listing before it is worth writing the index
LOAD_AFTER = 100  # journals a listing looks at before it is worth reading the index
Kept = dict[str, tuple[tuple[int, ...], WorkflowDescription]]
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_STATES = {str(state): state for state in WorkflowState}


def _time(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def to_row(version: tuple[int, ...], described: WorkflowDescription) -> list[Any]:
    d = described
    return [
        d.workflow_id,
        list(version),
        d.workflow_name,
        str(d.state),
        d.status,
        d.generation,
        d.steps,
        d.current,
        d.attempt,
        d.waiting_for,
        _time(d.wake_at),
        d.started.timestamp(),
        d.updated.timestamp(),
        _time(d.ended),
        d.error,
        d.parent,
        d.unread_events,
        d.skipped_messages,
        d.last_skip,
        _time(d.deadline),
    ]


def _bad_row(row: list[Any]) -> bool:  # noqa: PLR0911 (one return a check)
    """Whether a row is not an entry (straight-line checks: 100,000 rows load in a second)."""
    (name, version, wf, state, _, gen, steps, current, attempt, waiting_for, wake_at,
     started, updated, ended, error, parent, unread, skipped, last_skip, deadline) = row  # fmt: skip  # noqa: E501
    if type(name) is not str or type(wf) is not str or state not in _STATES:
        return True
    if type(version) is not list or len(version) != 8:
        return True
    for part in version:
        if type(part) is not int:
            return True
    for text in (current, waiting_for, error, parent, last_skip):
        if text is not None and type(text) is not str:
            return True
    for count in (gen, steps, unread, skipped):
        if type(count) is not int or count < 0:
            return True
    if attempt is not None and type(attempt) is not int:
        return True
    if type(started) is not float or type(updated) is not float:
        return True
    for moment_ in (wake_at, ended, deadline):
        if moment_ is not None and type(moment_) is not float and type(moment_) is not int:
            return True
    return False


def from_row(row: Any) -> tuple[str, tuple[int, ...], WorkflowDescription] | None:
    """An entry back, or None if it is not one (then the whole index is not trusted)."""
    if type(row) is not list or len(row) != 20 or _bad_row(row):
        return None
    (name, version, wf, state, status, gen, steps, current, attempt, waiting_for, wake_at,
     started, updated, ended, error, parent, unread, skipped, last_skip, deadline) = row  # fmt: skip  # noqa: E501
    described = WorkflowDescription(
        workflow_id=name,
        workflow_name=wf,
        state=_STATES[state],
        status=status,
        generation=gen,
        steps=steps,
        current=current,
        attempt=attempt,
        waiting_for=waiting_for,
        wake_at=None if wake_at is None else moment(wake_at),
        started=moment(started),
        updated=moment(updated),
        ended=None if ended is None else moment(ended),
        error=error,
        parent=parent,
        unread_events=unread,
        skipped_messages=skipped,
        last_skip=last_skip,
        deadline=None if deadline is None else moment(deadline),
    )
    return name, tuple(version), described


def load(directory: Path) -> Kept:  # noqa: PLR0911 (each way an index is not one)
    """The kept descriptions (blocking); {} when there is no index, or it cannot be trusted."""
    path = directory / INDEX_NAME
    try:
        with reading(directory, None) as directory_fd:
            if directory_fd is None:
                return {}
            fd = os.open(INDEX_NAME, _FLAGS, dir_fd=directory_fd)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode) or info.st_size > INDEX_MAX_BYTES:
                    return {}
                data = b""
                while chunk := os.read(fd, 1 << 24):
                    data += chunk
            finally:
                os.close(fd)
        found = decode(data, path=path, offset=0)
    except (OSError, DurableError, RecursionError):
        return {}  # (none yet, not ours to read, damaged: read the journals instead)
    if not isinstance(found, dict) or found.get("v") != INDEX_VERSION:
        return {}
    rows = found.get("rows")
    if not isinstance(rows, list):
        return {}
    kept: Kept = {}
    for row in rows:
        entry = from_row(row)
        if entry is None:
            logger.debug("%s: an entry is not one; the index is ignored", path)
            return {}
        kept[entry[0]] = (entry[1], entry[2])
    return kept


def save(directory: Path, kept: Kept) -> bool:  # noqa: PLR0911 (each way a write fails)
    """Write the index (blocking), atomically; False if it could not be (nothing changed)."""
    try:
        data = encode(
            {"v": INDEX_VERSION, "rows": [to_row(v, d) for v, d in kept.values() if len(v) == 8]},
            context="the catalog's index",
        )
    except DurableError:
        return False  # (a status the index cannot hold: the journals stay the source)
    if len(data) > INDEX_MAX_BYTES:
        return False
    fresh = f"{INDEX_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        with reading(directory, None) as directory_fd:
            if directory_fd is None:
                return False
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(fresh, flags, 0o600, dir_fd=directory_fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(fresh, dir_fd=directory_fd)
                return False
            os.close(fd)  # (no sync: a cache a crash may lose or tear, which load() refuses)
            try:
                os.rename(fresh, INDEX_NAME, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(fresh, dir_fd=directory_fd)
                return False
    except OSError:
        return False  # (a directory this reader may not write: no index, as before)
    return True
