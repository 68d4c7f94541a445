"""A queue's request log: its enqueues, admissions and removals as frames in one file.

`<queue>/requests` (0600), opened relative to the queue's directory, never through a link:

    header  "DURL" u32le(1)
    frame*  version 1 frames of `_frames` (u32 length, u32 masked crc32, payload)

Each frame's payload is one record, a u8 kind and its body:

    1 enqueue   u16le len(id), id (UTF-8), the request's bytes (`_request_codec`)
    2 admit     id: a runtime claimed it (it starts the workflow, holding the queue's slots)
    3 finish    id: its workflow ended (its admission, or its waiting request, forgotten)
    4 withdraw  id: a waiting request taken back
    5 base      u64le: every later enqueue's sequence number is at least this

The queue is the log read from its start: waiting = enqueued, neither admitted nor removed;
admitted = admitted, not finished. One file instead of one per request: an enqueue is an
append and many share one fdatasync (the caller's group commit), where a file per request
cost a create in a directory (100-500 us on a loaded ext4).

Writers append under the queue's flock (`locked`, the caller's) with O_APPEND, and say when
to sync (`sync`). Readers take no lock: a frame being written reads as a torn tail, left out
until it is whole. Under the lock, a torn tail a dead writer left is cut off before the next
append; damage with valid frames after it (a power loss keeping later unsynced pages but not
earlier ones) is read past, and the log is rewritten without it (logged). A frame whose
length reaches past the end of the file is unfinished, whatever follows its header: those
bytes are its payload, a sender's, which may hold whole frames (never read as records);
a damaged frame whose length holds (a valid frame starts where it ends) is skipped whole.

Compaction, under the lock, when dead frames outnumber live ones 3 to 1 past COMPACT_AFTER:
the live records go to `requests.new`, fdatasync'd, renamed over `requests`, the directory
fsync'd. A crash before the rename leaves the old log whole (`requests.new` is ignored, and
truncated by the next compaction); after it, the new log holds every live record. Whoever
still holds the old file sees that its inode is no longer the name's, and reads the new
file from its start. Reads are bounded: by the file's size, in chunks, a frame at most
MAX_FRAME bytes. Knows nothing of workflows, slots or limits.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import logging
import os
import stat
import struct
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from .._errors import JournalCorrupted, UnsafeJournalFile, UnsupportedJournalFormat
from ._file_io import sync_file, write_all
from ._frames import FRAME_HEADER_SIZE, encode_frame, frame_at, next_frame, scan
from ._opening import kind_of
from ._request_codec import MAX_REQUEST_SIZE, DamagedRequest, Request, decode_request
from ._request_codec import encode_request as _encode_request

logger = logging.getLogger("durable.storage")

LOG = "requests"
NEW = "requests.new"
VERSION = 1
HEADER = b"DURL" + struct.pack("<I", VERSION)
ENQUEUE, ADMIT, FINISH, WITHDRAW, BASE = 1, 2, 3, 4, 5
MAX_FRAME = MAX_REQUEST_SIZE + 70_000  # (a request, its id and the kind byte)
COMPACT_AFTER = 4096  # dead frames before a compaction is considered
# Sequence numbers read (an enqueue's, a base, the old layout's counter) stay below this, so
# the next one still fits the u64 it is stored in: a forged or damaged one at the top of the
# range would otherwise make every later enqueue and compaction fail.
SEQ_LIMIT = 1 << 63
_CHUNK = 16 << 20  # bytes read at once
_ID = struct.Struct("<H")
_SEQ = struct.Struct("<Q")
_LENGTH = struct.Struct("<I")  # (a frame's first field)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_WRITE = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC

Locked = Callable[[], AbstractContextManager[None]]


def enqueue_record(request: Request) -> bytes:
    """An enqueue record's payload."""
    name = request.workflow_id.encode()
    return bytes([ENQUEUE]) + _ID.pack(len(name)) + name + _encode_request(request)


def id_record(kind: int, workflow_id: str) -> bytes:
    """An admit, finish or withdraw record's payload."""
    return bytes([kind]) + workflow_id.encode()


def base_record(next_seq: int) -> bytes:
    return bytes([BASE]) + _SEQ.pack(next_seq)


