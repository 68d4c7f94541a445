"""Messages for workflows (events, cancellations), and how their runs hear of them.

A sender appends to the workflow's inbox (storage: durable before the call returns, from any
process); the run that holds the workflow journals each message before delivering it. A run
in this process is told at once; one in another process notices within the poll interval, by
the inbox's size; an unloaded sleeper is woken to take it; a workflow not running anywhere
takes it on its next resume.

No sender can poison a workflow. A message its journal could never hold (over the store's
max_record_size, less MESSAGE_MARGIN for the record that wraps it) is refused at send time
(MessageTooLarge), and so is one past the inbox's bound on messages its runner has not taken
(InboxFull); nothing is written then. A message that still cannot be delivered (undecodable,
of an unknown kind, written by another version) is journaled as skipped by the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ._engine import _records as records
from ._engine._clock import Clock
from ._engine._inbox_cursor import MESSAGE_MARGIN, cancel_message, event_message
from ._engine._ports import InboxReader
from ._engine._set_aside import ending
from ._engine._workflow_run import WorkflowRun
from ._errors import (
    InboxFull,
    JournalCorrupted,
    MessageTooLarge,
    WorkflowFinished,
    WorkflowNotFound,
)
from ._outage import Outage
from ._reading import read_workflow
from ._sleepers import Sleepers
from ._storage._frames import StoredRecord
from ._storage._interface import JournalStore

if TYPE_CHECKING:
    from collections.abc import Callable


# Cancellations may pass an inbox's bound by this much (messages, bytes): senders that
# filled a workflow's inbox with events do not keep it from being cancelled.
CANCEL_RESERVE = (16, 1 << 20)
# Every this many inbox polls, look at every inbox here, news or not: what a lost news line
# (a crash, a compaction racing a sender, a sender of an older durable) delays at most.
FULL_POLL_EVERY = 30


class _Duplicate(Exception):
    """An event id (or cancellation id) already in the inbox."""


def _refusal(
    store: JournalStore,
    workflow_id: str,
    size: int,
    message_id: str | None,
    taken: int,
    *,
    reserve: tuple[int, int] = (0, 0),
) -> Callable[[list[StoredRecord]], Any]:
    """Given the inbox's messages (under its lock): a duplicate, a full inbox, or None.

    `taken` is the first position the runner had not taken when the sender looked (it only
    grows, so the pending count seen here may be too high, never too low).
    """

    def refuse(messages: list[StoredRecord]) -> BaseException | None:
        if message_id is not None:
            for message in messages:
                try:
                    read = records.read_message(message, path="inbox")
                except JournalCorrupted:
                    continue  # (not a message: the run skips it; it is no duplicate)
                if read.get("id") == message_id:
                    return _Duplicate(message_id)
        pending = messages[taken:]
        pending_bytes = sum(len(message.payload) for message in pending)
        max_messages = store.inbox_max_messages + reserve[0]
        max_bytes = store.inbox_max_bytes + reserve[1]
        if len(pending) + 1 > max_messages or pending_bytes + size > max_bytes:
            return InboxFull(
                workflow_id=workflow_id,
                pending=len(pending),
                pending_bytes=pending_bytes,
                max_messages=max_messages,
                max_bytes=max_bytes,
                size=size,
            )
        return None

    return refuse


def _taken(journal: list[dict[str, Any]]) -> int:
    """The first inbox position the journal's runner has not taken (journaled) yet."""
    taken: int = journal[0].get("q", 0)
    for record in journal[1:]:
        if record.get("k") in records.FROM_INBOX:
            taken = max(taken, record["q"] + 1)
    return taken


