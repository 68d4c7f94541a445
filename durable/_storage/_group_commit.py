"""Group commit: every append in a directory shares one sync thread and, per batch, one sync.

Appenders hand frames to a dedicated thread and wait on an asyncio future. The thread takes
everything queued since its last pass as one batch, writes each file's frames with one
`write`, makes them durable with one sync, and settles the batch's futures with one
`call_soon_threadsafe` per event loop. Records that arrive while a sync is in flight ride on
the next one. The event loop never blocks on file I/O.

Which sync (figures in benchmarks/journal.py and the foundation issue's note): one dirty file
is made durable with `fdatasync`, which touches only our data; two or more with a single
`syncfs(2)` on the directory, which on ext4 costs about one fdatasync whatever the number of
files, where per-file fdatasync grows linearly. `syncfs` reports writeback errors since
Linux 5.8; as it cannot say which file failed, an error fails every file of the batch.

A failed write or sync is final for that file (PostgreSQL's "fsyncgate"): its pending and
later appends fail, and only reopening, which reads what is really on disk, resumes it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno as errno_codes
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .._errors import JournalWriteError

SyncMode = Literal["auto", "fdatasync", "syncfs"]

logger = logging.getLogger("durable.storage")

_sync_file: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


class CommitTarget:
    """The committer's view of one open file; only the sync thread writes to its fd."""

    __slots__ = ("fd", "path", "same_device", "dirty", "failure", "failed_operation")

    def __init__(self, fd: int, path: Path, *, same_device: bool) -> None:
        self.fd = fd
        self.path = path
        self.same_device = same_device
        self.dirty = False
        self.failure: OSError | None = None
        self.failed_operation = ""

    def fail(self, operation: str, error: OSError) -> None:
        if self.failure is None:
            self.failure = error
            self.failed_operation = operation
            logger.error("%s failed on journal %s: %s", operation, self.path, error)

    def error(self) -> JournalWriteError:
        """A fresh exception (one per waiter, so tracebacks do not pile up on one object)."""
        failure = self.failure
        assert failure is not None
        error = JournalWriteError(
            path=self.path,
            operation=self.failed_operation,
            errno=failure.errno,
            detail=failure.strerror or str(failure),
        )
        error.__cause__ = failure
        return error


_Request = tuple[CommitTarget, bytes | None, "asyncio.Future[None] | None"]
_STOP = object()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:  # a regular file only returns 0 when it cannot grow
            raise OSError(errno_codes.ENOSPC, os.strerror(errno_codes.ENOSPC))
        view = view[written:]


