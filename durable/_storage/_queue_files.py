"""A queue's state in a journal directory: requests, slots, starts; bytes and locks only.

Everything lives under `<directory>/queues/<queue>/` (directories 0700, files 0600), opened
relative to directory descriptors, never through a link:

    lock              flock'd around each admission and append to the log (microseconds)
    requests          the request log (`_request_log.py`): every enqueue, admission (a
                      runtime's claim) and end, appended; a request's sequence number (FIFO
                      within a priority) is the log's. A journal whose id the log holds,
                      waiting or admitted, is a queued workflow: whoever resumes it must
                      hold a slot first
    waiting/<id>      the old layout (durable before the log): a request file, still read,
                      claimed and served; new requests go to the log only
    admitted/<id>     the old layout: a request file renamed here by the runtime that claimed
                      it, unlinked when its workflow ends
    seq               the old layout's u64le counter: a new log's first sequence number
    slots/<i>         i < concurrency: flock'd by the process running one of its workflows;
                      the kernel lets go when that process dies, so a slot is never leaked
    keys/<digest>.<i> the same per partition key (sha256 of the key), i < concurrency_per_key
    starts            the rate limit's ring: u32le capacity, u32le next, capacity f64le times
    dedup/<digest>    a de-duplication id's workflow id (O_EXCL: one per dedup id)
    config            the queue's limits as last declared (opaque, for readers)

A request's bytes (a file of the old layout, a log record's body) are `_request_codec`'s.
Knows nothing of msgpack nor of workflows: the payload is the caller's.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import fcntl
import hashlib
import os
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

from ._file_io import load_syncfs, syncfs_error, write_all
from ._locks import held_on, readable
from ._opening import open_directory
from ._request_codec import MAX_REQUEST_SIZE, DamagedRequest, Request, decode_request
from ._request_log import RequestLog

__all__ = [  # (Request and DamagedRequest: the codec's, for the queue modules above)
    "QUEUES",
    "DamagedRequest",
    "QueueFiles",
    "Request",
    "Slots",
    "digest",
    "is_missing",
    "queue_names",
    "rate_record",
    "rate_wait",
    "read_ring",
]

QUEUES = "queues"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_SEQ = struct.Struct("<Q")
_RING = struct.Struct("<II")
DAMAGED = ".damaged"  # the suffix of an old layout request set aside (waiting/, admitted/)
_SUBDIRECTORIES = ("waiting", "admitted", "slots", "keys", "dedup")
_syncfs = load_syncfs()


def digest(text: str) -> str:
    """A file name for any text (a partition key, a dedup id)."""
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def queue_names(directory: Path) -> list[str]:
    """The queues that have state in a journal directory, sorted (directories, not links)."""
    try:
        return sorted(
            entry.name
            for entry in os.scandir(directory / QUEUES)
            if entry.is_dir(follow_symlinks=False)
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


def _open_directory(parent_fd: int | None, name: str | Path, *, create: bool) -> int:
    if create:
        try:
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            pass
        else:  # (its entry durable before any request is: the log syncs only itself)
            if parent_fd is not None:
                os.fsync(parent_fd)
    return os.open(name, _DIRECTORY, dir_fd=parent_fd)


def _read_at(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.pread(fd, size - len(data), len(data))
        if not chunk:
            break
        data += chunk
    return data


def rate_wait(directory_fd: int, capacity: int, period: float, now: float) -> float | None:
    """When the `starts` ring in `directory_fd` allows the next start (None: now).

    At most `capacity` starts per `period`: the ring holds the last `capacity` start times.
    """
    times = read_ring(directory_fd, capacity)[1]
    oldest = min(times) if len(times) == capacity else 0.0
    return None if now - oldest >= period else oldest + period


def rate_record(directory_fd: int, capacity: int, now: float) -> None:
    """Note a start at `now` in the `starts` ring (under the lock of its directory)."""
    fd = os.open("starts", os.O_RDWR | os.O_CREAT | _SAFE, 0o600, dir_fd=directory_fd)
    try:
        next_index, times = _read_ring_fd(fd, capacity)
        if len(times) < capacity:
            times = times + [0.0] * (capacity - len(times))
        times[next_index] = now
        data = _RING.pack(capacity, (next_index + 1) % capacity)
        os.pwrite(fd, data + struct.pack(f"<{capacity}d", *times), 0)
    finally:
        os.close(fd)


def read_ring(directory_fd: int, capacity: int) -> tuple[int, list[float]]:
    """The `starts` ring: the index written next, and the start times recorded (no zeros)."""
    try:
        fd = os.open("starts", os.O_RDONLY | _SAFE, dir_fd=directory_fd)
    except FileNotFoundError:
        return 0, []
    try:
        return _read_ring_fd(fd, capacity)
    finally:
        os.close(fd)


def _read_ring_fd(fd: int, capacity: int) -> tuple[int, list[float]]:
    data = _read_at(fd, _RING.size + 8 * capacity)
    if len(data) != _RING.size + 8 * capacity:
        return 0, []  # (new, or another capacity declared before: start afresh)
    stored, next_index = _RING.unpack_from(data)
    if stored != capacity or next_index >= capacity:
        return 0, []
    return next_index, [t for t in struct.unpack_from(f"<{capacity}d", data, _RING.size) if t]


class Slots:
    """N slot files, each flock'd by at most one holder: a process-crash-proof semaphore.

    flock is per open file description, so two QueueFiles of one process (two runtimes)
    exclude each other like two processes; this object remembers which it holds itself.
    Descriptors stay open between takes (an open costs more than the flock).
    """

    def __init__(self, directory_fd: int, prefix: str, capacity: int) -> None:
        self._directory_fd = directory_fd
        self._prefix = prefix
        self._capacity = capacity
        self._fds: dict[int, int] = {}  # slot -> its file's descriptor, open
        self._held: set[int] = set()
        self._next = 0

    def _fd(self, slot: int) -> int:
        fd = self._fds.get(slot)
        if fd is None:
            fd = self._fds[slot] = os.open(
                f"{self._prefix}{slot}",
                os.O_RDWR | os.O_CREAT | _SAFE,
                0o600,
                dir_fd=self._directory_fd,
            )
        return fd

    def take(self) -> int | None:
        """A free slot, locked (None: all are held, here or elsewhere)."""
        held = self._held
        for turn in range(self._capacity):
            slot = (self._next + turn) % self._capacity
            if slot in held:
                continue
            try:
                fcntl.flock(self._fd(slot), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            held.add(slot)
            self._next = slot + 1
            return slot
        return None

    def give_back(self, slot: int) -> None:
        """Unlock a slot this object holds."""
        if slot in self._held:
            self._held.discard(slot)
            fcntl.flock(self._fds[slot], fcntl.LOCK_UN)

    @property
    def held(self) -> int:
        return len(self._held)

    def close(self) -> None:
        """Close every descriptor (letting go of the slots still held)."""
        self._held.clear()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class QueueFiles:
    """One queue's directory, opened (and created, for a writer) under a journal directory."""

    def __init__(self, directory: Path, name: str, *, create: bool = True) -> None:
        self.directory = directory
        self.name = name
        self.path = directory / QUEUES / name
        root = open_directory(directory, create=create)
        try:
            queues = _open_directory(root, QUEUES, create=create)
            try:
                self._fd = _open_directory(queues, name, create=create)
            finally:
                os.close(queues)
        finally:
            os.close(root)
        self._fds: dict[str, int] = {}
        try:
            for sub in _SUBDIRECTORIES:
                self._fds[sub] = _open_directory(self._fd, sub, create=create)
        except BaseException:
            for fd in (*self._fds.values(), self._fd):
                os.close(fd)
            raise
        self._lock_fd: int | None = None
        self._thread_lock = threading.RLock()  # (flock does not exclude one's own threads)
        self._depth = 0
        self._key_slots: dict[str, Slots] = {}
        self._waiting_fd = self._fds["waiting"]
        # The old layout's files are only ever taken away (claimed, ended): once both of
        # its directories are seen empty they stay so, and are not looked at again.
        self._old_layout = True
        self._old_layout_gone()
        self._log = RequestLog(self._fd, self.path, self.locked, first_seq=self._old_seq)

    def close(self) -> None:
        for slots in self._key_slots.values():
            slots.close()
        self._key_slots.clear()
        self._log.close()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._lock_fd = None
        os.close(self._fd)

    # -- the queue's lock and its counters -----------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The queue's lock: a blocking flock held for a few syscalls, never across an await.

        Re-entrant (the log's appends take it inside an admission's), and excludes this
        object's other threads too.
        """
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            if self._lock_fd is None:
                self._lock_fd = os.open(
                    "lock", os.O_RDWR | os.O_CREAT | _SAFE, 0o600, dir_fd=self._fd
                )
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _old_seq(self) -> int:
        """The old layout's next sequence number (0: none), where a new log starts counting."""
        try:
            fd = os.open("seq", os.O_RDONLY | _SAFE, dir_fd=self._fd)
        except FileNotFoundError:
            return 0
        try:
            data = _read_at(fd, _SEQ.size)
        finally:
            os.close(fd)
        return int(_SEQ.unpack(data)[0]) if len(data) == _SEQ.size else 0

    def rate_wait(self, capacity: int, period: float, now: float) -> float | None:
        """When the next start is allowed by at most `capacity` per `period` (None: now)."""
        return rate_wait(self._fd, capacity, period, now)

    def rate_record(self, capacity: int, now: float) -> None:
        """Note a start at `now` in the ring of the last `capacity` starts (under `locked()`)."""
        rate_record(self._fd, capacity, now)

    def _ring(self, capacity: int) -> tuple[int, list[float]]:
        return read_ring(self._fd, capacity)

    # -- requests: the log, and the old layout's files ---------------------------------

    def create(self, request: Request) -> Request | None:
        """Append a new waiting request, numbered here (not synced: see `sync`).

        The request as stored (its `seq` the queue's next), or None if its id is queued.
        """
        with self.locked():
            if self._exists("waiting", request.workflow_id) or self._exists(
                "admitted", request.workflow_id
            ):
                return None
            return self._log.enqueue(request)

    def sync(self, *, dedup: bool = False) -> None:
        """Make the requests appended so far durable: one fdatasync of the log.

        With `dedup`, the dedup/ entries made since too (a syncfs, or the directory's fsync).
        """
        self._log.sync()
        if dedup:
            if _syncfs is not None:
                if _syncfs(self._fd) != 0:
                    raise syncfs_error()
            else:
                os.fsync(self._fds["dedup"])

    def waiting(self) -> list[str]:
        """The ids waiting, in no order."""
        self._log.refresh()
        self._old_layout_gone()
        return [*self._log.waiting, *self._old_names("waiting")]

    def waiting_version(self) -> tuple[int, int, int]:
        """Changes whenever a request is added to or taken from the queue."""
        self._log.refresh()
        old = os.fstat(self._waiting_fd).st_mtime_ns if not self._old_layout_gone() else 0
        return (*self._log.version, old)

    def read(self, workflow_id: str, *, admitted: bool = False) -> Request | None:
        """A request (None: gone).

        DamagedRequest: an old layout file whose bytes do not check out, or that is no
        regular file (a link, a fifo or a directory planted there: never followed, read).
        """
        log = self._log
        request = (log.admitted if admitted else log.waiting).get(workflow_id)
        if request is None:
            log.refresh()
            request = (log.admitted if admitted else log.waiting).get(workflow_id)
        if request is not None:
            return request
        where = self._fds["admitted" if admitted else "waiting"]
        try:
            fd = os.open(workflow_id, os.O_RDONLY | _SAFE, dir_fd=where)
        except FileNotFoundError:
            return None
        except OSError as error:  # (ELOOP: a symbolic link; O_NOFOLLOW never follows it)
            kind = "a symbolic link" if error.errno == errno_codes.ELOOP else "unopenable"
            raise DamagedRequest(f"{kind}, not a request file ({error.strerror})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise DamagedRequest("not a regular file (a fifo, a directory or a device)")
            size = info.st_size
            if size > MAX_REQUEST_SIZE:
                raise DamagedRequest(f"{size} bytes, over {MAX_REQUEST_SIZE}")
            data = _read_at(fd, size)
        finally:
            os.close(fd)
        return decode_request(workflow_id, data)

    def set_aside(self, workflow_id: str, *, admitted: bool = False) -> None:
        """Rename a damaged old layout request to `<id>.damaged` where it is (for a person)."""
        where = self._fds["admitted" if admitted else "waiting"]
        with contextlib.suppress(OSError):
            os.rename(workflow_id, f"{workflow_id}{DAMAGED}", src_dir_fd=where, dst_dir_fd=where)

    def claim(self, workflow_id: str) -> bool:
        """Admit a waiting request (atomic under the lock); False if another runtime took it."""
        with self.locked():
            if self._log.admit(workflow_id):
                return True
            try:  # (a request of the old layout: moved to admitted/)
                os.rename(
                    workflow_id,
                    workflow_id,
                    src_dir_fd=self._waiting_fd,
                    dst_dir_fd=self._fds["admitted"],
                )
            except FileNotFoundError:
                return False
            return True

    def is_waiting(self, workflow_id: str) -> bool:
        self._log.refresh()
        return workflow_id in self._log.waiting or self._exists("waiting", workflow_id)

    def is_admitted(self, workflow_id: str) -> bool:
        self._log.refresh()
        return workflow_id in self._log.admitted or self._exists("admitted", workflow_id)

    def _old_layout_gone(self) -> bool:
        """Whether waiting/ and admitted/ are empty for good (see __init__)."""
        # (a request set aside there, `<id>.damaged`, keeps it looked at: `durable list`
        # shows it until a person repairs or removes it)
        if self._old_layout and not os.listdir(self._waiting_fd):
            self._old_layout = bool(os.listdir(self._fds["admitted"]))
        return not self._old_layout

    def _old_names(self, sub: str) -> list[str]:
        return [] if not self._old_layout else os.listdir(self._fds[sub])

    def _exists(self, sub: str, name: str) -> bool:
        if not self._old_layout:
            return False
        try:
            os.stat(name, dir_fd=self._fds[sub], follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def finish(self, workflow_id: str) -> None:
        """The workflow ended: forget its admission."""
        if not self._log.finish(workflow_id):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(workflow_id, dir_fd=self._fds["admitted"])

    def withdraw(self, workflow_id: str) -> bool:
        """Remove a waiting request (False: not waiting any more)."""
        if self._log.withdraw(workflow_id):
            return True
        try:
            os.unlink(workflow_id, dir_fd=self._waiting_fd)
        except FileNotFoundError:
            return False
        return True

    def admitted(self) -> list[str]:
        self._log.refresh()
        self._old_layout_gone()
        return [*self._log.admitted, *self._old_names("admitted")]

    def compact(self) -> None:
        """Rewrite the request log with its live records only (it also happens by itself)."""
        self._log.compact()

    # -- de-duplication ------------------------------------------------------------------

    def dedup_claim(self, dedup_id: str, workflow_id: str) -> str | None:
        """Record `dedup_id` -> `workflow_id` unless present: None, or the recorded id."""
        name = digest(dedup_id)
        where = self._fds["dedup"]
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE, 0o600, dir_fd=where)
        except FileExistsError:
            try:
                fd = os.open(name, os.O_RDONLY | _SAFE, dir_fd=where)
            except FileNotFoundError:  # (released meanwhile)
                return self.dedup_claim(dedup_id, workflow_id)
            try:
                return _read_at(fd, 4096).decode(errors="replace")
            finally:
                os.close(fd)
        try:
            write_all(fd, workflow_id.encode())
        finally:
            os.close(fd)
        return None

    def dedup_release(self, dedup_id: str, workflow_id: str) -> None:
        """Forget `dedup_id` if it still names `workflow_id`."""
        name = digest(dedup_id)
        where = self._fds["dedup"]
        try:
            fd = os.open(name, os.O_RDONLY | _SAFE, dir_fd=where)
        except FileNotFoundError:
            return
        try:
            recorded = _read_at(fd, 4096).decode(errors="replace")
        finally:
            os.close(fd)
        if recorded == workflow_id:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=where)

    # -- slots ---------------------------------------------------------------------------

    def slots(self, capacity: int) -> Slots:
        """The queue's concurrency slots (each QueueFiles should make one)."""
        return Slots(self._fds["slots"], "", capacity)

    def key_slots(self, key: str, capacity: int) -> Slots:
        """The slots of partition key `key`."""
        slots = self._key_slots.get(key)
        if slots is None:
            slots = self._key_slots[key] = Slots(self._fds["keys"], f"{digest(key)}.", capacity)
        return slots

    def forget_key(self, key: str) -> None:
        """Drop an idle key's slots object (its files stay: they are a few bytes)."""
        slots = self._key_slots.get(key)
        if slots is not None and slots.held == 0:
            del self._key_slots[key]
            slots.close()

    def running(self) -> int:
        """How many slots some process holds now (-1: cannot tell, no /proc here).

        Read from the holders' /proc/<pid>/fdinfo (see _locks.held_on), never by trying a
        slot (a runtime taking it that instant would find it busy): exact, and linear in
        the descriptors open on the machine, whatever number of other locks are held. A
        slot held by another user's process is not seen (the queue's directory is 0700).
        """
        if not readable():
            return -1
        where = self._fds["slots"]
        files = set()
        for name in os.listdir(where):
            try:
                info = os.stat(name, dir_fd=where, follow_symlinks=False)
            except FileNotFoundError:
                continue
            files.add((info.st_dev, info.st_ino))
        return len(held_on(files))

    # -- the declared limits, for readers ------------------------------------------------

    def write_config(self, data: bytes) -> None:
        """Replace the config file (a rename, so readers see one or the other)."""
        fd = os.open(
            "config.new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _SAFE, 0o600, dir_fd=self._fd
        )
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.rename("config.new", "config", src_dir_fd=self._fd, dst_dir_fd=self._fd)

    def read_config(self) -> bytes | None:
        try:
            fd = os.open("config", os.O_RDONLY | _SAFE, dir_fd=self._fd)
        except FileNotFoundError:
            return None
        try:
            return _read_at(fd, 65536)
        finally:
            os.close(fd)


def is_missing(error: OSError) -> bool:
    """A lookup of a queue's files that found nothing there (no queue state yet)."""
    return error.errno in (errno_codes.ENOENT, errno_codes.ENOTDIR)
