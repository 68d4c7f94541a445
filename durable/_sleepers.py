"""Unloaded sleepers as rows: one per parked workflow, one timer for the earliest wake-up.

A workflow that sleeps past suspend_after is unloaded: its run is dropped, its journal
suspended (held, by its name lock or lease, so no other runtime takes it). What it needs to
load again (its journal, its queue grant, its parent) becomes a Parked row here, and no task
of its own waits for it: 100,000 sleepers are 100,000 small rows, a heap of wake-up times
and one timer on the runtime's Clock (virtual under durable.testing), not 100,000 parked
tasks with a future and a timer each. A row is handed back to the runtime (`awaken`) when
its time comes, when mail comes for it, or when its run is cancelled (close(), a caller
that gave up); the runtime starts a task for it again.

An id's outcome is not its task's: IdRun, the future its handles await, lasts from its
start to its end across loads, and behaves as the task would for its callers (cancel,
cancelling, get_name). Its task exists only while the workflow is loaded.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ._engine import _records as records
from ._engine._clock import Clock
from ._errors import JournalError
from ._storage._frames import StoredRecord
from ._storage._interface import Journal

# A heap that holds this many stale entries (rows woken by mail before their time) per
# live row, beyond a few, is rebuilt from the live rows.
_STALE_PER_ROW = 2


class _Host(Protocol):
    """What an IdRun asks of the runtime's tasks when it is cancelled unloaded."""

    def cancel_parked(self, outcome: IdRun) -> None: ...


class Unloaded:
    """What a workflow's task returns when it parked the workflow as a row (not its end)."""

    __slots__ = ()


UNLOADED = Unloaded()


class IdRun(asyncio.Future[Any]):
    """One workflow id's run in a runtime, from its start to its end, across its loads.

    What its handles await. `task` is its task while it is loaded (None while it sleeps
    as a row); cancelling it cancels that task, or has the runtime let go of the row.
    """

    __slots__ = ("_host", "_stops", "claimed", "context", "row", "taken", "task", "workflow_id")

    def __init__(
        self,
        workflow_id: str,
        host: _Host,
        loop: asyncio.AbstractEventLoop,
        *,
        claimed: asyncio.Future[None] | None,
        context: contextvars.Context,
    ) -> None:
        super().__init__(loop=loop)
        self.workflow_id = workflow_id
        self.task: asyncio.Task[Any] | None = None
        self.row: Parked | None = None  # (its row, from its awakening until its task takes it)
        # The journal and run its starter took (a new or small journal), until its task
        # begins with them.
        self.taken: tuple[Journal, Any] | None = None
        # Its first start's, settled once the starter may go on (None once it went on).
        self.claimed: asyncio.Future[None] | None = claimed
        self.context = context  # its tasks' contextvars (each load's task runs in it)
        self._host = host
        self._stops = 0  # cancellations asked while it was unloaded

    def get_name(self) -> str:
        return f"durable {self.workflow_id}"

    def cancel(self, msg: Any = None) -> bool:
        """Stop it (as cancelling its task would): it resumes from its journal later."""
        if self.done():
            return False
        task = self.task
        if task is not None and not task.done():
            return task.cancel(msg)
        self._stops += 1
        if self._stops == 1:
            self._host.cancel_parked(self)
        return True

    def cancelling(self) -> int:
        """As Task.cancelling(): the cancellations asked and not yet over."""
        if self.done():
            return 0
        task = self.task
        if task is not None and not task.done():
            return task.cancelling()
        return self._stops

    def stopped(self) -> None:
        """Its run was let go of by a cancellation: the future's own cancel."""
        super().cancel()


class Parked:
    """A sleeping workflow's row: all the runtime keeps of it until it is loaded again."""

    __slots__ = ("grant", "journal", "outcome", "parent", "wake_at")

    def __init__(
        self,
        outcome: IdRun,
        wake_at: float,
        *,
        journal: Journal,
        grant: Any,
        parent: str | None,
    ) -> None:
        self.outcome = outcome
        self.wake_at = wake_at
        self.journal = journal  # suspended: held, its records dropped
        self.grant = grant  # a queued workflow's slots (held until it ends)
        self.parent = parent


