"""Name locks: how a runtime holds unloaded sleepers without a descriptor each.

A journal's flock lasts as long as its descriptor, so a runtime holding 100,000 unloaded
sleepers held 100,000 descriptors (past most systems' hard limit). Instead, a sleeper's
runtime holds its journal's *name*: the file name hashed to one byte of one of SHARDS lock
files in the directory's `.locks/` folder, locked with a Linux open-file-description lock
(F_OFD_SETLK): exclusive between open file descriptions like a flock (so two runtimes of
one process exclude each other, which POSIX record locks would not), released when its
holder closes it or dies, kept while it is stopped. A runtime holds any number of names
with at most SHARDS descriptors. The protocol (take the name before letting go of the
flock; an opener checks the name while holding the flock) is in docs/architecture.md,
"One runner per id".

The kernel keeps an inode's record locks in a list it walks on every lock: 100,000 locks on
64 files cost ~230 us a lock, on 1,024 files ~20 us; hence 1,024, each opened on first use.
Two names may hash to one byte (about one pair in 2**72 / n**2): in one runtime the second
reads as held (its opener waits, as for a runner elsewhere); across runtimes the second
cannot be unloaded by its name and keeps its descriptor.

Where OFD locks do not exist (not Linux), `available` is False and nothing is locked here:
the journal's flock is the only exclusion, and an unloaded sleeper keeps its descriptor.
"""

from __future__ import annotations

import bisect
import contextlib
import errno as errno_codes
import fcntl
import hashlib
import os
import stat
import struct
import threading
from pathlib import Path

from ._locks import ofd_locks
from ._opening import SAFE, kind_of

FOLDER = ".locks"
SHARDS = 1024
_OFFSET_MASK = (1 << 62) - 1  # (l_start + l_len must stay within a signed 64-bit off_t)
_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_GETLK = getattr(fcntl, "F_OFD_GETLK", None)
# struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
_FLOCK = "hhqqi4x"
_BUSY = {errno_codes.EAGAIN, errno_codes.EACCES}


def _digest(name: str) -> int:
    """A name's 72-bit hash: its shard (the low 10 bits) and its byte (the next 62)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=9).digest(), "little")


def _slot(digest: int) -> tuple[int, int]:
    return digest % SHARDS, (digest >> 10) & _OFFSET_MASK


def slot_of(name: str) -> tuple[int, int]:
    """The lock file (shard number) and byte offset that stand for journal `name`."""
    return _slot(_digest(name))


def shard_name(shard: int) -> str:
    """The lock file's name in FOLDER."""
    return f"{shard:03x}"


def _set(fd: int, kind: int, offset: int) -> None:
    assert _SETLK is not None
    fcntl.fcntl(fd, _SETLK, struct.pack(_FLOCK, kind, os.SEEK_SET, offset, 1, 0))