def _unfinished(data: bytes, start: int) -> bool:
    """Whether the frame at `start` says it ends past `data` (being written, torn, or cut).

    Its bytes are its own payload (a sender's, which may hold the bytes of whole frames):
    never read past to frames inside it, which would apply them as records.
    """
    if len(data) - start < FRAME_HEADER_SIZE:
        return True
    length: int = _LENGTH.unpack_from(data, start)[0]
    return 0 < length <= MAX_FRAME and start + FRAME_HEADER_SIZE + length > len(data)


def _after_damaged(data: bytes, start: int) -> int | None:
    """Where a damaged frame ends, if its length holds (a valid frame, or the end, follows).

    Damage inside its payload, then: what follows its header is that payload (a sender's,
    which may hold whole frames), read past as one, never searched for frames.
    """
    length: int = _LENGTH.unpack_from(data, start)[0]
    end = start + FRAME_HEADER_SIZE + length
    if 0 < length <= MAX_FRAME and (end == len(data) or frame_at(data, end, MAX_FRAME)):
        return end
    return None


class RequestLog:
    """One queue's request log as this object last read it: who waits, who is admitted.

    Its writing methods take `locked` (the queue's lock), create the log when absent,
    mend a torn tail, and compact; `first_seq` gives a new log's first sequence number
    (the old layout's counter). Readers that cannot write the file read it all the same.

    Raises (from every method that reads):
        UnsafeJournalFile: a link or special file at the log's name.
        JournalCorrupted: the file is not a request log (its header).
        UnsupportedJournalFormat: a log written by a newer durable.
    """

    def __init__(
        self,
        directory_fd: int,
        path: Path,
        locked: Locked,
        *,
        first_seq: Callable[[], int] = lambda: 0,
    ) -> None:
        self._dir = directory_fd
        self.path = path / LOG
        self._locked = locked
        self._first_seq = first_seq
        self._fd: int | None = None
        self._sync_guard = threading.Lock()  # (sync runs on a worker thread)
        self._syncing = 0  # syncs under way: a replaced descriptor stays open until none
        self._retired: list[int] = []
        self._writable = True  # (False once the file could only be opened for reading)
        self._identity: tuple[int, int] | None = None
        self._reset()

    def _reset(self) -> None:
        self.waiting: dict[str, Request] = {}
        self.admitted: dict[str, Request] = {}
        self.next_seq = 0
        self.unreadable: dict[str, str] = {}  # enqueue records whose request did not check out
        self._offset = 0  # the end of the whole frames applied (0: header not read yet)
        self._seen = -1  # the file's size when last read
        self._frames = 0
        self._damage: str | None = None  # damage read past (a writer rewrites the log)

    def close(self) -> None:
        self._let_go()
        with self._sync_guard:
            for fd in self._retired:
                os.close(fd)
            self._retired.clear()

    def _let_go(self) -> None:
        """Stop using the descriptor (closed, or kept open until the syncs under way end)."""
        with self._sync_guard:
            if self._fd is not None:
                self._retired.append(self._fd)
                self._fd = None
            if not self._syncing:
                for fd in self._retired:
                    os.close(fd)
                self._retired.clear()

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever the log does (its inode, and how much of it was read)."""
        return (self._identity[1] if self._identity else -1, self._offset)

    # -- reading -------------------------------------------------------------------------

    def refresh(self, *, by_name: bool = False) -> None:
        """Read what was appended since the last look (the whole file, if replaced).

        A compaction's rename leaves the file open here without a name (no links): then,
        or with `by_name` (a writer, under the lock), the log's name is looked up again.
        """
        if self._fd is not None and not by_name:
            opened = os.fstat(self._fd)
            if opened.st_nlink:
                if opened.st_size != self._seen:
                    self._read(opened.st_size)
                return
        try:
            info = os.stat(LOG, dir_fd=self._dir, follow_symlinks=False)
        except FileNotFoundError:
            if self._fd is not None:  # (removed by hand: nothing is queued any more)
                self._let_go()
                self._identity = None
                self._reset()
            return
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeJournalFile(path=self.path, found=kind_of(info.st_mode))
        if (info.st_dev, info.st_ino) != self._identity:
            self._let_go()
            self._fd = self._open()
            opened = os.fstat(self._fd)
            self._identity = (opened.st_dev, opened.st_ino)
            self._reset()
            size = opened.st_size
        else:
            size = info.st_size
        if size != self._seen:
            self._read(size)

    def _open(self) -> int:
        if self._writable:
            try:
                return os.open(LOG, _WRITE, dir_fd=self._dir)
            except PermissionError:  # (a reader without write access, or a read-only mount)
                self._writable = False
            except OSError as error:
                if error.errno != errno_codes.EROFS:
                    raise
                self._writable = False
        return os.open(LOG, _READ, dir_fd=self._dir)

    def _read(self, size: int) -> None:
        assert self._fd is not None
        if self._offset == 0:  # (a header refused is refused again at every look)
            if size < len(HEADER):
                self._seen = size
                return  # (being created)
            head = os.pread(self._fd, len(HEADER), 0)
            if head[:4] != HEADER[:4]:
                raise JournalCorrupted(
                    path=self.path, offset=0, reason="it is not a request log of durable"
                )
            if head != HEADER:
                found = struct.unpack_from("<I", head, 4)[0]
                raise UnsupportedJournalFormat(path=self.path, found=found, supported=VERSION)
            self._offset = len(HEADER)
        self._seen = size
        pending = b""
        at = self._offset  # (where `pending` starts in the file)
        while at + len(pending) < size:
            chunk = os.pread(self._fd, min(_CHUNK, size - at - len(pending)), at + len(pending))
            if not chunk:
                break
            data = pending + chunk
            start = 0
            while True:
                found = scan(data, start, MAX_FRAME)
                for record in found.records:
                    self._apply(record.payload)
                start = found.valid_end
                if found.damage is None or found.damage.torn_tail or _unfinished(data, start):
                    break
                resume = _after_damaged(data, start) or next_frame(data, start + 1, MAX_FRAME)
                if resume is None:
                    break
                self._damage = f"byte {at + start}: {found.damage.reason}"
                start = resume
            self._offset = at + start
            pending = data[start:]
            at = self._offset
            if len(pending) > MAX_FRAME + FRAME_HEADER_SIZE:
                break  # (damage that no frame follows within a frame's size: a torn tail)

    def _apply(self, payload: bytes) -> None:
        self._frames += 1
        kind = payload[0]
        if kind == ENQUEUE:
            if len(payload) < 1 + _ID.size:
                return
            length = _ID.unpack_from(payload, 1)[0]
            name = payload[1 + _ID.size : 1 + _ID.size + length].decode(errors="replace")
            if name in self.waiting or name in self.admitted:
                return
            if not name or "/" in name or "\0" in name:  # (no workflow id: not ours)
                self.unreadable[name] = "its workflow id cannot name a journal"
                return
            try:
                request = decode_request(name, payload[1 + _ID.size + length :])
            except DamagedRequest as error:
                self.unreadable[name] = str(error)
                return
            if request.seq >= SEQ_LIMIT:
                self.unreadable[name] = f"its sequence number {request.seq} is out of range"
                return
            self.waiting[name] = request
            self.next_seq = max(self.next_seq, request.seq + 1)
        elif kind == BASE:
            if len(payload) == 1 + _SEQ.size:
                base = _SEQ.unpack_from(payload, 1)[0]
                if base < SEQ_LIMIT:
                    self.next_seq = max(self.next_seq, base)
        else:
            name = payload[1:].decode(errors="replace")
            if kind == ADMIT:
                claimed = self.waiting.pop(name, None)
                if claimed is not None:
                    self.admitted[name] = claimed
            elif kind == FINISH:
                self.admitted.pop(name, None)
            elif kind == WITHDRAW:
                self.waiting.pop(name, None)
                self.unreadable.pop(name, None)

    # -- writing (a writer, under the lock) ----------------------------------------------

    def enqueue(self, request: Request) -> Request | None:
        """Append a waiting request, numbered next (None: its id is queued or admitted).

        Not synced (see `sync`). The request as stored is returned: its `seq` is this log's.
        """
        with self._locked():
            self._catch_up()
            name = request.workflow_id
            if name in self.waiting or name in self.admitted:
                return None
            stored = Request(
                name,
                request.priority,
                self.next_seq,
                request.enqueued,
                request.not_before,
                request.key,
                request.dedup_id,
                request.payload,
            )
            self._append([enqueue_record(stored)], apply=False)
            self.waiting[name] = stored  # (as _apply would, without decoding it back)
            self.next_seq += 1
            self._frames += 1
            return stored

    def admit(self, workflow_id: str) -> bool:
        """Record a waiting request's claim (False: it is not waiting, here or any more)."""
        return self._change(ADMIT, workflow_id, self.waiting)

    def finish(self, workflow_id: str) -> bool:
        """Forget an admitted request, its workflow ended (False: not admitted here)."""
        return self._change(FINISH, workflow_id, self.admitted)

    def withdraw(self, workflow_id: str) -> bool:
        """Take a waiting request back (False: not waiting here)."""
        return self._change(WITHDRAW, workflow_id, self.waiting)

    def _change(self, kind: int, workflow_id: str, where: dict[str, Request]) -> bool:
        if workflow_id not in where:
            self.refresh()  # (a claim, a finish: usually known here already; else look)
            where = self.waiting if kind != FINISH else self.admitted
            if workflow_id not in where:
                return False
        with self._locked():
            self._catch_up()
            where = self.waiting if kind != FINISH else self.admitted
            if workflow_id not in where:
                return False
            self._append([id_record(kind, workflow_id)])
            return True

    def _append(self, payloads: list[bytes], *, apply: bool = True) -> None:
        """Under the lock, caught up: append records and apply them here; compact if sparse.

        `apply=False`: the caller applies them (then calls `_compact_if_sparse`).
        """
        assert self._fd is not None
        data = b"".join(encode_frame(payload) for payload in payloads)
        write_all(self._fd, data)
        self._offset += len(data)
        self._seen = self._offset
        if apply:
            for payload in payloads:
                self._apply(payload)
            self._compact_if_sparse()

    def _catch_up(self) -> None:
        """Under the lock: create the log if absent, read it, mend a torn or damaged tail."""
        self.refresh(by_name=True)
        if self._fd is None or self._offset == 0:  # (absent, or shorter than its header)
            # Made as a compaction makes a log (written, synced, renamed into place): so
            # a log's header is durable before any record is appended to it.
            first = self._first_seq()
            self.next_seq = max(self.next_seq, first if first < SEQ_LIMIT else 0)
            self._rewrite()
        assert self._fd is not None
        if self._damage is not None:
            logger.warning(
                "queue request log %s: damaged at %s; the records after it were kept and "
                "the log rewritten without the damage",
                self.path,
                self._damage,
            )
            self._rewrite()
        elif self._seen > self._offset:  # (a torn frame: its writer died mid-write)
            os.ftruncate(self._fd, self._offset)
            self._seen = self._offset

    def _compact_if_sparse(self) -> None:
        """Compact when mostly dead; a failure is logged, not the append's (it is written)."""
        live = 1 + len(self.waiting) + 2 * len(self.admitted)
        if self._frames - live > COMPACT_AFTER and self._frames > 4 * live:
            try:
                self._rewrite()
            except OSError as error:
                logger.warning("queue request log %s: not compacted: %s", self.path, error)

    def compact(self) -> None:
        """Rewrite the log with its live records only (crash-safe; takes the lock)."""
        with self._locked():
            self._catch_up()
            self._rewrite()

    def _rewrite(self) -> None:
        """Under the lock, the state read to the end: the live records to a new log."""
        frames = [encode_frame(base_record(self.next_seq))]
        for request in sorted(self.waiting.values(), key=lambda r: r.seq):
            frames.append(encode_frame(enqueue_record(request)))
        for name, request in self.admitted.items():
            frames.append(encode_frame(enqueue_record(request)))
            frames.append(encode_frame(id_record(ADMIT, name)))
        with contextlib.suppress(FileNotFoundError):  # (a dead compaction's, or a link)
            os.unlink(NEW, dir_fd=self._dir)
        fd = os.open(NEW, _WRITE | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=self._dir)
        try:
            write_all(fd, HEADER + b"".join(frames))
            sync_file(fd)
        finally:
            os.close(fd)
        os.rename(NEW, LOG, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        os.fsync(self._dir)
        self.refresh()  # (the new file, read from its start)

    def sync(self) -> None:
        """Make every record appended so far durable (fdatasync; blocking, any thread).

        Syncs the descriptor the records went to; one replaced meanwhile (compacted) stays
        open until this returns, and its live records were synced into its successor.
        """
        with self._sync_guard:
            fd = self._fd
            if fd is None:
                return
            self._syncing += 1
        try:
            sync_file(fd)
        finally:
            with self._sync_guard:
                self._syncing -= 1
