"""An activity limit's state in a journal directory: slot flocks and a starts ring.

Under `<directory>/limits/<name>/` (directories 0700, files 0600), opened relative to
directory descriptors, never through a link:

    lock      flock'd around each take (a few syscalls, never across an await)
    slots/<i> i < concurrency: flock'd by the process whose activity call holds slot i; the
              kernel lets go when that process dies, so a slot is never leaked
    starts    the rate limit's ring (the queues' format: `_queue_files.rate_wait`)

Knows nothing of activities: names, capacities and times are the caller's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ._opening import open_directory
from ._queue_files import Slots, rate_record, rate_wait

LIMITS = "limits"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC


def _open_directory(parent_fd: int, name: str) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    return os.open(name, _DIRECTORY, dir_fd=parent_fd)


class LimitFiles:
    """One limit's directory under a journal directory, created if missing.

    Not thread-safe: its owner serialises the calls (a flock is per open file description,
    so two threads of one process would share it).
    """

    def __init__(self, directory: Path, name: str, concurrency: int | None) -> None:
        root = open_directory(directory, create=True)
        try:
            limits = _open_directory(root, LIMITS)
            try:
                self._fd = _open_directory(limits, name)
            finally:
                os.close(limits)
        finally:
            os.close(root)
        self._slots_fd = _open_directory(self._fd, "slots")
        self.slots = Slots(self._slots_fd, "", concurrency) if concurrency is not None else None
        self._lock_fd = os.open("lock", os.O_RDWR | os.O_CREAT | _SAFE, 0o600, dir_fd=self._fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The limit's lock: a blocking flock held for a few syscalls."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def rate_wait(self, capacity: int, period: float, now: float) -> float | None:
        """When the rate allows the next start (None: now); under `locked()`."""
        return rate_wait(self._fd, capacity, period, now)

    def rate_record(self, capacity: int, now: float) -> None:
        """Note a start at `now` (under `locked()`)."""
        rate_record(self._fd, capacity, now)

    def close(self) -> None:
        """Close every descriptor (letting go of the slots still held)."""
        if self.slots is not None:
            self.slots.close()
        for fd in (self._slots_fd, self._lock_fd, self._fd):
            os.close(fd)
