"""Who holds an unloaded sleeper's name lock is read exactly, whatever else locks meanwhile."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from durable._storage._id_locks import IdLocks, held_names

pytestmark = pytest.mark.skipif(not hasattr(fcntl, "F_OFD_SETLK"), reason="no OFD locks here")


def test_held_names_misses_none_while_other_locks_come_and_go(tmp_path: Path) -> None:
    # /proc/locks is read a page per read(), by position in the kernel's list of every lock:
    # locks let go of meanwhile (anywhere on the machine) shift it, and lines are skipped.
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    held, churning = IdLocks(fd), IdLocks(fd)
    names = [f"sleeper-{n}.journal" for n in range(3000)]
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            name = f"other-{n % 500}.journal"
            churning.acquire(name)
            churning.release(name)
            n += 1

    try:
        for name in names:
            assert held.acquire(name)
        thread = threading.Thread(target=churn)
        thread.start()
        try:
            for _ in range(5):
                found = held_names(tmp_path, [*names, "nobody.journal"])
                assert found is not None
                assert sorted(set(names) - set(found)) == []
                assert "nobody.journal" not in found
                assert set(found.values()) == {os.getpid()}
        finally:
            stop.set()
            thread.join()
    finally:
        held.close()
        churning.close()
        os.close(fd)
