"""A runtime's queues as it holds them: which it declares, their files, slots and waiting lists.

QueueRegistry knows the queues a runtime declares (validated once, here), opens each queue's
files under the journal directory (`_storage/_queue_files.py`), and keeps per declared queue
a QueueState: its concurrency slots, the waiting requests in start order as last listed, and
the event that wakes its dispatcher. A Grant is the slots one queued workflow's task holds.
Knows nothing of dispatching, enqueueing or the gate (the modules that use it).
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._engine import _records as records
from ._engine._clock import Clock
from ._engine._log_fields import durable_logger
from ._engine._set_aside import last_standing
from ._errors import DurableError, InvalidQueue, JournalNotFound
from ._queues import Queue
from ._storage._directory import JournalDirectory
from ._storage._interface import JournalStore
from ._storage._queue_files import QUEUES, QueueFiles, Request, Slots, is_missing, queue_names

logger = durable_logger()

POLL_INTERVAL = 0.05  # how often a dispatcher looks for other processes' changes (seconds)


@dataclass
class Grant:
    """The slots one queued workflow's task holds, given back when the task ends."""

    state: QueueState
    workflow_id: str
    slot: int | None
    key: str | None
    key_slot: int | None
    dedup_id: str | None
    request: Request | None = None  # (the dispatcher's: as read when it was enqueued)
    finished: bool = False  # (its workflow ended: forget its admission too)


@dataclass(order=True)
class Entry:
    """A waiting request as its queue's order sees it: (priority, enqueue order)."""

    priority: int
    seq: int
    workflow_id: str = field(compare=False)
    request: Request = field(compare=False)
    workflow_name: str = field(compare=False)