class Sleepers:
    """The parked rows of a runtime, their wake-up heap, its one timer, and early mail."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rows: dict[str, Parked] = {}
        self._heap: list[tuple[float, str]] = []  # (wake_at, id); stale entries skipped
        self._timer: asyncio.Handle | None = None
        self._timer_at = float("inf")
        self._expecting: dict[str, bool] = {}  # being unloaded: whether mail came meanwhile
        self.awaken: Callable[[Parked], None] = _nobody  # (the runtime's tasks set it)
        self.woken = 0  # rows handed back so far (tests, benchmarks)

    def __contains__(self, workflow_id: object) -> bool:
        return workflow_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def expect(self, workflow_id: str) -> None:
        """Its run is being unloaded: mail from now on keeps it from parking (see park)."""
        self._expecting[workflow_id] = False

    def forget(self, workflow_id: str) -> None:
        """The id's run ended here."""
        self._expecting.pop(workflow_id, None)

    def park(self, row: Parked) -> bool:
        """Hold `row` until its wake-up or its mail; False: mail came since expect()."""
        workflow_id = row.outcome.workflow_id
        if self._expecting.pop(workflow_id, False):
            return False
        self._rows[workflow_id] = row
        if row.wake_at != float("inf"):
            heapq.heappush(self._heap, (row.wake_at, workflow_id))
            if row.wake_at < self._timer_at:
                self._arm(row.wake_at)
            if len(self._heap) > _STALE_PER_ROW * len(self._rows) + 64:
                self._compact()
        return True

    def notify(self, workflow_id: str) -> None:
        """Mail for the id: wake its row, or keep it from parking if it is being unloaded."""
        if workflow_id in self._expecting:
            self._expecting[workflow_id] = True
            return
        row = self._rows.pop(workflow_id, None)
        if row is not None:
            self._hand_back(row)

    def take(self, workflow_id: str) -> Parked | None:
        """The id's row, no longer held here (None: not parked)."""
        return self._rows.pop(workflow_id, None)

    def close(self) -> None:
        """Drop the timer (the runtime closes; its rows are let go of by their cancels)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, float("inf")

    def _hand_back(self, row: Parked) -> None:
        self.woken += 1
        self.awaken(row)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._clock.call_at(when, self._due, when)

    def _due(self, when: float) -> None:
        """The timer armed for `when`: hand back every row due by then; re-arm."""
        self._timer, self._timer_at = None, float("inf")
        heap, rows = self._heap, self._rows
        due: list[Parked] = []
        while heap and heap[0][0] <= when:
            wake_at, workflow_id = heapq.heappop(heap)
            row = rows.get(workflow_id)
            if row is not None and row.wake_at == wake_at:
                del rows[workflow_id]
                due.append(row)
        self._rearm()
        for row in due:
            self._hand_back(row)

    def _rearm(self) -> None:
        heap, rows = self._heap, self._rows
        while heap:
            wake_at, workflow_id = heap[0]
            row = rows.get(workflow_id)
            if row is not None and row.wake_at == wake_at:
                if wake_at < self._timer_at:
                    self._arm(wake_at)
                return
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [
            (row.wake_at, workflow_id)
            for workflow_id, row in self._rows.items()
            if row.wake_at != float("inf")
        ]
        heapq.heapify(self._heap)


def parked_at(stored: Sequence[StoredRecord], *, path: str) -> tuple[float, int, str | None] | None:
    """(wake-up, inbox cursor, parent) of a journal its runner left parked; else None.

    Parked: it ends with a park record, written as its sleeper was unloaded, idle; nothing
    was journaled after it. None (replay it) for anything else: an older journal, a park
    record lost in a crash, one that records came after, a deadline to arm (`dl`), a
    record that does not read.
    """
    if len(stored) < 2:
        return None
    first, last = stored[0], stored[-1]
    try:
        end = records.read_record(last, path=path, index=len(stored) - 1)
        if end["k"] != records.PARK:
            return None
        start = records.read_record(first, path=path, index=0)
    except JournalError:
        return None
    if start["k"] != records.START or "dl" in start:
        return None
    parent = start.get("parent")
    return float(end["at"]), int(end["qn"]), parent if isinstance(parent, str) else None


def _nobody(row: Parked) -> None:
    raise RuntimeError("Sleepers.awaken was not set by the runtime's tasks")
