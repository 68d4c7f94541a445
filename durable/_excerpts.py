"""A few lines of a workflow's source around a call site, for people reading its history.

The file and line come from a journal's `site` record (`durable show --source`, the web
UI). A journal is data, so the path it names is not trusted further than this: only a
regular `.py` file is read (no link at its name, no fifo, no device), at most MAX_FILE
bytes of it, and only a few lines are returned. When the source is not there (another
machine, a deploy since) there is no excerpt, just the file:line. A leaf.
"""

from __future__ import annotations

import os
import stat

MAX_FILE = 4 * 1024 * 1024  # bytes: a larger "source file" is not read
CONTEXT = 2  # lines shown before and after the call's
LINE_LIMIT = 300  # characters of one line shown


class Excerpts:
    """Reads excerpts, each file once (one Excerpts per history shown)."""

    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}

    def around(self, file: str, line: int, context: int = CONTEXT) -> list[tuple[int, str]]:
        """(line number, text) pairs around `line` of `file`; [] if it cannot be read."""
        lines = self._files.get(file)
        if file not in self._files:
            lines = self._files[file] = _read_source(file)
        if not lines or not 1 <= line <= len(lines):
            return []
        first, last = max(1, line - context), min(len(lines), line + context)
        return [(number, lines[number - 1][:LINE_LIMIT]) for number in range(first, last + 1)]


def _read_source(file: str) -> list[str] | None:
    if not file.endswith(".py") or "\0" in file:
        return None
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_FILE:
            return None
        with os.fdopen(fd, "rb", closefd=False) as source:
            data = source.read(MAX_FILE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace").splitlines()
