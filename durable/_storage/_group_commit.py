"""Group commit: every journal of a directory shares one sync thread and, per batch, one sync.

An append writes its frame at once, on the caller's thread (a page-cache write of a few
microseconds, which also makes it survive a crash of the process), then waits until a sync
covers it. The sync thread takes every request queued since its last pass as one batch and
makes them durable with one sync; requests that arrive while a sync is in flight ride on the
next one. While the thread syncs, the event loop keeps running and writing the next records,
so syncs overlap with the work that produces them.

Which sync (figures in benchmarks/journal.py and the foundation issue's note): one file is
made durable with `fdatasync`, which touches only our data; two or more with one `syncfs(2)`
on the directory, which on ext4 costs about one fdatasync whatever the number of files
(per-file fdatasync grows linearly). `syncfs` reports writeback errors since Linux 5.8 but
not which file failed, and the failure may belong to a file outside the batch (another open
journal, or not ours at all). So after a failed syncfs every open journal on the filesystem
is fdatasynced on its own: each file's error is reported once to each descriptor that has not
seen it, so exactly the files that lost data fail, and a journal that later syncs only
through syncfs cannot be acknowledged over a lost write.

Where the sync runs. An appender alone (nothing queued or in flight, nothing else ready on
its loop) syncs on its own thread at once: handing a sync to another thread and back costs
~70 us on this class of machine, a third of an fdatasync. Several appenders on one asyncio
loop join a round: the round is committed when the loop has run everything else that was
ready (every workflow got as far as it could), with one sync on the loop's thread, and its
waiters settled directly. A sync thread would overlap the sync with the loop's work, but in
CPython the two threads then fight over the GIL at every write and wake-up, which costs more
than the overlap gains (100 workflows x 20 steps: ~18k steps/s through the thread, ~30k
inline). Both block the loop for one sync, so both are bounded: while recent syncs took
longer than `inline_budget`, syncs go to the thread, and so do rounds on loops other than
asyncio's own (whose ready queue cannot be seen).

A failed write or sync is final for that file (PostgreSQL's "fsyncgate"): every record not
yet acknowledged fails, later appends fail, and only reopening, which reads what is really
on disk, resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errno_codes
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .._asyncio_private import loop_is_idle
from .._errors import JournalWriteError
from . import _file_io
from ._file_io import syncfs_error

# Names of this module, looked up when called: tests, the power-loss simulator and
# benchmarks.step_cpu substitute group_commit.sync_file, .write_all and ._load_syncfs
# (and may .sync_directory, which calls os.fsync as it finds it).
sync_file = _file_io.sync_file
write_all = _file_io.write_all
sync_directory = _file_io.sync_directory
_load_syncfs = _file_io.load_syncfs

SyncMode = Literal["auto", "fdatasync", "syncfs"]

logger = logging.getLogger("durable.storage")


class CommitTarget:
    """One open file as the committer sees it: how many bytes are written, how many durable.

    `written` is advanced by the appending thread, `synced` by whoever synced (the sync
    thread, or the appender inline while the thread is idle), never both at once.
    """

    __slots__ = (
        "__weakref__",
        "failed_operation",
        "failure",
        "fd",
        "in_flight",
        "new_entry",
        "path",
        "same_device",
        "synced",
        "written",
    )

    def __init__(
        self,
        fd: int,
        path: Path,
        *,
        same_device: bool,
        new_entry: bool = False,
        written: int = 0,
        synced: int = 0,
    ) -> None:
        self.fd = fd
        self.path = path
        self.same_device = same_device
        # A new file: its directory entry is durable only after a directory fsync (or a
        # syncfs), done with its first sync, before any of its records is acknowledged.
        self.new_entry = new_entry
        self.in_flight = 0  # sync requests not settled yet (counted on the appender's loop)
        # Byte offsets: the file's end, and how much of it a completed sync covers (the
        # watermark the next frame carries).
        self.written = written
        self.synced = synced
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

    def write(self, frame: bytes) -> None:
        """Write one frame now (page cache); raises JournalWriteError and fails the target."""
        if self.failure is not None:
            raise self.error()
        try:
            write_all(self.fd, frame)
        except OSError as error:
            self.fail("write", error)
            raise self.error() from None
        self.written += len(frame)


DEFAULT_BUDGET = 0.002
_ROUND_PASSES = 4  # a round waits at most this many passes over the ready queue

_Waiter = asyncio.Future[None]
_Request = tuple[CommitTarget, int, _Waiter]
_Settled = tuple[CommitTarget, _Waiter, BaseException | None]  # (what to raise; None: durable)
_STOP = object()


class GroupCommitter:
    """Shares syncs among all journals of one directory, on one dedicated thread.

    Args:
        directory_fd: an open descriptor of the directory, used by `syncfs`.
        mode: "auto" (default: fdatasync for one file, syncfs for several),
            "fdatasync" (always per file) or "syncfs" (always the whole filesystem).
        inline_budget: seconds (default 0.002); syncs run on the event loop's thread while
            recent syncs took less than this. 0 always uses the sync thread.
    """

    def __init__(
        self, directory_fd: int, *, mode: SyncMode = "auto", inline_budget: float = DEFAULT_BUDGET
    ) -> None:
        self._directory_fd = directory_fd
        self._syncfs = _load_syncfs() if mode != "fdatasync" else None
        if mode == "syncfs" and self._syncfs is None:
            raise ValueError("sync mode 'syncfs' needs Linux; use 'auto' or 'fdatasync'")
        self._always_syncfs = mode == "syncfs"
        self._inline_budget = inline_budget
        self._recent_sync = 0.0  # seconds, a moving average of recent syncs, wherever run
        self._rounds: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
        self._queue: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping: threading.Thread | None = None  # the thread stop() last ended
        self._lock = threading.Lock()
        self._outstanding = 0  # requests queued or in flight on the thread; under _lock
        # Every open target, for attributing a syncfs error; a target leaves (under the
        # lock) before its descriptor is closed, so a number is never synced after reuse.
        self._open_targets: weakref.WeakSet[CommitTarget] = weakref.WeakSet()
        self._open_targets_lock = threading.Lock()
        # Told of each sync: (seconds, appends it made durable); metrics (observe_syncs)
        self.on_sync: Callable[[float, int], None] | None = None

    def register(self, target: CommitTarget) -> None:
        """Track an open file, so that a failed syncfs checks it too."""
        with self._open_targets_lock:
            self._open_targets.add(target)

    def release(self, target: CommitTarget) -> None:
        """Stop tracking `target` and close its descriptor."""
        with self._open_targets_lock:
            self._open_targets.discard(target)
            os.close(target.fd)

    def syncs_are_fast(self) -> bool:
        """Whether recent syncs took less than the inline budget (a sync here may block)."""
        return self._inline_budget > 0 and self._recent_sync < self._inline_budget

    def sync_inline(self, target: CommitTarget, loop: asyncio.AbstractEventLoop) -> bool:
        """Sync `target` on the calling thread if nothing else is pending; else do nothing.

        Returns False when other requests are queued or in flight, when the loop has other
        callbacks ready, or when recent inline syncs ran over the budget.

        Raises:
            JournalWriteError: the sync failed; the target takes no more work.
        """
        if self._outstanding or self._recent_sync >= self._inline_budget:
            return False  # (an unlocked peek: the locked check below decides)
        if not loop_is_idle(loop) or target.failure is not None:  # (None, another loop: never)
            return False
        # acquire() and try/finally, not `with`: the statement's special-method lookups
        # and __exit__ call cost more than the lock itself, twice on every inline sync
        # (~2.7k instructions); the guarantee is the same.
        lock = self._lock
        lock.acquire()
        try:
            if self._outstanding:
                return False
            self._outstanding = 1  # keeps the thread from syncing meanwhile
        finally:
            lock.release()
        try:
            mark = target.written
            started = time.perf_counter()
            try:
                sync_file(target.fd)
                if target.new_entry:
                    sync_directory(self._directory_fd)
                    target.new_entry = False
            except OSError as error:
                target.fail("fdatasync", error)
                raise target.error() from None
            target.synced = mark
            elapsed = time.perf_counter() - started
            # (_note_sync_time, inline)
            self._recent_sync = 0.75 * self._recent_sync + 0.25 * elapsed
            if self.on_sync is not None:
                self.on_sync(elapsed, 1)
            return True
        finally:
            lock.acquire()
            try:
                self._outstanding -= 1
            finally:
                lock.release()

    def _note_sync_time(self, elapsed: float) -> None:
        # Decays fast, so one slow sync does not disable inline syncs for long.
        self._recent_sync = 0.75 * self._recent_sync + 0.25 * elapsed

    def join_round(
        self, target: CommitTarget, waiter: _Waiter, loop: asyncio.AbstractEventLoop
    ) -> None:
        """Settle `waiter` once `target` is durable, with one sync for this loop's round."""
        if loop_is_idle(loop) is None or self._inline_budget <= 0:  # (not asyncio's loop)
            self.request_sync(target, waiter)
            return
        target.in_flight += 1  # (settled by _resolve: no done callback, no extra handle)
        requests = self._rounds.get(loop)
        if requests is None:
            requests = self._rounds[loop] = []
            loop.call_soon(self._end_round, loop, requests, 0)
        requests.append((target, target.written, waiter))

    def _end_round(
        self, loop: asyncio.AbstractEventLoop, requests: list[_Request], waited: int
    ) -> None:
        """Commit a round once nothing else is ready on its loop (or after a few passes)."""
        if not loop_is_idle(loop) and waited < _ROUND_PASSES:
            loop.call_soon(self._end_round, loop, requests, waited + 1)
            return
        if self._rounds.get(loop) is requests:
            del self._rounds[loop]
        with self._lock:
            inline = not self._outstanding and self._recent_sync < self._inline_budget
            self._outstanding += len(requests)
            if not inline:  # the thread is busy (it must not sync meanwhile) or syncs are slow
                put = self._thread_queue().put
                for request in requests:
                    put(request)
                return
        try:
            self._commit(requests, on_loop=loop)
        except Exception as error:
            logger.exception("durable's inline commit failed; failing the round")
            self._abandon(requests, error)
        finally:
            with self._lock:
                self._outstanding -= len(requests)

    def request_sync(self, target: CommitTarget, waiter: _Waiter) -> None:
        """Settle `waiter` once every frame written to `target` so far is durable."""
        target.in_flight += 1
        with self._lock:
            self._outstanding += 1
            self._thread_queue().put((target, target.written, waiter))

    def _thread_queue(self) -> queue.SimpleQueue[_Request | object]:
        """The sync thread's queue, the thread started if there is none (hold `_lock`).

        Each thread has a queue of its own, and requests are put under the lock stop()
        takes the thread with: a request comes before that thread's _STOP (it syncs it), or
        goes to the next thread, which starts syncing once the stopped one has ended. (One
        shared queue: a request asked while stop() ran started a thread that could take the
        old one's _STOP, and stop() joined the old one for ever; both synced at once, and
        the older mark could move `synced` back; a request put just after a _STOP was
        never synced.)
        """
        if self._thread is None:
            self._queue = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._run,
                args=(self._queue, self._stopping),
                name="durable-sync",
                daemon=True,
            )
            thread.start()
            self._thread = thread
        return self._queue

    def stop(self) -> None:
        """Finish queued work and end the thread (blocking: call it from a worker thread)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(_STOP)
                self._stopping = thread
        if thread is not None:
            thread.join()

    def _run(
        self, requests: queue.SimpleQueue[_Request | object], previous: threading.Thread | None
    ) -> None:
        if previous is not None:
            previous.join()  # (its last syncs first: two syncs of one file must not overlap)
        get, get_nowait = requests.get, requests.get_nowait
        stopping = False
        while not stopping:
            first = get()
            if first is _STOP:
                return
            batch: list[_Request] = [first]  # type: ignore[list-item]
            while True:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            try:
                self._commit(batch)
            except Exception as error:  # a bug must not leave appenders waiting forever
                logger.exception("durable's sync thread failed; failing the batch")
                self._abandon(batch, error)
            finally:
                with self._lock:
                    self._outstanding -= len(batch)

    @staticmethod
    def _abandon(batch: list[_Request], error: Exception) -> None:
        for target, _, _ in batch:
            target.fail("sync", OSError(errno_codes.EIO, f"internal error: {error!r}"))
        for target, _, waiter in batch:
            settled: list[_Settled] = [(target, waiter, target.error())]
            with contextlib.suppress(RuntimeError):
                waiter.get_loop().call_soon_threadsafe(_resolve, settled)

    def _commit(
        self, batch: list[_Request], on_loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Sync what `batch` waits for, then settle its waiters (directly if on `on_loop`)."""
        pending = {
            target
            for target, wanted, _ in batch
            if wanted > target.synced and target.failure is None
        }
        if pending:
            elapsed = self._sync(pending)
            if self.on_sync is not None:
                self.on_sync(elapsed, len(batch))
        if on_loop is not None:  # a round: every waiter is on its loop
            _resolve([(target, waiter, _error(target, wanted)) for target, wanted, waiter in batch])
            return
        outcomes: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
        for target, wanted, waiter in batch:
            error = _error(target, wanted)
            outcomes.setdefault(waiter.get_loop(), []).append((target, waiter, error))
        for loop, settled in outcomes.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve, settled)

    def _sync(self, targets: set[CommitTarget]) -> float:
        """Sync `targets`; how long it took (seconds)."""
        started = time.perf_counter()
        try:
            self._sync_now(targets)
        finally:
            elapsed = time.perf_counter() - started
            self._note_sync_time(elapsed)
        return elapsed

    def _sync_now(self, targets: set[CommitTarget]) -> None:
        marks = {target: target.written for target in targets}  # read before the sync
        shared = [target for target in targets if target.same_device]
        if self._syncfs is not None and (len(shared) > 1 or (self._always_syncfs and shared)):
            if self._syncfs(self._directory_fd) == 0:
                for target in shared:  # (syncfs wrote their directory entries too)
                    target.synced = marks[target]
                    target.new_entry = False
            else:
                self._attribute_syncfs_error(syncfs_error(), marks)
            targets = targets.difference(shared)
        synced = []
        for target in targets:
            try:
                sync_file(target.fd)
            except OSError as error:
                target.fail("fdatasync", error)
            else:
                synced.append(target)
        if any(target.new_entry for target in synced):
            try:
                sync_directory(self._directory_fd)  # one for every new file of the batch
            except OSError as error:
                for target in synced:
                    if target.new_entry:
                        target.fail("fsync of the directory", error)
        for target in synced:
            if target.failure is None:
                target.new_entry = False
                target.synced = marks[target]

    def _attribute_syncfs_error(self, error: OSError, marks: dict[CommitTarget, int]) -> None:
        """Sync each open journal on the filesystem alone: the ones that lost data fail."""
        logger.warning("syncfs failed (%s); checking each open journal with fdatasync", error)
        with self._open_targets_lock:
            suspects = [target for target in self._open_targets if target.same_device]
            for target in suspects:
                if target.failure is not None:
                    continue
                try:
                    sync_file(target.fd)
                    if target.new_entry and target in marks:
                        sync_directory(self._directory_fd)
                        target.new_entry = False
                except OSError as file_error:
                    target.fail("fdatasync after a failed syncfs", file_error)
                else:
                    if target in marks:  # in this batch: its records are now durable
                        target.synced = marks[target]


def _error(target: CommitTarget, wanted: int) -> BaseException | None:
    """Why a request is not durable after its sync (None: it is)."""
    return target.error() if wanted > target.synced else None


def _resolve(settled: list[_Settled]) -> None:
    """Settle requests, on their waiters' loop (where `in_flight` is counted)."""
    for target, waiter, error in settled:
        target.in_flight -= 1
        if waiter.done():  # the appender was cancelled; its record was still written
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
