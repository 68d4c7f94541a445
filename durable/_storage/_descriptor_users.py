"""The worker threads using a store's directory descriptor, so that close() waits for them.

A worker thread cannot be stopped, and a cancelled wait for one returns while it runs on. A
store's close() that closed its directory descriptor under such a thread (an open, a
rotation, an inbox post) made its next `openat`, `rename` or `fsync` fail with EBADF, or
act on whatever the process opened next under that number: another directory. So each
thread holds a use while it works with the descriptor, and close() waits until none does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from .._errors import JournalClosed


class DescriptorUsers:
    """Counts the threads using a descriptor; once closing, refuses new ones."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._users = 0
        self._closing = False

    @contextlib.contextmanager
    def use(self, path: Path) -> Iterator[None]:
        """Hold a use for the block (JournalClosed, naming `path`: the store is closing)."""
        with self._changed:
            if self._closing:
                raise JournalClosed(path=path)
            self._users += 1
        try:
            yield
        finally:
            with self._changed:
                self._users -= 1
                self._changed.notify_all()

    def close(self) -> None:
        """Refuse new uses, and wait until the last one ends (blocking: a worker thread)."""
        with self._changed:
            self._closing = True
            self._changed.wait_for(lambda: self._users == 0)