class Waiting:
    """The waiting requests of one queue, in order, as this runtime last read them."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._order: list[Entry] = []  # sorted; entries no longer waiting are skipped
        self._head = 0  # (before it: none is waiting any more)
        self._dead = 0
        self.version: tuple[int, int, int] | None = None  # the queue's version when listed
        self.listed_at = -1.0

    def add(self, entry: Entry) -> None:
        if entry.workflow_id in self.entries:
            return
        self.entries[entry.workflow_id] = entry
        bisect.insort(self._order, entry, lo=self._head)

    def remove(self, workflow_id: str) -> None:
        if self.entries.pop(workflow_id, None) is not None:
            self._dead += 1
            if self._dead > 64 and self._dead > len(self.entries):
                self._order = [e for e in self._order if self.entries.get(e.workflow_id) is e]
                self._dead = self._head = 0

    def ordered(self) -> Iterator[Entry]:
        order, entries = self._order, self.entries
        head = self._head
        while head < len(order) and entries.get(order[head].workflow_id) is not order[head]:
            head += 1
        self._head = head
        for index in range(head, len(order)):
            entry = order[index]
            if entries.get(entry.workflow_id) is entry:
                yield entry


class QueueState:
    """One declared queue in this runtime: its files, slots, waiting list and dispatcher."""

    def __init__(self, queue: Queue, files: QueueFiles) -> None:
        self.queue = queue
        self.files = files
        self.slots: Slots | None = (
            files.slots(queue.concurrency) if queue.concurrency is not None else None
        )
        self.waiting = Waiting()
        self.wake = asyncio.Event()
        self.gate_waiters = 0
        self.task: asyncio.Task[None] | None = None
        self.warned: set[str] = set()
        self.launching = 0
        self.due = False  # (the last round found a request it could start now)

    def give_back(self, slot: int | None, key: str | None, key_slot: int | None) -> None:
        """Unlock slots taken for one workflow (any of them None: not taken)."""
        if slot is not None and self.slots is not None:
            self.slots.give_back(slot)
        if key is not None and key_slot is not None:
            slots = self.files.key_slots(key, self.queue.concurrency_per_key or 1)
            slots.give_back(key_slot)
            self.files.forget_key(key)

    async def wait(self, clock: Clock, until: float | None) -> None:
        """Until woken here, `until` (clock time), or the poll interval for other processes."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.wake.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(clock.sleep_until(until)))
        try:
            await asyncio.wait(waits, timeout=POLL_INTERVAL, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


async def journal_exists(store: JournalStore, workflow_id: str) -> bool:
    """Whether the store has a journal for `workflow_id`.

    In a directory, whether its file's name is there (one lstat on the loop: an enqueue
    asks this each time, and a read on a worker thread cost more than the enqueue's append).
    """
    if isinstance(store, JournalDirectory):
        try:
            os.lstat(store.path_of(workflow_id))
        except FileNotFoundError:
            return False
        except OSError:
            pass  # (not readable: the read says why)
        else:
            return True
    try:
        await store.read(workflow_id)
    except JournalNotFound:
        return False
    return True


def journal_ended(stored: list[Any]) -> bool:
    """Whether a journal's records (as stored) hold the workflow's end."""
    if not stored:
        return False
    try:
        last = last_standing(stored, path="")
    except DurableError:  # (damaged, or a newer durable's, as the schema says: not known to)
        return False
    return last is not None and last["k"] == records.END and "cont" not in last


def release(grant: Grant) -> None:
    """Give a grant's slots back; if its workflow ended, forget its admission and dedup."""
    state = grant.state
    state.give_back(grant.slot, grant.key, grant.key_slot)
    if grant.finished:
        state.files.finish(grant.workflow_id)
        if grant.dedup_id is not None:
            state.files.dedup_release(grant.dedup_id, grant.workflow_id)
    state.wake.set()


def declared_of(queues: Iterable[Queue]) -> dict[str, Queue]:
    """The queues a runtime declares, by name.

    Raises:
        InvalidQueue: not a Queue, or two declarations of one name that differ.
    """
    declared: dict[str, Queue] = {}
    for queue in queues:
        if not isinstance(queue, Queue):
            raise InvalidQueue(
                queue=str(queue),
                option="queues",
                value=queue,
                expected="durable.Queue objects",
            )
        known = declared.setdefault(queue.name, queue)
        if known != queue:
            raise InvalidQueue(
                queue=queue.name,
                option="queues",
                value=queue,
                expected=f"one declaration per name ({known!r} is declared too)",
            )
    return declared


class QueueRegistry:
    """The queues a runtime declares (checked here), and every queue's files it opened.

    Raises:
        InvalidQueue: (constructor) not a Queue, two declarations of one name that differ,
            or queues on a store without a journal directory.
    """

    def __init__(self, store: JournalStore, directory: Path | None, queues: Iterable[Queue]):
        self.store = store
        self.directory = directory
        self.declared = declared_of(queues)
        if self.declared and directory is None:
            raise InvalidQueue(
                queue=next(iter(self.declared)),
                option="store",
                value=store,
                expected="a journal directory or a PostgresStore",
            )
        self.states: dict[str, QueueState] = {}
        self._files: dict[str, QueueFiles] = {}  # every queue's files this runtime opened
        self._queues_seen: tuple[int, list[str]] = (-1, [])
        # (text, joined once: every start asks whether its id is queued)
        self._queues_path = None if directory is None else os.path.join(directory, QUEUES)

    def files_of(self, name: str, *, create: bool) -> QueueFiles | None:
        """A queue's files (None: it has none and `create` is False)."""
        files = self._files.get(name)
        if files is None and self.directory is not None:
            try:
                files = QueueFiles(self.directory, name, create=create)
            except OSError as error:
                if create or not is_missing(error):
                    raise
                return None  # (none; or half made, or something planted: not a queue)
            self._files[name] = files
        return files

    def queue_names(self) -> list[str]:
        """The queues with state in the directory (cached while queues/ is unchanged)."""
        if self.directory is None or self._queues_path is None:
            return []
        try:
            version = os.stat(self._queues_path).st_mtime_ns
        except FileNotFoundError:
            return []
        if version != self._queues_seen[0]:
            names = queue_names(self.directory)  # (directories only: nothing planted)
            self._queues_seen = (version, names)
        return self._queues_seen[1]

    def state_of(self, name: str) -> QueueState | None:
        """A declared queue's state (None: this runtime does not declare `name`)."""
        state = self.states.get(name)
        if state is None and name in self.declared:
            files = self.files_of(name, create=True)
            assert files is not None
            state = self.states[name] = QueueState(self.declared[name], files)
            stored = files.read_config()
            config = state.queue.config()
            if stored is not None and stored != config:
                logger.warning(
                    "queue %r was declared with other limits before (%s); now %s. Each runtime "
                    "holds the limits it declares: declare the queue alike everywhere",
                    name,
                    stored.decode(errors="replace"),
                    config.decode(),
                )
            if stored != config:
                files.write_config(config)
        return state

    def queued_in(self, workflow_id: str) -> tuple[str, bool] | None:
        """The queue whose request `workflow_id` is (and whether admitted), if any."""
        for name in self.queue_names():
            files = self.files_of(name, create=False)
            if files is None:
                continue
            if files.is_admitted(workflow_id):
                return name, True
            if files.is_waiting(workflow_id):
                return name, False
        return None

    def close(self) -> None:
        """Release every slot and descriptor (after the workflows stopped)."""
        for state in self.states.values():
            if state.slots is not None:
                state.slots.close()
        for files in self._files.values():
            files.close()
        self._files.clear()
        self.states.clear()
