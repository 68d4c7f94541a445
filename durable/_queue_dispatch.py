"""Dispatch: start each declared queue's requests in order, as its limits allow.

For each queue the runtime declares, a dispatcher task: under the queue's lock it takes a
concurrency slot (an flock on a slot file, so a process that dies lets go of it), checks the
rate ring, then claims the first request in (priority, enqueue order) whose delay has passed
and whose key has a free slot, and starts its workflow holding those slots (a Grant, handed
to the gate) until the workflow's task ends. Also tells handles when a request has started.
Knows the runtime only by the QueueHost protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any, Protocol

from ._definitions import Workflow
from ._engine._clock import Clock
from ._engine._log_fields import durable_logger
from ._errors import WorkflowAlreadyRunning, WorkflowStopped
from ._queue_gate import Gate
from ._queue_reading import workflow_name_of
from ._queue_requests import launch_arguments
from ._queue_state import (
    POLL_INTERVAL,
    Entry,
    Grant,
    QueueRegistry,
    QueueState,
    journal_exists,
    release,
)
from ._storage._queue_files import DamagedRequest

logger = durable_logger()

REFRESH_INTERVAL = 0.05  # the least time between two listings of a queue's waiting requests
RETRY_AFTER = 1.0  # seconds between two tries of a queue whose files cannot be used now


class QueueHost(Protocol):
    """What the dispatcher needs of its Runtime."""

    _workflows: dict[str, Workflow[..., Any]]

    async def _start(
        self,
        definition: Workflow[..., Any],
        workflow_id: str,
        arguments: list[Any] | None,
        *,
        follow: bool = True,
        trace: dict[str, str] | None = None,
        queued: tuple[str, float] | None = None,
    ) -> Any: ...


class Dispatcher:
    """The dispatcher tasks of one runtime's declared queues (see the module docstring)."""

    def __init__(self, host: QueueHost, registry: QueueRegistry, gate: Gate, clock: Clock) -> None:
        self._host = host
        self._registry = registry
        self._gate = gate
        self._clock = clock
        self._admitted: dict[str, asyncio.Future[None]] = {}  # handles waiting for a start
        self._launches: set[asyncio.Task[None]] = set()
        self._closed = False

    def wake(self) -> None:
        """Start the dispatchers of the declared queues, once a loop runs this runtime."""
        if self._closed or not self._registry.declared:
            return
        loop = asyncio.get_running_loop()
        for name in self._registry.declared:
            state = self._registry.state_of(name)
            assert state is not None
            if state.task is None or state.task.done():
                state.task = loop.create_task(self._dispatch(state), name=f"durable queue {name}")

    async def _dispatch(self, state: QueueState) -> None:
        while True:
            state.wake.clear()
            try:
                self._refresh(state)
                admitted, until = self._admit_one(state)
            except OSError as error:  # (a link planted among its files, a full disk: say so)
                logger.error(
                    "queue %r: cannot admit work now (%s); trying again in %g s",
                    state.queue.name,
                    error,
                    RETRY_AFTER,
                )
                await asyncio.sleep(RETRY_AFTER)
                continue
            if admitted is not None:
                # (started as a task: a journal slow to open must not hold up the next start)
                state.launching += 1
                launch = asyncio.get_running_loop().create_task(self._launch(admitted))
                self._launches.add(launch)
                launch.add_done_callback(functools.partial(self._launched, state))
                await asyncio.sleep(0)
                continue
            await state.wait(self._clock, until)

    def _launched(self, state: QueueState, task: asyncio.Task[None]) -> None:
        state.launching -= 1
        self._launches.discard(task)

    def _refresh(self, state: QueueState, *, force: bool = False) -> None:
        """Read what other runtimes changed in the queue (when its version moved)."""
        files, waiting = state.files, state.waiting
        version = files.waiting_version()
        now = time.monotonic()
        # (its own claims and enqueues move the version too; they are known already, so a
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
            workflow_name = workflow_name_of(request)
            waiting.add(Entry(request.priority, request.seq, name, request, workflow_name))

    def _admit_one(self, state: QueueState) -> tuple[Grant | None, float | None]:
        """Claim the next request the limits allow now (a Grant), or when to look again.

        Resumed runs waiting at the gate go first: no new start while one waits here.
        """
        state.due = False
        if state.gate_waiters or not state.waiting.entries or self._closed:
            return None, None
        queue, files = state.queue, state.files
        now = self._clock.time()
        # (`undo` gives the slots taken back if an OSError of the queue's files cuts the round)
        with files.locked(), contextlib.ExitStack() as undo:
            slot = None
            if state.slots is not None:
                slot = state.slots.take()
                if slot is None:
                    return None, None  # (a slot frees here: woken; elsewhere: polled)
                undo.callback(state.give_back, slot, None, None)
            if queue.rate is not None:
                allowed_at = files.rate_wait(queue.rate.limit, queue.rate.period, now)
                if allowed_at is not None:
                    state.give_back(slot, None, None)
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
                    undo.callback(state.give_back, None, request.key, key_slot)
                if not files.claim(entry.workflow_id):  # (another runtime took it)
                    state.waiting.remove(entry.workflow_id)
                    state.give_back(None, request.key, key_slot)
                    continue
                state.waiting.remove(entry.workflow_id)
                if queue.rate is not None:
                    files.rate_record(queue.rate.limit, now)
                state.due = True
                undo.pop_all()  # (the grant holds them now)
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
            state.give_back(slot, None, None)
            return None, earliest

    async def _launch(self, grant: Grant) -> None:
        """Start an admitted request's workflow here, holding its grant."""
        state, workflow_id = grant.state, grant.workflow_id
        try:
            request = grant.request or state.files.read(workflow_id, admitted=True)
            if request is None:
                raise DamagedRequest("its admitted request is gone")
            definition, arguments, trace = launch_arguments(
                self._host._workflows, request.payload, workflow_id
            )
        except Exception as error:
            logger.error("queue %r: cannot start %s: %s", state.queue.name, workflow_id, error)
            release(grant)
            return
        self._gate.hand_over(grant)
        try:
            await self._host._start(
                definition,
                workflow_id,
                arguments,
                follow=False,
                trace=trace,
                queued=(state.queue.name, request.enqueued),
            )
        except (WorkflowAlreadyRunning, WorkflowStopped):
            if self._gate.take_back(grant):
                release(grant)
        except Exception as error:
            logger.error("queue %r: cannot start %s: %s", state.queue.name, workflow_id, error)
            if self._gate.take_back(grant):
                release(grant)
        finally:
            admitted = self._admitted.pop(workflow_id, None)
            if admitted is not None and not admitted.done():
                admitted.set_result(None)

    @property
    def workflows(self) -> dict[str, Workflow[..., Any]]:
        """The workflows this runtime knows (a request names one of them)."""
        return self._host._workflows

    async def wait_admitted(self, workflow_id: str) -> bool:
        """Wait until a queued request's journal exists (False: `workflow_id` is no request).

        While it waits in its queue, and between its claim and its journal's creation.
        """
        found = self._registry.queued_in(workflow_id)
        if found is None:
            return False
        files = self._registry.files_of(found[0], create=False)
        assert files is not None
        while files.is_waiting(workflow_id) or (
            files.is_admitted(workflow_id)
            and not await journal_exists(self._registry.store, workflow_id)
        ):
            future = self._admitted.get(workflow_id)
            if future is None or future.done():
                future = self._admitted[workflow_id] = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), POLL_INTERVAL * 2)
        return True

    def busy(self) -> bool:
        """Whether a dispatcher is starting work, or could start some now (testing: not idle)."""
        return any(state.launching or state.due for state in self._registry.states.values())

    async def close(self) -> None:
        """Stop dispatching (the runtime then stops the workflows, giving their slots back)."""
        self._closed = True
        states = self._registry.states.values()
        tasks = [state.task for state in states if state.task is not None]
        tasks += self._launches
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
