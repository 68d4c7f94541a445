"""The gate: a queued workflow's task holds a slot of its queue before it runs.

A queued workflow resumed anywhere (recover(), serve(), a handle taking it over after its
runner died) passes the gate: while its id is admitted (or waiting) in a queue, its runner
must hold a slot of that queue first, so a crash never lets a limit be exceeded and never
leaks a slot. A workflow its dispatcher just admitted here passes with the grant handed over
(`hand_over`). A runtime that does not declare the queue refuses it (QueueNotDeclared).
Knows nothing of dispatching nor of enqueueing.
"""

from __future__ import annotations

from ._engine._clock import Clock
from ._errors import QueueNotDeclared
from ._queue_state import Grant, QueueRegistry, QueueState
from ._storage._queue_files import DamagedRequest


class Gate:
    """The slots each queued workflow's task must hold to run here."""

    def __init__(self, registry: QueueRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock
        self._granted: dict[str, Grant] = {}  # admitted here, its task not at the gate yet
        self._gated: set[str] = set()  # ids whose task waits at the gate for a slot

    def hand_over(self, grant: Grant) -> None:
        """The dispatcher admitted `grant`'s workflow here: its task passes with it."""
        self._granted[grant.workflow_id] = grant

    def take_back(self, grant: Grant) -> bool:
        """Withdraw a grant handed over and not taken (True: the caller releases it)."""
        if self._granted.get(grant.workflow_id) is grant:
            del self._granted[grant.workflow_id]
            return True
        return False

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
        found = self._registry.queued_in(workflow_id)
        if found is None:
            return None
        name, admitted = found
        state = self._registry.state_of(name)
        if state is None:
            raise QueueNotDeclared(
                queue=name, workflow_id=workflow_id, declared=sorted(self._registry.declared)
            )
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
                grant = _take_slots(state, workflow_id, key, dedup_id)
                if grant is not None:
                    return grant
                await state.wait(self._clock, None)
        finally:
            state.gate_waiters -= 1
            self._gated.discard(workflow_id)
            state.wake.set()

    def parked(self, workflow_id: str) -> bool:
        """Whether the id's task waits at the gate for a slot (durable.testing: idle)."""
        return workflow_id in self._gated


def _take_slots(
    state: QueueState, workflow_id: str, key: str | None, dedup_id: str | None
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
                state.give_back(slot, None, None)
                return None
    return Grant(state, workflow_id, slot, key, key_slot, dedup_id)
