"""A runtime's queues: enqueue, dispatch in order within the limits, and the slot gate.

One QueueService per Runtime (file store). For each queue the runtime declares it runs a
dispatcher task: under the queue's lock it takes a concurrency slot (an flock on a slot
file, so a process that dies lets go of it), checks the rate ring, then claims the first
request in (priority, enqueue order) whose delay has passed and whose key has a free slot,
and starts its workflow holding those slots (a Grant) until the workflow's task ends.

A queued workflow resumed anywhere else (recover(), serve(), a handle taking it over after
its runner died) passes the gate (`gate`): while its id is admitted (or waiting) in a queue,
its runner must hold a slot of that queue first, so a crash never lets a limit be exceeded
and never leaks a slot. A runtime that does not declare the queue refuses it
(QueueNotDeclared). Knows the runtime only by the QueueHost protocol.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio.to_thread

from ._definitions import Workflow
from ._encoding import convert, decode, encode
from ._engine import _records as records
from ._engine._clock import Clock
from ._engine._describe import WorkflowDescription
from ._errors import (
    AlreadyQueued,
    DurableError,
    InvalidQueue,
    JournalNotFound,
    QueueNotDeclared,
    WorkflowAlreadyRunning,
    WorkflowStopped,
)
from ._queue_reading import describe_queued
from ._queues import Queue
from ._storage._interface import JournalStore
from ._storage._queue_files import QUEUES, DamagedRequest, QueueFiles, Request, Slots

logger = logging.getLogger("durable")

POLL_INTERVAL = 0.05  # how often a dispatcher looks for other processes' changes (seconds)
REFRESH_INTERVAL = 0.05  # the least time between two listings of a queue's waiting requests
OnDuplicate = Literal["return", "raise"]


class QueueHost(Protocol):
    """What the service needs of its Runtime."""

    _workflows: dict[str, Workflow[..., Any]]

    async def _start(
        self,
        definition: Workflow[..., Any],
        workflow_id: str,
        arguments: list[Any] | None,
        *,
        follow: bool = True,
    ) -> Any: ...


@dataclass
class Grant:
    """The slots one queued workflow's task holds, given back when the task ends."""

    state: _QueueState
    workflow_id: str
    slot: int | None
    key: str | None
    key_slot: int | None
    dedup_id: str | None
    request: Request | None = None  # (the dispatcher's: as read when it was enqueued)
    finished: bool = False  # (its workflow ended: forget its admission too)


@dataclass(order=True)
class _Entry:
    priority: int
    seq: int
    workflow_id: str = field(compare=False)
    request: Request = field(compare=False)
    workflow_name: str = field(compare=False)


