"""Which journals a process holds locked now, read from /proc/locks, without locking them.

Trying a journal's lock to find out would, for that instant, make a runner that starts it
fail with JournalLocked; the kernel's lock table answers without touching the file. Linux
only: elsewhere (or without /proc) nothing is known and `flock_holders` returns None.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCKS = Path("/proc/locks")


def flock_holders() -> dict[tuple[int, int], int] | None:
    """(device, inode) of each file with a flock() held now -> the pid that holds it."""
    try:
        table = LOCKS.read_text()
    except OSError:
        return None
    holders: dict[tuple[int, int], int] = {}
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 26112 fe:00:2146364 0 EOF"; waiters read "1: -> FLOCK ..."
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            device = os.makedev(int(major, 16), int(minor, 16))
            holders[(device, int(inode))] = int(fields[4])
        except ValueError:
            continue  # a line this reader does not know: skip it, never guess
    return holders
