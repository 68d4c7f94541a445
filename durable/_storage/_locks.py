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


def ofd_locks(
    files: set[tuple[int, int]],
) -> dict[tuple[int, int], list[tuple[int, int, int]]] | None:
    """The open-file-description locks held now on `files` ((device, inode) each).

    Each file's sorted (start, end, pid) ranges. /proc/locks lists OFD locks with pid -1;
    the pid is found in the /proc/<pid>/fdinfo of the descriptors that hold those files
    open (this user's processes; 0 where it cannot be read). None: /proc cannot be read.
    """
    try:
        table = LOCKS.read_text()
    except OSError:
        return None
    ranges: dict[tuple[int, int, int], int] = {}  # (device, inode, start) -> end
    for line in table.splitlines():
        # "2: OFDLCK ADVISORY  WRITE -1 fe:00:2153091 12345 12345"
        fields = line.split()
        if len(fields) < 8 or fields[1] != "OFDLCK":
            continue
        try:
            file = _file_of(fields[5])
            start, end = int(fields[6]), _end_of(fields[7])
        except ValueError:
            continue
        if file in files:
            ranges[(*file, start)] = end
    pids = _ofd_pids(files) if ranges else {}
    found: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for (device, inode, start), end in ranges.items():
        pid = pids.get((device, inode, start), 0)
        found.setdefault((device, inode), []).append((start, end, pid))
    for held in found.values():
        held.sort()
    return found


def _file_of(field: str) -> tuple[int, int]:
    major, minor, inode = field.split(":")
    return os.makedev(int(major, 16), int(minor, 16)), int(inode)


def _end_of(field: str) -> int:
    return (1 << 63) - 1 if field == "EOF" else int(field)


def _ofd_pids(files: set[tuple[int, int]]) -> dict[tuple[int, int, int], int]:
    """(device, inode, start) of each OFD lock on `files` -> the pid whose descriptor holds it.

    From /proc/<pid>/fd and fdinfo (a descriptor's "lock:" lines are the locks it holds).
    Processes this user may not look into are skipped.
    """
    found: dict[tuple[int, int, int], int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            descriptors = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                info = os.stat(f"/proc/{entry.name}/fd/{descriptor}")
                if (info.st_dev, info.st_ino) not in files:
                    continue
                text = Path(f"/proc/{entry.name}/fdinfo/{descriptor}").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                fields = line.split()
                if len(fields) >= 9 and fields[0] == "lock:" and fields[2] == "OFDLCK":
                    try:
                        found[(*_file_of(fields[6]), int(fields[7]))] = int(entry.name)
                    except ValueError:
                        continue
    return found
