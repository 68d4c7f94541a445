"""Records of what came through the inbox (event, cancel, skip), and the inbox's messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NotRequired, TypedDict

from ..._encoding import decode
from ..._errors import JournalCorrupted
from ..._storage._frames import StoredRecord
from ._common import (
    CANCEL,
    EVENT,
    SKIP,
    SKIP_REASON_LIMIT,
    Record,
    _carrier_problem,
    _is_count,
    _is_time,
    _short,
)


class EventRecord(TypedDict):
    k: str
    q: int
    n: str
    p: Any
    t: float
    id: NotRequired[str]
    tc: NotRequired[dict[str, str]]  # the sender's trace carrier
    f: NotRequired[int]  # 1: copied by a fork (see forked_copy)


class CancelRecord(TypedDict):
    k: str
    q: int
    m: str
    t: float
    id: NotRequired[str]  # the request id (DEADLINE_CANCEL_ID: the deadline's)
    tc: NotRequired[dict[str, str]]  # the canceller's trace context (OpenTelemetry on)
    f: NotRequired[int]  # 1: copied by a fork (see forked_copy)


class SkipRecord(TypedDict):
    k: str
    q: int
    reason: str
    t: float
    f: NotRequired[int]  # 1: copied by a fork (see forked_copy)


UNDECODABLE = "undecodable"  # an UndecodableMessage's kind: a reader's, never written


class UndecodableMessage(TypedDict):
    """A reader's stand-in for an inbox message it could not read (written nowhere).

    The catalog lists an inbox's messages with these in place of the ones `read_message`
    refuses (the run skips those: its journal has a skip record at their position).
    """

    k: str  # UNDECODABLE
    m: str  # why it could not be read (JournalCorrupted's reason)


class EventMessage(TypedDict):
    """An inbox message carrying an event (not a journal record: the inbox's)."""

    k: str
    n: str
    p: Any
    id: str | None
    t: float
    tc: NotRequired[dict[str, str]]


class CancelMessage(TypedDict):
    k: str
    m: str
    id: str | None
    t: float
    tc: NotRequired[dict[str, str]]


def event(
    position: int,
    name: str,
    payload: Any,
    now: float,
    event_id: Any = None,
    *,
    carrier: dict[str, str] | None = None,
) -> EventRecord:
    record: EventRecord = {"k": EVENT, "q": position, "n": name, "p": payload, "t": now}
    if event_id is not None:
        record["id"] = event_id
    if carrier is not None:
        record["tc"] = carrier
    return record


def cancel(
    position: int,
    reason: str,
    now: float,
    request_id: str | None = None,
    *,
    carrier: dict[str, str] | None = None,
) -> CancelRecord:
    record: CancelRecord = {"k": CANCEL, "q": position, "m": reason, "t": now}
    if request_id is not None:
        record["id"] = request_id
    if carrier is not None:
        record["tc"] = carrier
    return record


def skip_record(position: int, reason: str, now: float) -> SkipRecord:
    """Inbox message `position` could not be delivered, and why."""
    return {"k": SKIP, "q": position, "reason": reason[:SKIP_REASON_LIMIT], "t": now}


def forked_copy(record: Record) -> Record:
    """An inbox record (event, cancel, skip) as a fork copies it: marked `f: 1`.

    Its `q` is the source's inbox position, not the fork's: the copy takes no position of
    the fork's own inbox, whose messages start at 0 (replay leaves its inbox cursor alone).
    """
    return {**record, "f": 1}


def undecodable_message(reason: str) -> UndecodableMessage:
    """The stand-in for an inbox message that could not be read, and why."""
    return {"k": UNDECODABLE, "m": reason}


def event_message(
    name: str,
    payload: Any,
    event_id: str | None,
    now: float,
    carrier: dict[str, str] | None = None,
) -> EventMessage:
    message: EventMessage = {"k": EVENT, "n": name, "p": payload, "id": event_id, "t": now}
    if carrier is not None:
        message["tc"] = carrier
    return message


def cancel_message(
    reason: str, request_id: str | None, now: float, carrier: dict[str, str] | None = None
) -> CancelMessage:
    message: CancelMessage = {"k": CANCEL, "m": reason, "id": request_id, "t": now}
    if carrier is not None:
        message["tc"] = carrier
    return message


def _check_event(record: Record) -> str | None:
    if not _is_count(record.get("q")) or not _is_time(record.get("t")):
        return "its inbox position 'q' or time 't' is missing or of the wrong type"
    if "f" in record and record["f"] != 1:
        return "its 'f' (copied by a fork) is not 1"
    if type(record.get("n")) is not str or "p" not in record:
        return "its event name 'n' or payload 'p' is missing"
    if record.get("id") is not None and type(record["id"]) is not str:
        return "its event id 'id' is not text"
    return _carrier_problem(record["tc"]) if "tc" in record else None


def _check_cancel(record: Record) -> str | None:
    if not _is_count(record.get("q")) or not _is_time(record.get("t")):
        return "its inbox position 'q' or time 't' is missing or of the wrong type"
    if "f" in record and record["f"] != 1:
        return "its 'f' (copied by a fork) is not 1"
    if "id" in record and type(record["id"]) is not str:
        return "its request id 'id' is not text"
    if type(record.get("m")) is not str:
        return "its reason 'm' is missing or not text"
    return _carrier_problem(record["tc"]) if "tc" in record else None


def _check_skip(record: Record) -> str | None:
    if not _is_count(record.get("q")) or not _is_time(record.get("t")):
        return "its inbox position 'q' or time 't' is missing or of the wrong type"
    if "f" in record and record["f"] != 1:
        return "its 'f' (copied by a fork) is not 1"
    return None if type(record.get("reason")) is str else "its 'reason' is missing or not text"


def message_problem(message: Any) -> str | None:  # noqa: PLR0911 (one return a problem)
    """What is wrong with a decoded inbox message (None: a valid event or cancel)."""
    if type(message) is not dict:
        return f"the message is a {type(message).__name__}, not a map"
    kind = message.get("k")
    if kind not in (EVENT, CANCEL):
        return f"the message is of an unknown kind {_short(repr(kind), 40)}"
    if not _is_time(message.get("t")):
        return "its time 't' is missing or not a time"
    if message.get("id") is not None and type(message["id"]) is not str:
        return "its id is not text"
    if kind == EVENT:
        if type(message.get("n")) is not str or "p" not in message:
            return "its event name 'n' or payload 'p' is missing"
    elif type(message.get("m")) is not str:
        return "its reason 'm' is missing or not text"
    return None


def read_message(stored: StoredRecord, *, path: Path | str) -> Record:
    """An inbox message, decoded and validated.

    Raises:
        JournalCorrupted: it is not valid msgpack, or not an event or cancel message.
    """
    message = decode(stored.payload, path=path, offset=stored.offset)
    problem = message_problem(message)
    if problem is not None:
        raise JournalCorrupted(path=path, offset=stored.offset, reason=_short(problem))
    return message  # type: ignore[no-any-return]
