"""Which files a process holds locked now, read from /proc, without locking them.

Trying a journal's lock to find out would, for that instant, make a runner that starts it
fail with JournalLocked; the kernel answers without touching the file: the holders'
/proc/<pid>/fdinfo (held_on: journals, queue slots; ofd_locks: name locks), never
/proc/locks (its cost is the square of every lock on the machine, and it skips lines while
locks come and go: see ofd_locks). Linux only.
"""

from __future__ import annotations

import os
from pathlib import Path


def readable() -> bool:
    """Whether this system shows processes' descriptors and their locks (Linux's /proc)."""
    return os.path.isdir("/proc/self/fdinfo")


def held_on(files: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """(device, inode) of each of `files` some process of this user flocks now -> its pid.

    From /proc/<pid>/fd and fdinfo, not /proc/locks (see ofd_locks): reading /proc/locks
    costs the square of every lock on the machine (each page restarts from the head of the
    kernel's list: 100,000 name locks held anywhere, ~16 s a read), and skips lines while
    other locks come and go. Another user's process is not seen.
    """
    return {file: pid for file, kind, _, _, pid in _fdinfo_locks(files) if kind == "FLOCK"}


def ofd_locks(
    files: set[tuple[int, int]],
) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """The open-file-description locks this user's processes hold now on `files`.

    Each file's sorted (start, end, pid) ranges, from /proc/<pid>/fd and fdinfo (a
    descriptor's "lock:" lines are the locks its open file description holds), never from
    /proc/locks: that is read a page per read(), by position in the kernel's list of every
    lock of the machine, so locks let go of elsewhere meanwhile shift it and lines are
    skipped (a held name missed). Each fdinfo is one file's locks, read at once. Processes
    this user may not look into are skipped: ask the lock itself (F_OFD_GETLK) whether a
    range is held, this only for its pid.
    """
    found: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for file, kind, start, end, pid in _fdinfo_locks(files):
        if kind == "OFDLCK":
            found.setdefault(file, []).append((start, end, pid))
    for held in found.values():
        held.sort()
    return found


def _fdinfo_locks(files: set[tuple[int, int]]) -> list[tuple[tuple[int, int], str, int, int, int]]:
    """Each lock (file, kind, start, end, pid) held through a descriptor open on `files`."""
    found: list[tuple[tuple[int, int], str, int, int, int]] = []
    if not files:
        return found
    try:
        processes = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return found
    for pid in processes:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                info = os.stat(f"/proc/{pid}/fd/{descriptor}")
                if (info.st_dev, info.st_ino) not in files:
                    continue
                text = Path(f"/proc/{pid}/fdinfo/{descriptor}").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                # "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:2153091 12345 12345"
                fields = line.split()
                if len(fields) >= 9 and fields[0] == "lock:" and fields[2] in ("FLOCK", "OFDLCK"):
                    try:
                        file, start = _file_of(fields[6]), int(fields[7])
                        end = _end_of(fields[8])
                    except ValueError:
                        continue
                    found.append((file, fields[2], start, end, int(pid)))
    return found


def _file_of(field: str) -> tuple[int, int]:
    major, minor, inode = field.split(":")
    return os.makedev(int(major, 16), int(minor, 16)), int(inode)


def _end_of(field: str) -> int:
    return (1 << 63) - 1 if field == "EOF" else int(field)