class IdLocks:
    """One runtime's (one JournalDirectory's) locks on journal names. Thread-safe.

    `acquire` and `release` pair per name and holder; a name held twice here (the two
    generations of a continue_as_new, one runner's) is counted, and let go when its count
    returns to zero. A slot is the whole 72-bit hash, so what is held here is kept by
    hash: an int and a count a name (100,000 sleepers hold as many).
    """

    def __init__(self, directory_fd: int) -> None:
        self._directory_fd = directory_fd
        self._folder_fd: int | None = None
        self._fds: dict[int, int] = {}
        self._held: dict[int, int] = {}  # a name's hash -> its holds here
        self._lock = threading.Lock()
        self.available = _SETLK is not None
        self._closed = False

    def taken(self, name: str) -> bool:
        """Whether a runner (here or in another process) holds `name`'s lock now.

        Asked by an opener that holds the journal's flock: a holder takes the name's lock
        before it lets go of its flock, so what this says stays true while the flock is held.
        Takes no lock, and creates nothing (no lock file: nobody ever held one of its names).
        """
        if not self.available:
            return False
        digest = _digest(name)
        with self._lock:
            if self._closed:
                return False
            if digest in self._held:
                return True
            slot = _slot(digest)
            fd = self._fd(slot[0], create=False)
            if fd is None:
                return False
            assert _GETLK is not None
            asked = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, slot[1], 1, 0)
            answer = fcntl.fcntl(fd, _GETLK, asked)
            return bool(struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK)

    def acquire(self, name: str) -> bool:
        """Take `name`'s lock; False if another runtime (or process) holds it.

        Raises:
            OSError: the lock file could not be opened or created (then nothing is held).
        """
        if not self.available:
            return False
        digest = _digest(name)
        with self._lock:
            if self._closed:
                return False
            holds = self._held.get(digest, 0)
            if not holds:
                slot = _slot(digest)
                fd = self._fd(slot[0], create=True)
                assert fd is not None
                try:
                    _set(fd, fcntl.F_WRLCK, slot[1])
                except OSError as error:
                    if error.errno in _BUSY:
                        return False
                    raise
            self._held[digest] = holds + 1
            return True

    def release(self, name: str) -> None:
        """Let go of one hold of `name`'s lock."""
        digest = _digest(name)
        with self._lock:
            holds = self._held.get(digest, 0)
            if holds > 1:
                self._held[digest] = holds - 1
            elif holds == 1:
                del self._held[digest]
                if not self._closed:
                    shard, offset = _slot(digest)
                    _set(self._fds[shard], fcntl.F_UNLCK, offset)

    def _fd(self, shard: int, *, create: bool) -> int | None:
        fd = self._fds.get(shard)
        if fd is not None:
            return fd
        try:
            if self._folder_fd is None:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(FOLDER, 0o700, dir_fd=self._directory_fd)
                flags = os.O_RDONLY | os.O_DIRECTORY | SAFE
                self._folder_fd = os.open(FOLDER, flags, dir_fd=self._directory_fd)
            flags = os.O_RDWR | (os.O_CREAT if create else 0) | SAFE
            fd = os.open(shard_name(shard), flags, 0o600, dir_fd=self._folder_fd)
        except FileNotFoundError:
            if create:
                raise
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # (a fifo planted there: see hostile())
            os.close(fd)
            raise OSError(errno_codes.EINVAL, "not a regular file", shard_name(shard))
        self._fds[shard] = fd
        return fd

    def close(self) -> None:
        """Close every lock file: whatever is still held here is let go."""
        with self._lock:
            self._closed = True
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            self._held.clear()
            if self._folder_fd is not None:
                os.close(self._folder_fd)
                self._folder_fd = None


def hostile(directory_fd: int, name: str) -> tuple[str, str, str] | None:
    """What stands where `name`'s lock folder or file belongs, when it is not one.

    (Its path in the directory, what it is, what belongs there.) None: nothing hostile,
    the lock file failed to open for another reason (or is not there).
    """
    shard = f"{FOLDER}/{shard_name(slot_of(name)[0])}"
    for path, wanted, right in (
        (FOLDER, "a folder", stat.S_ISDIR),
        (shard, "a regular file", stat.S_ISREG),
    ):
        try:
            info = os.stat(path, dir_fd=directory_fd, follow_symlinks=False)
        except OSError:
            return None
        if not right(info.st_mode):
            found = "a regular file" if stat.S_ISREG(info.st_mode) else kind_of(info.st_mode)
            return path, found, wanted
    return None


def held_names(directory: Path, names: list[str]) -> dict[str, int] | None:
    """Which of `names` some process holds by its name's lock now -> its pid (0: unknown).

    Held or not is asked of each name's byte (F_OFD_GETLK on a descriptor of its own:
    exact, takes nothing); the holder's pid is read from the /proc/<pid>/fdinfo of the
    descriptors that hold the lock files open (this user's processes: another user's
    holder shows as 0). None: no OFD locks here.
    """
    if _GETLK is None:
        return None
    by_shard: dict[int, list[tuple[str, int]]] = {}
    for name in names:
        shard, offset = slot_of(name)
        by_shard.setdefault(shard, []).append((name, offset))
    held: dict[str, tuple[tuple[int, int], int]] = {}
    try:
        folder_fd = os.open(directory / FOLDER, os.O_RDONLY | os.O_DIRECTORY | SAFE)
    except OSError:
        return {}  # (no folder: nobody ever held a name here)
    try:
        for shard, wanted in by_shard.items():
            try:
                fd = os.open(shard_name(shard), os.O_RDONLY | SAFE, dir_fd=folder_fd)
            except OSError:
                continue
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    continue
                for name, offset in wanted:
                    asked = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
                    if struct.unpack(_FLOCK, fcntl.fcntl(fd, _GETLK, asked))[0] != fcntl.F_UNLCK:
                        held[name] = ((info.st_dev, info.st_ino), offset)
            finally:
                os.close(fd)
    finally:
        os.close(folder_fd)
    locks = ofd_locks({file for file, _ in held.values()}) if held else {}
    found: dict[str, int] = {}
    for name, (file, offset) in held.items():
        ranges = locks.get(file, [])
        at = bisect.bisect_right(ranges, (offset, 1 << 64)) - 1  # (the last starting <= it)
        found[name] = ranges[at][2] if at >= 0 and ranges[at][0] <= offset <= ranges[at][1] else 0
    return found
