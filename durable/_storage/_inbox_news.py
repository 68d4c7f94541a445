"""The directory's news of inboxes: which workflows were sent something, as a log of names.

A runtime in another process learns of a message only by looking at the inbox files. Looking
at every inbox of every workflow it holds each second costs a stat per workflow: with
100,000 sleepers, a core. So a sender, once its message is durable in the inbox, appends the
workflow's name as one line to `.inbox-news` in the directory, and pollers read only what
was appended since they last looked, then look at those inboxes alone.

The news is a hint, never the message: it is not synced, and a line may be lost (a crash,
a compaction racing a sender, a sender of a durable version without news). Pollers
therefore still look at every inbox now and then (the mailroom says how often), and at
once whenever the news cannot be trusted (it shrank, it is not a regular file, too much
arrived). The file is read as hostile: at most NEWS_READ_LIMIT bytes a poll, names checked
by the caller's rule, never followed through a link.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable

logger = logging.getLogger("durable")

NEWS_FILE = ".inbox-news"
NEWS_READ_LIMIT = 1 << 20  # bytes read in one poll; more arrived: look at every inbox
COMPACT_AT = 1 << 20  # a news file this long is emptied (after which pollers look at all)
_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def announce(directory_fd: int, name: str) -> None:
    """Append `name` to the news (a hint: a failure is logged at debug level, not raised)."""
    try:
        fd = os.open(
            NEWS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _FLAGS, 0o600, dir_fd=directory_fd
        )
    except OSError as error:
        logger.debug("no inbox news written for %s: %s", name, error)
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.write(fd, name.encode() + b"\n")  # (one write: O_APPEND keeps lines whole)
    except OSError as error:
        logger.debug("no inbox news written for %s: %s", name, error)
    finally:
        os.close(fd)


def read_news(
    directory_fd: int | None, cursor: int | None, valid: Callable[[str], bool]
) -> tuple[list[str] | None, int]:
    """The names announced since byte `cursor`, and the cursor to pass next time.

    None instead of names: look at every inbox (the first poll, `cursor` None; the news
    shrank, is missing, is not a regular file, or more than NEWS_READ_LIMIT arrived; or it
    was just compacted). A line still being written is left for the next poll; lines that
    are not a valid name (by `valid`) are skipped.
    """
    if directory_fd is None:
        return None, 0
    try:
        fd = os.open(NEWS_FILE, os.O_RDWR | _FLAGS, dir_fd=directory_fd)
    except FileNotFoundError:
        return ([] if cursor == 0 else None), 0
    except OSError:
        return None, 0
    try:
        return _read_from(fd, cursor, valid)
    except OSError:
        return None, 0
    finally:
        os.close(fd)


def _read_from(
    fd: int, cursor: int | None, valid: Callable[[str], bool]
) -> tuple[list[str] | None, int]:
    info = os.fstat(fd)
    size = info.st_size
    if not stat.S_ISREG(info.st_mode):
        return None, 0
    if cursor is None or size < cursor or size - cursor > NEWS_READ_LIMIT:
        return None, _compacted(fd, size)
    data = os.pread(fd, size - cursor, cursor) if size > cursor else b""
    complete = data.rfind(b"\n") + 1
    names = []
    for line in data[:complete].split(b"\n")[:-1]:
        with contextlib.suppress(UnicodeDecodeError):
            name = line.decode()
            if valid(name):
                names.append(name)
    end = cursor + complete
    if end >= COMPACT_AT:
        return None, _compacted(fd, end)
    return names, end


def _compacted(fd: int, size: int) -> int:
    """Empty a long news file (the caller looks at every inbox next); the cursor then."""
    if size < COMPACT_AT:
        return size
    try:
        os.ftruncate(fd, 0)
    except OSError:
        return size
    return 0
