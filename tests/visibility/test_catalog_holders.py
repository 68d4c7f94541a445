"""The catalog names every journal's holder exactly, whatever else locks meanwhile."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from durable import JournalDirectory
from durable._catalog import Catalog
from durable._storage._id_locks import IdLocks

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="no /proc here"),
]


async def test_held_journals_are_all_listed_while_other_locks_come_and_go(tmp_path: Path) -> None:
    # /proc/locks is read a page per read(), by position in the kernel's list of every lock
    # on the machine: locks let go of meanwhile shift it, so its lines were skipped (and its
    # cost grows with the square of the machine's locks): the holders' fdinfo says it.
    directory = tmp_path / "journals"
    others = tmp_path / "others"
    others.mkdir()
    stop = threading.Event()
    fd = os.open(others, os.O_RDONLY | os.O_DIRECTORY)
    churning, steady = IdLocks(fd), IdLocks(fd)

    def churn() -> None:
        n = 0
        while not stop.is_set():
            name = f"other-{n % 500}.journal"
            churning.acquire(name)
            churning.release(name)
            n += 1

    for n in range(3000):  # (locks elsewhere on the machine: /proc/locks is long)
        steady.acquire(f"steady-{n}.journal")
    thread = threading.Thread(target=churn)
    thread.start()
    try:
        async with JournalDirectory(directory) as store:
            held = [await store.open(f"wf-{n}") for n in range(300)]
            catalog = Catalog(directory)
            for _ in range(3):
                listing = await catalog.listing()
                assert listing.runners == {f"wf-{n}": str(os.getpid()) for n in range(300)}
            for journal in held:
                await journal.close()
            assert (await catalog.listing()).runners == {}
    finally:
        stop.set()
        thread.join()
        churning.close()
        steady.close()
        os.close(fd)
