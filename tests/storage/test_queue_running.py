"""A queue's running slots are counted exactly and quickly, whatever else locks meanwhile."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from durable._storage._queue_files import QueueFiles

pytestmark = [
    pytest.mark.skipif(not hasattr(fcntl, "F_OFD_SETLK"), reason="no OFD locks here"),
    pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="no /proc here"),
]

_FLOCK = "hhqqi4x"  # struct flock: l_type, l_whence, l_start, l_len, l_pid


def _lock_byte(fd: int, offset: int, kind: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, kind, os.SEEK_SET, offset, 1, 0))


def test_running_is_exact_and_quick_among_many_locks_coming_and_going(tmp_path: Path) -> None:
    # /proc/locks is read by position in the kernel's list of every lock on the machine,
    # each read() restarting from its head: with 50,000 locks held elsewhere (sleepers' name
    # locks) a count took 0.4-1.3 s, and lines can be skipped while other locks come and go
    # (a held slot counted free). The slot files' holders' fdinfo says it, in milliseconds.
    (tmp_path / "journals").mkdir()
    files = QueueFiles(tmp_path / "journals", "q")
    slots = files.slots(8)
    others = [os.open(tmp_path / f"other-{n}", os.O_RDWR | os.O_CREAT, 0o600) for n in range(500)]
    churning = os.open(tmp_path / "other-0", os.O_RDWR)
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            offset = 1 + 2 * (n % 500)
            _lock_byte(churning, offset, fcntl.F_WRLCK)
            _lock_byte(churning, offset, fcntl.F_UNLCK)
            n += 1

    thread = threading.Thread(target=churn)
    try:
        for _ in range(5):  # (taken first: the kernel's list is newest first, these last)
            assert slots.take() is not None
        for n in range(50_000):  # (100 a file, every other byte: locks that do not merge)
            _lock_byte(others[n % len(others)], 2 * n + 2_000, fcntl.F_WRLCK)
        thread.start()
        started = time.monotonic()
        counts = [files.running() for _ in range(10)]
        elapsed = time.monotonic() - started
        assert counts == [5] * 10
        assert elapsed < 2.0, f"10 counts took {elapsed:.1f} s"
        slots.give_back(0)
        assert files.running() == 4
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        slots.close()
        files.close()
        os.close(churning)
        for fd in others:
            os.close(fd)


@pytest.mark.slow
def test_running_counts_slots_held_by_another_process(tmp_path: Path) -> None:
    (tmp_path / "journals").mkdir()
    files = QueueFiles(tmp_path / "journals", "q")
    slots = files.slots(3)
    holder = (  # (slot 1 flock'd on a description of its own, until its stdin closes)
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    try:
        assert slots.take() == 0
        with subprocess.Popen(
            [sys.executable, "-c", holder, str(tmp_path / "journals/queues/q/slots/1")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        ) as child:
            assert child.stdout is not None
            assert child.stdin is not None
            assert child.stdout.readline() == b"held\n"
            assert files.running() == 2
            assert slots.take() == 2, "slot 1 is held elsewhere"
            child.stdin.close()
            assert child.wait(timeout=30) == 0
        assert files.running() == 2
        slots.give_back(2)
        assert files.running() == 1
    finally:
        slots.close()
        files.close()