class GroupCommitter:
    """Shares syncs among all appenders of one directory, on one dedicated thread.

    Args:
        directory_fd: an open descriptor of the directory, used by `syncfs`.
        mode: "auto" (default: fdatasync for one dirty file, syncfs for several),
            "fdatasync" (always per file) or "syncfs" (always the whole filesystem).
        inline_budget: seconds (default 0.001). When an appender is alone (nothing queued
            or in flight, no other callback ready on its loop) and recent inline syncs
            took less than this, it syncs on the calling thread: a hand-off to another
            thread costs ~70 us here, a third of an fdatasync. 0 never syncs inline.
    """

    def __init__(
        self, directory_fd: int, *, mode: SyncMode = "auto", inline_budget: float = 0.001
    ) -> None:
        self._directory_fd = directory_fd
        self._syncfs = _load_syncfs() if mode != "fdatasync" else None
        if mode == "syncfs" and self._syncfs is None:
            raise ValueError("sync mode 'syncfs' needs Linux; use 'auto' or 'fdatasync'")
        self._always_syncfs = mode == "syncfs"
        self._queue: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._inline_budget = inline_budget
        self._recent_inline_sync = 0.0
        self._outstanding = 0  # requests queued or in flight on the thread; under _lock

    def submit(
        self, target: CommitTarget, frame: bytes | None, waiter: asyncio.Future[None] | None
    ) -> None:
        """Queue `frame` (if any) for `target`; settle `waiter` (if any) once it is durable."""
        if self._thread is None:
            self._start()
        with self._lock:
            self._outstanding += 1
        self._queue.put((target, frame, waiter))

    def try_inline(self, target: CommitTarget, frame: bytes, loop: asyncio.AbstractEventLoop) -> bool:
        """Write and sync `frame` on the calling thread if nothing else is pending.

        Returns False, having done nothing, when other work is queued or in flight, when the
        loop has other callbacks ready, or when recent inline syncs ran over the budget: then
        the caller submits instead. Blocks for one write and one fdatasync.

        Raises:
            JournalWriteError: the write or the sync failed; the target takes no more work.
        """
        if self._recent_inline_sync > self._inline_budget or target.failure is not None:
            return False
        ready = getattr(loop, "_ready", None)  # asyncio's ready queue; unknown loops: never
        if ready is None or len(ready) > 0:
            return False
        with self._lock:
            if self._outstanding:
                return False
            self._outstanding = 1  # keeps the thread off our files meanwhile
        try:
            started = time.perf_counter()
            try:
                _write_all(target.fd, frame)
            except OSError as error:
                target.fail("write", error)
                raise target.error() from None
            try:
                _sync_file(target.fd)
            except OSError as error:
                target.fail("fdatasync", error)
                raise target.error() from None
            target.dirty = False
            elapsed = time.perf_counter() - started
            # Decays quickly, so one slow sync does not disable the fast path for long.
            self._recent_inline_sync = 0.75 * self._recent_inline_sync + 0.25 * elapsed
            return True
        finally:
            with self._lock:
                self._outstanding -= 1

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="durable-sync", daemon=True)
                thread.start()
                self._thread = thread

    def stop(self) -> None:
        """Finish queued work and end the thread (blocking: call it from a worker thread)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            first = get()
            if first is _STOP:
                return
            batch = [first]
            stopping = False
            while True:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)  # type: ignore[arg-type]
            with self._lock:
                self._outstanding -= len(batch)
            if stopping:
                return

    def _commit(self, batch: list[_Request]) -> None:
        frames: dict[CommitTarget, list[bytes]] = {}
        waiters: list[tuple[CommitTarget, asyncio.Future[None]]] = []
        for target, frame, waiter in batch:
            pending = frames.setdefault(target, [])
            if frame is not None:
                pending.append(frame)
            if waiter is not None:
                waiters.append((target, waiter))
        for target, pending in frames.items():
            if pending and target.failure is None:
                try:
                    _write_all(target.fd, pending[0] if len(pending) == 1 else b"".join(pending))
                except OSError as error:
                    target.fail("write", error)
                else:
                    target.dirty = True
        self._sync({target for target, _ in waiters if target.dirty and target.failure is None})
        self._settle(waiters)

    def _sync(self, targets: set[CommitTarget]) -> None:
        shared = [target for target in targets if target.same_device]
        if self._syncfs is not None and (len(shared) > 1 or (self._always_syncfs and shared)):
            if self._syncfs(self._directory_fd) != 0:
                code = ctypes.get_errno()
                error = OSError(code, os.strerror(code))
                for target in shared:
                    target.fail("syncfs", error)
            else:
                for target in shared:
                    target.dirty = False
            targets = targets.difference(shared)
        for target in targets:
            try:
                _sync_file(target.fd)
            except OSError as error:
                target.fail("fdatasync", error)
            else:
                target.dirty = False

    @staticmethod
    def _settle(waiters: list[tuple[CommitTarget, asyncio.Future[None]]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]] = {}
        for target, waiter in waiters:
            outcome = target.error() if target.failure is not None else None
            by_loop.setdefault(waiter.get_loop(), []).append((waiter, outcome))
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, outcomes)
            except RuntimeError:  # the loop was closed; nobody is waiting any more
                pass


def _resolve(outcomes: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for waiter, error in outcomes:
        if waiter.done():  # the appender was cancelled; the record was still written
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
