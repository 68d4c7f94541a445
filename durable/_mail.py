"""Messages for workflows (events, cancellations), how their runs hear of them, and describe().

A sender appends to the workflow's inbox (storage: durable before the call returns, from any
process); the run that holds the workflow journals each message before delivering it. A run
in this process is told at once; one in another process notices within the poll interval, by
the inbox's size; an unloaded sleeper is woken to take it; a workflow not running anywhere
takes it on its next resume.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ._encoding import decode
from ._engine import _records as records
from ._engine._clock import Clock
from ._engine._describe import WorkflowDescription, describe
from ._engine._requests import cancel_message, event_message
from ._engine._workflow_run import InboxReader, WorkflowRun
from ._errors import JournalNotFound, WorkflowFinished, WorkflowNotFound
from ._storage._frames import StoredRecord
from ._storage._interface import JournalStore

if TYPE_CHECKING:
    from collections.abc import Callable


class _Duplicate(Exception):
    """An event id (or cancellation id) already in the inbox."""


def _refuse_duplicate(message_id: str | None) -> Callable[[list[StoredRecord]], Any] | None:
    if message_id is None:
        return None

    def refuse(messages: list[StoredRecord]) -> _Duplicate | None:
        for message in messages:
            decoded = decode(message.payload, path="inbox", offset=message.offset)
            if isinstance(decoded, dict) and decoded.get("id") == message_id:
                return _Duplicate(message_id)
        return None

    return refuse


def _wake(wakeup: asyncio.Future[None]) -> None:
    if not wakeup.done():
        wakeup.set_result(None)


class Mailroom:
    """The runtime's messaging: inbox readers, sends, the poller, wake-ups, describe()."""

    def __init__(
        self,
        store: JournalStore,
        runs: dict[str, WorkflowRun],
        running: dict[str, asyncio.Task[Any]],
        poll_interval: float,
        clock: Clock,
    ) -> None:
        self._store = store
        self._clock = clock
        self._runs = runs
        self._running = running
        self._poll_interval = poll_interval
        self._poller: asyncio.Task[None] | None = None
        self._wakeups: dict[str, asyncio.Future[None]] = {}  # (lighter than Event + timeout)
        self.sleeping: set[str] = set()  # unloaded workflows waiting in sleep_until

    # -- the receiving side -----------------------------------------------------------------

    def reader(self, workflow_id: str) -> InboxReader:
        where = f"{self._store.location(workflow_id)} (inbox)"

        async def read(first: int) -> list[tuple[int, dict[str, Any]]]:
            if not self._store.may_have_mail(workflow_id):  # (most workflows get no mail)
                return []
            stored: list[StoredRecord] = await self._store.inbox(workflow_id, first)
            return [
                (first + index, decode(record.payload, path=where, offset=record.offset))
                for index, record in enumerate(stored)
            ]

        return read

    def notify(self, workflow_id: str) -> None:
        """Something was posted to this workflow: have its run (or its sleep) take it."""
        run = self._runs.get(workflow_id)
        if run is not None:
            run.request_pull()
        elif (wakeup := self._wakeups.get(workflow_id)) is not None:
            _wake(wakeup)

    def expect(self, workflow_id: str) -> None:
        """Its run is being unloaded: a message posted from now on ends its next sleep.

        Set before the run leaves the runtime's runs and its journal closes (an await), so a
        send landing in between is not lost until the timer (maybe never) fires.
        """
        self._wakeups[workflow_id] = asyncio.get_running_loop().create_future()

    def forget(self, workflow_id: str) -> None:
        self._wakeups.pop(workflow_id, None)

    async def sleep_until(self, workflow_id: str, wake_at: float) -> None:
        """An unloaded workflow's sleep: until its timer is due or a message arrives."""
        loop = asyncio.get_running_loop()
        wakeup = self._wakeups.get(workflow_id)
        if wakeup is None:
            wakeup = self._wakeups[workflow_id] = loop.create_future()
        timer = None
        if wake_at != float("inf"):
            timer = self._clock.call_at(wake_at, _wake, wakeup)
        self.sleeping.add(workflow_id)
        try:
            await wakeup
        finally:
            self.sleeping.discard(workflow_id)
            if timer is not None:
                timer.cancel()
            self._wakeups.pop(workflow_id, None)

    def watch(self) -> None:
        """Poll the inboxes of the workflows running here (for senders in other processes)."""
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name="durable inbox poller"
            )

    async def _poll(self) -> None:
        seen: dict[str, int] = {}
        while self._running:
            await asyncio.sleep(self._poll_interval)
            sizes = await self._store.inbox_sizes(list(self._running))
            for workflow_id, size in sizes.items():
                if size > 0 and size != seen.get(workflow_id, -1):
                    self.notify(workflow_id)
            seen = sizes

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    # -- the sending side -------------------------------------------------------------------

    async def send_event(
        self, workflow_id: str, name: str, payload: Any, event_id: str | None
    ) -> bool:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an event name is a non-empty string, not {name!r}")
        # (unencodable: nothing written)
        message = event_message(name, payload, event_id, self._clock.time())
        await self._check_open(workflow_id, action=f"send event {name!r} to")
        return await self._post(workflow_id, message, event_id)

    async def cancel(self, workflow_id: str, reason: str, request_id: str | None) -> bool:
        message = cancel_message(reason, request_id, self._clock.time())
        await self._check_open(workflow_id, action="cancel")
        return await self._post(workflow_id, message, request_id)

    async def _post(self, workflow_id: str, message: bytes, message_id: str | None) -> bool:
        try:
            await self._store.post(workflow_id, message, _refuse_duplicate(message_id))
        except _Duplicate:
            return False
        self.notify(workflow_id)
        return True

    async def _check_open(self, workflow_id: str, *, action: str) -> None:
        """Refuse an unknown or finished workflow (a loaded one is known to be open)."""
        run = self._runs.get(workflow_id)
        if run is not None and run.finished is None:
            return
        try:
            end = (await self._read(workflow_id))[-1]
        except WorkflowNotFound:
            if workflow_id in self._running:
                return  # being started (or restarted): its start record is on its way
            raise
        if end.get("k") == records.END and "cont" not in end:
            outcome = "been cancelled" if end.get("c") else "failed" if "e" in end else "completed"
            raise WorkflowFinished(workflow_id=workflow_id, outcome=outcome, action=action)

    async def _read(self, workflow_id: str) -> list[dict[str, Any]]:
        where = self._store.location(workflow_id)
        try:
            stored = await self._store.read(workflow_id)
        except JournalNotFound:
            raise WorkflowNotFound(workflow_id=workflow_id, directory=where) from None
        if not stored:
            raise WorkflowNotFound(workflow_id=workflow_id, directory=where)
        return records.read_journal(stored, path=where)  # (validated: JournalCorrupted if not)

    # -- reading ------------------------------------------------------------------------------

    async def describe(self, workflow_id: str) -> WorkflowDescription:
        journal = await self._read(workflow_id)
        inbox = await self._store.inbox(workflow_id)
        return describe(workflow_id, journal, inbox_size=len(inbox))
