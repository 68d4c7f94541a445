"""How far a run has taken its inbox, and the journal records its messages become.

A part of WorkflowRun (its `_inbox`). Events and cancellations arrive through the
workflow's inbox (read through the host's InboxReader); the run journals each before
delivering it, so a replay sees it at the same point. `next` is the first message not
journaled yet, `delivered` the first not delivered (continue_as_new carries it over). One
read runs at a time; a send meanwhile has it read again. Also the inbox messages senders
post, and the margin their records need (the mailroom refuses what no journal could hold).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._encoding import encode
from .._errors import SerializationError
from . import _records as records
from ._log_fields import durable_logger
from ._ports import InboxReader

logger = durable_logger()

# What the record that wraps an inbox message adds to it, at most: the message's own keys
# become the record's, plus `q` (an inbox position) and a new `t` (about 20 bytes). A
# sender's message may be at most the journal's record limit less this, so that every
# message a send accepted can be journaled by the runner (Mailroom.send_event checks).
MESSAGE_MARGIN = 1024


class InboxCursor:
    """The inbox positions a run has journaled and delivered, and its one read at a time."""

    def __init__(
        self,
        read: InboxReader | None,
        *,
        workflow_id: str,
        taken: int,
        delivered: int,
        record_limit: int,
        now: Callable[[], float],
    ) -> None:
        self._read = read  # None: this run has no inbox (replay verification)
        self._workflow_id = workflow_id
        self._limit = record_limit  # the journal's largest record (bytes)
        self._now = now
        self.next = taken  # the first message not journaled
        self.delivered = delivered  # the first message not delivered
        self.pulling = False  # a read is under way
        self.again = False  # a send arrived during it: read once more

    def begin_pull(self) -> bool:
        """Whether the caller should start a pull now (then pull()); a pull under way reads again.

        False too when this run has no inbox.
        """
        if self._read is None:
            return False
        if self.pulling:
            self.again = True
            return False
        self.pulling = True
        return True

    async def pull(self, post: Callable[[bytes], None], stop: Callable[[], bool]) -> None:
        """The pull begin_pull() allowed: each new message's record to `post`, in order.

        Reads again while sends arrive meanwhile; takes nothing once `stop()` says so (the
        workflow ended: what it did not take stays in the inbox).
        """
        try:
            while True:
                for payload in await self._take(stop):
                    post(payload)
                if not self.again:
                    return
        finally:
            self.pulling = False

    async def take_all(self) -> list[bytes] | None:
        """The records of the messages not journaled yet, read now, in order.

        None when nothing was read: there is no inbox, or a pull is under way.
        """
        if self._read is None or self.pulling:
            return None
        self.pulling = True
        try:
            return await self._take(None)
        finally:
            self.pulling = False

    def delivered_one(self, position: int) -> None:
        """Message `position` was delivered (journaled, then handed to the workflow)."""
        self.delivered = position + 1

    async def _take(self, stop: Callable[[], bool] | None) -> list[bytes]:
        assert self._read is not None
        self.again = False
        taken = []
        for position, message in await self._read(self.next):
            if position < self.next or (stop is not None and stop()):
                continue
            self.next = position + 1
            payload, problem = record_of(position, message, self._now(), self._limit)
            if problem is not None:
                logger.warning(
                    "workflow %r: inbox message %d skipped, not delivered: %s",
                    self._workflow_id,
                    position,
                    problem,
                )
            taken.append(payload)
        return taken


def record_of(
    position: int, message: dict[str, Any] | str, now: float, limit: int
) -> tuple[bytes, str | None]:
    """The journal record of inbox message `position`, and why it is a skip (None: it is not).

    `message` is the message (validated: records.read_message), or why it could not be
    read. A message that could not be read, or whose record would not fit the journal's
    record limit (`limit` bytes), is journaled as a skip: delivering it could only fail, and
    fail again at every resume, since the inbox is never rewritten.
    """
    problem = message if isinstance(message, str) else None
    if isinstance(message, dict):
        record: records.EventRecord | records.CancelRecord
        carrier = records.trace_carrier(message["tc"]) if "tc" in message else None
        if message["k"] == records.CANCEL:
            record = records.cancel(position, message["m"], now, message.get("id"), carrier=carrier)
        else:
            record = records.event(
                position, message["n"], message["p"], now, message.get("id"), carrier=carrier
            )
        try:
            encoded = encode(record, context=f"inbox message {position}")
        except SerializationError as error:
            problem = f"it cannot be journaled again ({error})"
        else:
            if len(encoded) <= limit:
                return encoded, None
            problem = (
                f"its journal record would be {len(encoded)} bytes, over the journal's "
                f"{limit}-byte record limit"
            )
    assert problem is not None
    return encode(records.skip_record(position, problem, now)), problem


def event_message(
    name: str,
    payload: Any,
    event_id: str | None,
    now: float,
    carrier: dict[str, str] | None = None,
) -> bytes:
    """An inbox message carrying an event (SerializationError if the payload has no form).

    `carrier`: the sender's trace context (a runtime with OpenTelemetry on); a malformed
    one from another sender is dropped when the runner journals the event, never refused.
    """
    return encode(
        records.event_message(name, payload, event_id, now, carrier),
        context=f"the payload of event {name!r}",
    )


def cancel_message(
    reason: str, request_id: str | None, now: float, carrier: dict[str, str] | None = None
) -> bytes:
    """An inbox message cancelling the workflow; `carrier` as event_message's."""
    return encode(records.cancel_message(reason, request_id, now, carrier))