class _Waiting:
    """The waiting requests of one queue, in order, as this runtime last read them."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self._order: list[_Entry] = []  # sorted; entries no longer waiting are skipped
        self._head = 0  # (before it: none is waiting any more)
        self._dead = 0
        self.version = -1  # the waiting/ directory's mtime when last listed
        self.listed_at = -1.0

    def add(self, entry: _Entry) -> None:
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

    def ordered(self) -> Iterator[_Entry]:
        order, entries = self._order, self.entries
        head = self._head
        while head < len(order) and entries.get(order[head].workflow_id) is not order[head]:
            head += 1
        self._head = head
        for index in range(head, len(order)):
            entry = order[index]
            if entries.get(entry.workflow_id) is entry:
                yield entry


class _QueueState:
    """One declared queue in this runtime: its files, slots, waiting list and dispatcher."""

    def __init__(self, queue: Queue, files: QueueFiles) -> None:
        self.queue = queue
        self.files = files
        self.slots: Slots | None = (
            files.slots(queue.concurrency) if queue.concurrency is not None else None
        )
        self.waiting = _Waiting()
        self.wake = asyncio.Event()
        self.gate_waiters = 0
        self.task: asyncio.Task[None] | None = None
        self.warned: set[str] = set()
        self.launching = 0
        self.due = False  # (the last round found a request it could start now)


def _finished(stored: list[Any]) -> bool:
    if not stored:
        return False
    try:
        last = decode(stored[-1].payload, path="", offset=stored[-1].offset)
    except DurableError:
        return False
    return isinstance(last, dict) and last.get("k") == records.END and "cont" not in last


class QueueService:
    """Enqueue, dispatch and gate for one runtime (see the module docstring)."""

    def __init__(
        self,
        host: QueueHost,
        store: JournalStore,
        directory: Path | None,
        queues: Iterable[Queue],
        clock: Clock,
    ) -> None:
        self._host = host
        self._store = store
        self._directory = directory
        self._clock = clock
        self._declared: dict[str, Queue] = {}
        for queue in queues:
            if not isinstance(queue, Queue):
                raise InvalidQueue(
                    queue=str(queue),
                    option="queues",
                    value=queue,
                    expected="durable.Queue objects",
                )
            known = self._declared.setdefault(queue.name, queue)
            if known != queue:
                raise InvalidQueue(
                    queue=queue.name,
                    option="queues",
                    value=queue,
                    expected=f"one declaration per name ({known!r} is declared too)",
                )
        if self._declared and directory is None:
            raise InvalidQueue(
                queue=next(iter(self._declared)),
                option="store",
                value=store,
                expected="a journal directory: queues run on the file store for now "
                "(PostgreSQL queues are not implemented yet)",
            )
        self._states: dict[str, _QueueState] = {}
        self._files: dict[str, QueueFiles] = {}  # every queue's files this runtime opened
        self._granted: dict[str, Grant] = {}  # admitted here, its task not at the gate yet
        self._gated: set[str] = set()  # ids whose task waits at the gate for a slot
        self._admitted: dict[str, asyncio.Future[None]] = {}  # handles waiting for a start
        self._syncing: list[tuple[QueueFiles, str, asyncio.Future[None]]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._launches: set[asyncio.Task[None]] = set()
        self._configured: set[str] = set()  # (queues whose config file this runtime checked)
        self._closed = False
        self._queues_seen: tuple[int, list[str]] = (-1, [])

    @property
    def declared(self) -> list[str]:
        return sorted(self._declared)

    # -- files ----------------------------------------------------------------------------

    def _files_of(self, name: str, *, create: bool) -> QueueFiles | None:
        files = self._files.get(name)
        if files is None and self._directory is not None:
            try:
                files = QueueFiles(self._directory, name, create=create)
            except FileNotFoundError:
                return None
            self._files[name] = files
        return files

    def _queue_names(self) -> list[str]:
        """The queues with state in the directory (cached while queues/ is unchanged)."""
        if self._directory is None:
            return []
        try:
            version = os.stat(self._directory / QUEUES).st_mtime_ns
        except FileNotFoundError:
            return []
        if version != self._queues_seen[0]:
            names = sorted(entry.name for entry in os.scandir(self._directory / QUEUES))
            self._queues_seen = (version, names)
        return self._queues_seen[1]

    def _state_of(self, name: str) -> _QueueState | None:
        state = self._states.get(name)
        if state is None and name in self._declared:
            files = self._files_of(name, create=True)
            assert files is not None
            state = self._states[name] = _QueueState(self._declared[name], files)
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

    # -- enqueue ---------------------------------------------------------------------------

    async def enqueue(
        self,
        queue: Queue,
        definition: Workflow[..., Any],
        arguments: list[Any],
        *,
        workflow_id: str | None,
        key: str | None,
        priority: int,
        dedup_id: str | None,
        delay: float,
        on_duplicate: OnDuplicate,
    ) -> str:
        """Write a request durably; the workflow id (an existing one's for a duplicate).

        Raises:
            AlreadyQueued: a duplicate and on_duplicate="raise".
        """
        if self._directory is None:
            raise InvalidQueue(
                queue=queue.name,
                option="store",
                value=self._store,
                expected="a journal directory: queues run on the file store for now",
            )
        if on_duplicate not in ("return", "raise"):
            raise InvalidQueue(
                queue=queue.name,
                option="on_duplicate",
                value=on_duplicate,
                expected='"return" or "raise"',
            )
        known = self._declared.get(queue.name)
        if known is not None and known != queue:
            raise InvalidQueue(
                queue=queue.name,
                option="queue",
                value=queue,
                expected=f"the queue this runtime declares ({known!r})",
            )
        payload = encode(
            {"wf": definition.name, "args": arguments},
            context=f"the arguments of workflow {definition.name!r}",
        )
        if workflow_id is None:
            workflow_id = f"{definition.name}-{uuid.uuid4().hex}"
        self._store.check_name(workflow_id)
        files = self._files_of(queue.name, create=True)
        assert files is not None
        if queue.name not in self._configured:  # (for readers, before any runtime serves it)
            self._configured.add(queue.name)
            if files.read_config() is None:
                files.write_config(queue.config())
        if files.is_admitted(workflow_id) or await self._journal_exists(workflow_id):
            return self._duplicate(queue, workflow_id, None, on_duplicate)
        if dedup_id is not None:
            holder = files.dedup_claim(dedup_id, workflow_id)
            if holder is not None and not await self._live(files, holder):
                files.dedup_release(dedup_id, holder)  # (its workflow ended: reuse the id)
                holder = files.dedup_claim(dedup_id, workflow_id)
            if holder is not None:
                return self._duplicate(queue, holder, dedup_id, on_duplicate)
        now = self._clock.time()
        with files.locked():
            seq = files.next_seq()
        request = Request(workflow_id, priority, seq, now, now + delay, key, dedup_id, payload)
        if not files.create(request):
            if dedup_id is not None:
                files.dedup_release(dedup_id, workflow_id)
            return self._duplicate(queue, workflow_id, None, on_duplicate)
        await self._synced(files, workflow_id)
        state = self._states.get(queue.name)
        if state is not None:
            state.waiting.add(_Entry(priority, seq, workflow_id, request, definition.name))
            state.wake.set()
        self.wake()
        return workflow_id

    def _duplicate(
        self, queue: Queue, workflow_id: str, dedup_id: str | None, on_duplicate: OnDuplicate
    ) -> str:
        if on_duplicate == "raise":
            raise AlreadyQueued(queue=queue.name, workflow_id=workflow_id, dedup_id=dedup_id)
        return workflow_id

    async def _journal_exists(self, workflow_id: str) -> bool:
        try:
            await self._store.read(workflow_id)
        except JournalNotFound:
            return False
        return True

    async def _live(self, files: QueueFiles, workflow_id: str) -> bool:
        """Whether a workflow is queued or running (not ended) on the store."""
        if files.is_waiting(workflow_id):
            return True
        try:
            stored = await self._store.read(workflow_id)
        except JournalNotFound:
            return files.is_admitted(workflow_id)
        return not _finished(stored)

    async def _synced(self, files: QueueFiles, name: str) -> None:
        """Wait until the request is durable: enqueues at once share one sync (a batch)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncing.append((files, name, future))
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_batches())
        await future

    async def _sync_batches(self) -> None:
        while self._syncing:
            batch, self._syncing = self._syncing, []
            by_files: dict[int, tuple[QueueFiles, list[str]]] = {}
            for files, name, _ in batch:
                by_files.setdefault(id(files), (files, []))[1].append(name)
            try:
                for files, names in by_files.values():
                    await anyio.to_thread.run_sync(files.sync, names)
            except Exception as error:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)

    # -- dispatching -------------------------------------------------------------------------

    def wake(self) -> None:
        """Start the dispatchers of the declared queues, once a loop runs this runtime."""
        if self._closed or not self._declared:
            return
        loop = asyncio.get_running_loop()
        for name in self._declared:
            state = self._state_of(name)
            assert state is not None
            if state.task is None or state.task.done():
                state.task = loop.create_task(self._dispatch(state), name=f"durable queue {name}")

    async def _dispatch(self, state: _QueueState) -> None:
        while True:
            state.wake.clear()
            self._refresh(state)
            admitted, until = self._admit_one(state)
            if admitted is not None:
                # (started as a task: a journal slow to open must not hold up the next start)
                state.launching += 1
                launch = asyncio.get_running_loop().create_task(self._launch(admitted))
                self._launches.add(launch)
                launch.add_done_callback(functools.partial(self._launched, state))
                await asyncio.sleep(0)
                continue
            await self._wait(state, until)

    def _launched(self, state: _QueueState, task: asyncio.Task[None]) -> None:
        state.launching -= 1
        self._launches.discard(task)

    async def _wait(self, state: _QueueState, until: float | None) -> None:
        """Until woken here, `until` (clock time), or the poll interval for other processes."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(state.wake.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(self._clock.sleep_until(until)))
        try:
            await asyncio.wait(waits, timeout=POLL_INTERVAL, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _refresh(self, state: _QueueState, *, force: bool = False) -> None:
        """Read what other runtimes changed in waiting/ (when its mtime moved)."""
        files, waiting = state.files, state.waiting
        version = files.waiting_version()
        now = time.monotonic()
        # (its own claims and enqueues move the mtime too; they are known already, so a
        # change is read at most every REFRESH_INTERVAL, and at least that often)
        if not force and (version == waiting.version or now - waiting.listed_at < REFRESH_INTERVAL):
            return
        waiting.version = version
        waiting.listed_at = now
        names = set(files.waiting())
        for gone in [name for name in waiting.entries if name not in names]:
            waiting.remove(gone)
        for name in names:
            if name in waiting.entries or name.endswith(".damaged"):
                continue
            try:
                request = files.read(name)
            except DamagedRequest as error:
                logger.error(
                    "queue %r: request %s set aside as %s.damaged: %s",
                    state.queue.name,
                    name,
                    name,
                    error,
                )
                files.set_aside(name)
                continue
            if request is None:
                continue
            workflow_name = _workflow_name(request)
            waiting.add(_Entry(request.priority, request.seq, name, request, workflow_name))

    def _admit_one(self, state: _QueueState) -> tuple[Grant | None, float | None]:
        """Claim the next request the limits allow now (a Grant), or when to look again.

        Resumed runs waiting at the gate go first: no new start while one waits here.
        """
        state.due = False
        if state.gate_waiters or not state.waiting.entries or self._closed:
            return None, None
        queue, files = state.queue, state.files
        now = self._clock.time()
        with files.locked():
            slot = None
            if state.slots is not None:
                slot = state.slots.take()
                if slot is None:
                    return None, None  # (a slot frees here: woken; elsewhere: polled)
            if queue.rate is not None:
                allowed_at = files.rate_wait(queue.rate.limit, queue.rate.period, now)
                if allowed_at is not None:
                    self._give_back(state, slot, None, None)
                    return None, allowed_at
            earliest: float | None = None
            full: set[str] = set()
            for entry in state.waiting.ordered():
                request = entry.request
                if request.not_before > now:
                    earliest = min(earliest or request.not_before, request.not_before)
                    continue
                if entry.workflow_name not in self._host._workflows:
                    if entry.workflow_name not in state.warned:
                        state.warned.add(entry.workflow_name)
                        logger.warning(
                            "queue %r: workflow %r is not known to this runtime; its requests "
                            "wait for a runtime that knows it (Runtime(workflows=[...]))",
                            queue.name,
                            entry.workflow_name,
                        )
                    continue
                key_slot = None
                if request.key is not None and queue.concurrency_per_key is not None:
                    if request.key in full:
                        continue
                    key_slot = files.key_slots(request.key, queue.concurrency_per_key).take()
                    if key_slot is None:
                        full.add(request.key)
                        files.forget_key(request.key)
                        continue
                if not files.claim(entry.workflow_id):  # (another runtime took it)
                    state.waiting.remove(entry.workflow_id)
                    self._give_back(state, None, request.key, key_slot)
                    continue
                state.waiting.remove(entry.workflow_id)
                if queue.rate is not None:
                    files.rate_record(queue.rate.limit, now)
                state.due = True
                grant = Grant(
                    state,
                    entry.workflow_id,
                    slot,
                    request.key,
                    key_slot,
                    request.dedup_id,
                    request,
                )
                return grant, None
            self._give_back(state, slot, None, None)
            return None, earliest

    def _give_back(
        self, state: _QueueState, slot: int | None, key: str | None, key_slot: int | None
    ) -> None:
        if slot is not None and state.slots is not None:
            state.slots.give_back(slot)
        if key is not None and key_slot is not None:
            slots = state.files.key_slots(key, state.queue.concurrency_per_key or 1)
            slots.give_back(key_slot)
            state.files.forget_key(key)

    async def _launch(self, grant: Grant) -> None:
        """Start an admitted request's workflow here, holding its grant."""
        state, workflow_id = grant.state, grant.workflow_id
        try:
            request = grant.request or state.files.read(workflow_id, admitted=True)
            if request is None:
                raise DamagedRequest("its admitted request is gone")
            payload = decode(request.payload, path=workflow_id, offset=0)
            definition = self._host._workflows[str(payload["wf"])]
            types = definition.spec.parameter_types
            context = f"an argument of workflow {definition.name!r}"
            arguments = [
                convert(value, types[index] if index < len(types) else Any, context=context)
                for index, value in enumerate(payload["args"])
            ]
        except Exception as error:
            logger.error("queue %r: cannot start %s: %s", state.queue.name, workflow_id, error)
            self.release(grant)
            return
        self._granted[workflow_id] = grant
        try:
            await self._host._start(definition, workflow_id, arguments, follow=False)
        except (WorkflowAlreadyRunning, WorkflowStopped):
            if self._granted.pop(workflow_id, None) is grant:
                self.release(grant)
        except Exception as error:
            logger.error("queue %r: cannot start %s: %s", state.queue.name, workflow_id, error)
            if self._granted.pop(workflow_id, None) is grant:
                self.release(grant)
        finally:
            admitted = self._admitted.pop(workflow_id, None)
            if admitted is not None and not admitted.done():
                admitted.set_result(None)

    # -- the gate ----------------------------------------------------------------------------

    def _queued_in(self, workflow_id: str) -> tuple[str, bool] | None:
        """The queue whose request `workflow_id` is (and whether admitted), if any."""
        for name in self._queue_names():
            files = self._files_of(name, create=False)
            if files is None:
                continue
            if files.is_admitted(workflow_id):
                return name, True
            if files.is_waiting(workflow_id):
                return name, False
        return None

    async def gate(self, workflow_id: str) -> Grant | None:
        """The slots a queued workflow must hold to run here (None: not a queued workflow).

        Its dispatcher's grant when it was just admitted here; else (resumed after a
        crash, or by another runtime) wait for a slot of its queue.

        Raises:
            QueueNotDeclared: it is queued in a queue this runtime does not declare.
        """
        grant = self._granted.pop(workflow_id, None)
        if grant is not None:
            return grant
        found = self._queued_in(workflow_id)
        if found is None:
            return None
        name, admitted = found
        state = self._state_of(name)
        if state is None:
            raise QueueNotDeclared(queue=name, workflow_id=workflow_id, declared=self.declared)
        files = state.files
        if not admitted:  # (started by id before its turn, or its admission was lost)
            files.claim(workflow_id)
            state.waiting.remove(workflow_id)
        try:
            request = files.read(workflow_id, admitted=True)
        except DamagedRequest:
            request = None
        key = request.key if request is not None else None
        dedup_id = request.dedup_id if request is not None else None
        state.gate_waiters += 1
        self._gated.add(workflow_id)
        try:
            while True:
                grant = self._take_slots(state, workflow_id, key, dedup_id)
                if grant is not None:
                    return grant
                await self._wait(state, None)
        finally:
            state.gate_waiters -= 1
            self._gated.discard(workflow_id)
            state.wake.set()

    def _take_slots(
        self, state: _QueueState, workflow_id: str, key: str | None, dedup_id: str | None
    ) -> Grant | None:
        queue, files = state.queue, state.files
        with files.locked():
            slot = None
            if state.slots is not None:
                slot = state.slots.take()
                if slot is None:
                    return None
            key_slot = None
            if key is not None and queue.concurrency_per_key is not None:
                key_slot = files.key_slots(key, queue.concurrency_per_key).take()
                if key_slot is None:
                    self._give_back(state, slot, None, None)
                    return None
        return Grant(state, workflow_id, slot, key, key_slot, dedup_id)

    def release(self, grant: Grant) -> None:
        """Give a grant's slots back; if its workflow ended, forget its admission and dedup."""
        state = grant.state
        self._give_back(state, grant.slot, grant.key, grant.key_slot)
        if grant.finished:
            state.files.finish(grant.workflow_id)
            if grant.dedup_id is not None:
                state.files.dedup_release(grant.dedup_id, grant.workflow_id)
        state.wake.set()

    # -- handles and descriptions -------------------------------------------------------------

    async def wait_admitted(self, workflow_id: str) -> bool:
        """Wait until a queued request's journal exists (False: `workflow_id` is no request).

        While it waits in its queue, and between its claim and its journal's creation.
        """
        found = self._queued_in(workflow_id)
        if found is None:
            return False
        files = self._files_of(found[0], create=False)
        assert files is not None
        while files.is_waiting(workflow_id) or (
            files.is_admitted(workflow_id) and not await self._journal_exists(workflow_id)
        ):
            future = self._admitted.get(workflow_id)
            if future is None or future.done():
                future = self._admitted[workflow_id] = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), POLL_INTERVAL * 2)
        return True

    def is_queued(self, workflow_id: str) -> bool:
        """Whether `workflow_id` is a request of some queue, waiting or admitted."""
        return self._queued_in(workflow_id) is not None

    def describe(self, workflow_id: str) -> WorkflowDescription | None:
        """A waiting request of any queue, described (None: not waiting anywhere)."""
        found = self._queued_in(workflow_id)
        if found is None or found[1]:
            return None
        files = self._files_of(found[0], create=False)
        assert files is not None
        return describe_queued(files, workflow_id, self._clock.time())

    def parked(self, workflow_id: str) -> bool:
        """Whether the id's task waits at the gate for a slot (durable.testing: idle)."""
        return workflow_id in self._gated

    def busy(self) -> bool:
        """Whether a dispatcher is starting work, or could start some now (testing: not idle)."""
        return any(state.launching or state.due for state in self._states.values())

    async def close(self) -> None:
        """Stop dispatching (the runtime then stops the workflows, giving their slots back)."""
        self._closed = True
        tasks = [state.task for state in self._states.values() if state.task is not None]
        tasks += self._launches
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sync_task is not None:
            await asyncio.gather(self._sync_task, return_exceptions=True)

    def close_files(self) -> None:
        """Release every slot and descriptor (after the workflows stopped)."""
        for state in self._states.values():
            if state.slots is not None:
                state.slots.close()
        for files in self._files.values():
            files.close()
        self._files.clear()
        self._states.clear()


def _workflow_name(request: Request) -> str:
    try:
        payload = decode(request.payload, path=request.workflow_id, offset=0)
    except DurableError:
        return "?"
    return str(payload.get("wf", "?")) if isinstance(payload, dict) else "?"