class Mailroom:
    """The runtime's messaging: inbox readers, sends, the poller, wake-ups."""

    def __init__(
        self,
        store: JournalStore,
        runs: dict[str, WorkflowRun],
        running: dict[str, Any],
        poll_interval: float,
        clock: Clock,
        *,
        sleepers: Sleepers,
    ) -> None:
        self._store = store
        self._clock = clock
        self._runs = runs
        self._running = running  # (the ids running here, loaded or not)
        self._poll_interval = poll_interval
        self._poller: asyncio.Task[None] | None = None
        self.sleeping = sleepers  # unloaded workflows, parked as rows (`in`, len())

    # -- the receiving side -----------------------------------------------------------------

    def reader(self, workflow_id: str) -> InboxReader:
        where = f"{self._store.location(workflow_id)} (inbox)"

        async def read(first: int) -> list[tuple[int, dict[str, Any] | str]]:
            if not self._store.may_have_mail(workflow_id):  # (most workflows get no mail)
                return []
            stored: list[StoredRecord] = await self._store.inbox(workflow_id, first)
            found: list[tuple[int, dict[str, Any] | str]] = []
            for index, record in enumerate(stored):
                message: dict[str, Any] | str
                if not record.payload:  # (the store's placeholder for a damaged frame)
                    message = (
                        "its bytes in the inbox file are damaged (they changed after a sync "
                        "had made them durable)"
                    )
                    found.append((first + index, message))
                    continue
                try:
                    message = records.read_message(record, path=where)
                except JournalCorrupted as error:  # (the run journals it as skipped)
                    message = f"it cannot be read: {error.reason}"
                found.append((first + index, message))
            return found

        return read

    def notify(self, workflow_id: str) -> None:
        """Something was posted to this workflow: have its run (or its row) take it."""
        run = self._runs.get(workflow_id)
        if run is not None:
            run.request_pull()
        else:
            self.sleeping.notify(workflow_id)

    def watch(self) -> None:
        """Poll the inboxes of the workflows running here (for senders in other processes)."""
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name="durable inbox poller"
            )

    async def _poll(self) -> None:
        """Look for messages posted from elsewhere: the store's news, else every inbox.

        Each poll reads the news (the workflows posted to since the last poll) and looks at
        those inboxes alone; every FULL_POLL_EVERY polls, and whenever the store cannot
        tell, at every inbox of the workflows here (a lost hint, an older sender).
        """
        seen: dict[str, int] = {}
        cursor: int | None = None  # (None: the next poll looks at every inbox)
        polls = 0
        outage = Outage("inbox poller", self._poll_interval)
        while self._running:
            await asyncio.sleep(self._poll_interval)
            polls += 1
            try:
                news, cursor = await self._news(cursor)
                everything = news is None or polls % FULL_POLL_EVERY == 0
                if everything:
                    names = list(self._running)
                else:
                    running = self._running
                    names = [name for name in dict.fromkeys(news or ()) if name in running]
                sizes = await self._store.inbox_sizes(names) if names else {}
            except Exception as error:  # (the store is away: keep polling, or sends are missed)
                await outage.wait(error)
                seen, cursor = {}, None  # (then every inbox with mail is looked at once it answers)
                continue
            outage.over()
            for workflow_id, size in sizes.items():
                # Named in the news: told whatever its size (the line follows a durable
                # message; an inbox the same size as last seen can still be new mail).
                if size > 0 and (not everything or size != seen.get(workflow_id, -1)):
                    self.notify(workflow_id)
            if everything:
                seen = sizes
            else:
                seen.update(sizes)

    async def _news(self, cursor: int | None) -> tuple[list[str] | None, int]:
        """The store's inbox news (None: look at every inbox, as for a store without news)."""
        inbox_news = getattr(self._store, "inbox_news", None)  # (a store of an older protocol)
        if inbox_news is None:
            return None, 0
        news: tuple[list[str] | None, int] = await inbox_news(cursor)
        return news

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    # -- the sending side -------------------------------------------------------------------

    async def send_event(
        self,
        workflow_id: str,
        name: str,
        payload: Any,
        event_id: str | None,
        carrier: dict[str, str] | None = None,
    ) -> bool:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an event name is a non-empty string, not {name!r}")
        # (unencodable: nothing written)
        message = event_message(name, payload, event_id, self._clock.time(), carrier)
        self._check_size(workflow_id, message, what=f"event {name!r}")
        taken = await self._check_open(workflow_id, action=f"send event {name!r} to")
        refuse = _refusal(self._store, workflow_id, len(message), event_id, taken)
        return await self._post(workflow_id, message, refuse)

    async def cancel(
        self,
        workflow_id: str,
        reason: str,
        request_id: str | None,
        carrier: dict[str, str] | None = None,
    ) -> bool:
        message = cancel_message(reason, request_id, self._clock.time(), carrier)
        self._check_size(workflow_id, message, what="the cancellation")
        taken = await self._check_open(workflow_id, action="cancel")
        refuse = _refusal(
            self._store, workflow_id, len(message), request_id, taken, reserve=CANCEL_RESERVE
        )
        return await self._post(workflow_id, message, refuse)

    def _check_size(self, workflow_id: str, message: bytes, *, what: str) -> None:
        """Refuse a message the runner could never journal, or no inbox could hold."""
        limit = min(self._store.max_record_size - MESSAGE_MARGIN, self._store.inbox_max_bytes)
        if len(message) > limit:
            raise MessageTooLarge(
                workflow_id=workflow_id, what=what, size=len(message), limit=limit
            )

    async def _post(
        self, workflow_id: str, message: bytes, refuse: Callable[[list[StoredRecord]], Any]
    ) -> bool:
        try:
            await self._store.post(workflow_id, message, refuse)
        except _Duplicate:
            return False
        self.notify(workflow_id)
        return True

    async def _check_open(self, workflow_id: str, *, action: str) -> int:
        """Refuse an unknown or finished workflow (a loaded one is known to be open).

        Returns the first inbox position its runner has not taken, as far as can be told.
        """
        run = self._runs.get(workflow_id)
        if run is not None and run.finished is None:
            return run.inbox_next
        try:
            journal = await self._read(workflow_id)
        except WorkflowNotFound:
            if workflow_id in self._running:
                return 0  # being started (or restarted): its start record is on its way
            raise
        end = ending(journal)  # (past links; None once resumed)
        if end is not None and "cont" not in end:
            outcome = "been cancelled" if end.get("c") else "failed" if "e" in end else "completed"
            raise WorkflowFinished(workflow_id=workflow_id, outcome=outcome, action=action)
        return _taken(journal)

    async def _read(self, workflow_id: str) -> list[records.Record]:
        """The workflow's validated records, read without taking it (WorkflowNotFound)."""
        return await read_workflow(self._store, workflow_id)
