"""A query over a store's workflows: the filter, its validation, the order and the page cursor.

Pure: it reads nothing. The catalog (file store, PostgreSQL) finds the workflows, this module
says which match, in what order, and where a page ends. Every caller (code, `durable list`'s
options, the web UI's query parameters, a bulk action's journaled filter) builds a
WorkflowFilter, whose constructor is the one place a field is checked (InvalidFilter).

Order: newest start first, then id; a page's cursor is the last row's (started, id), so the
next page starts strictly after it (keyset paging): rows that start meanwhile, or end, never
shift a page by one the way an offset would. A workflow's `started` is its current
generation's, so a continue_as_new moves it to the front (it may then be seen twice).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._durations import to_seconds
from ._engine._describe import WorkflowDescription, WorkflowState
from ._errors import InvalidDuration, InvalidFilter

PAGE_MAX = 10_000  # rows a page may hold
TEXT_MAX = 1_000  # characters of a name, prefix, error type, queue or parent to match
TIME_FIELDS = (
    "started_after",
    "started_before",
    "updated_after",
    "updated_before",
    "ended_after",
    "ended_before",
)
FIELDS = (
    "state",
    "workflow_name",
    "workflow_id",
    "id_prefix",
    "error_type",
    "queue",
    "parent",
    *TIME_FIELDS,
)
TimeBound = datetime | float | int | str | None
_ACTIVITY_ERROR = re.compile(r"failed after \d+ attempts? with ([^\s:]+):")


def _texts(field_name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else list(value)
    for item in values:
        if not isinstance(item, str) or not item or len(item) > TEXT_MAX:
            raise InvalidFilter(
                field=field_name,
                value=item,
                expected=f"non-empty text of at most {TEXT_MAX} characters",
            )
    return tuple(values)


def _one_text(field_name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFilter(field=field_name, value=value, expected="text")
    return _texts(field_name, value)[0]


def _states(value: WorkflowState | str | Iterable[WorkflowState | str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else list(value)
    found = []
    for item in values:
        try:
            found.append(str(WorkflowState(item)))
        except ValueError:
            known = ", ".join(repr(str(state)) for state in WorkflowState)
            raise InvalidFilter(field="state", value=item, expected=f"one of {known}") from None
    return tuple(found)


def to_epoch(field_name: str, value: TimeBound, now: float | None = None) -> float | None:
    """A time bound as epoch seconds.

    From an aware datetime, epoch seconds, ISO 8601 text (with its offset, or Z), or a
    duration text meaning that long ago ("2h", "30 min").
    """
    if value is None:
        return None
    expected = (
        "an aware datetime, epoch seconds, ISO 8601 text with an offset "
        "(2026-12-06T10:00:00+00:00), or a duration meaning that long ago ('2h', '3 days')"
    )
    if isinstance(value, bool):
        raise InvalidFilter(field=field_name, value=value, expected=expected)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidFilter(field=field_name, value=value, expected=expected)
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                ago = to_seconds(text, what=field_name)
            except (InvalidDuration, TypeError, ValueError):
                raise InvalidFilter(field=field_name, value=text, expected=expected) from None
            return (time.time() if now is None else now) - ago
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidFilter(field=field_name, value=value, expected=expected)
    return value.timestamp()


@dataclass(frozen=True)
class WorkflowFilter:
    """Which workflows a query (or a bulk action) is about.

    Every field is optional: None matches all, and the fields given must all hold.

    Attributes:
        state: a WorkflowState (or its text: "failed"), or several: any of them.
        workflow_name: a workflow's name, or several: any of them.
        workflow_id: a workflow id, or several: any of them (a selection, as the web UI's).
        id_prefix: the workflow id starts with this text.
        started_after: bounds on the start time (after: at or after). Each time bound is
            an aware datetime, epoch seconds, ISO 8601 text with an offset, or a duration
            text meaning that long ago ("2h"), resolved when the filter is made.
        started_before: strictly before.
        updated_after: bounds on the last change, as started_after.
        updated_before: strictly before.
        ended_after: bounds on the end; an `ended_*` bound matches only workflows that
            have ended.
        ended_before: strictly before.
        error_type: the failure's exception type, by its full name
            ("myapp.PaymentDeclined") or its last part ("PaymentDeclined"); a workflow that
            failed because an activity did matches the activity's error type too.
        queue: the durable.Queue (by name) the workflow waits in or was admitted by; a
            queue holds a workflow until it ends, so an ended workflow matches no queue.
        parent: the id of the workflow that started it as a child.

    Raises:
        InvalidFilter: a field of the wrong type or value, naming the field.
    """

    state: WorkflowState | str | Sequence[WorkflowState | str] | None = None
    workflow_name: str | Sequence[str] | None = None
    workflow_id: str | Sequence[str] | None = None
    id_prefix: str | None = None
    started_after: TimeBound = None
    started_before: TimeBound = None
    updated_after: TimeBound = None
    updated_before: TimeBound = None
    ended_after: TimeBound = None
    ended_before: TimeBound = None
    error_type: str | None = None
    queue: str | None = None
    parent: str | None = None
    # normalised forms, set once by __post_init__
    states: tuple[str, ...] = field(init=False, repr=False, compare=False)
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    ids: frozenset[str] = field(init=False, repr=False, compare=False)
    bounds: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # (frozen: normalised once, here)
        set_(self, "states", _states(self.state))
        set_(self, "names", _texts("workflow_name", self.workflow_name))
        ids = _texts("workflow_id", self.workflow_id)
        if len(ids) > PAGE_MAX:
            raise InvalidFilter(
                field="workflow_id", value=f"{len(ids)} ids", expected=f"at most {PAGE_MAX} ids"
            )
        set_(self, "ids", frozenset(ids))
        for name in ("id_prefix", "error_type", "queue", "parent"):
            _one_text(name, getattr(self, name))
        now = time.time()
        bounds = {}
        for name in TIME_FIELDS:
            epoch = to_epoch(name, getattr(self, name), now)
            if epoch is not None:
                bounds[name] = epoch
                set_(self, name, epoch)  # (a duration means "ago" once: now, not later)
        set_(self, "bounds", bounds)

    def to_plain(self) -> dict[str, Any]:
        """The filter as JSON-ready values (journaled by a bulk action, shown by --json)."""
        plain: dict[str, Any] = {}
        if self.states:
            plain["state"] = list(self.states)
        if self.names:
            plain["workflow_name"] = list(self.names)
        if self.ids:
            plain["workflow_id"] = sorted(self.ids)
        for name in ("id_prefix", "error_type", "queue", "parent"):
            if getattr(self, name) is not None:
                plain[name] = getattr(self, name)
        plain.update(self.bounds)
        return plain

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> WorkflowFilter:
        """Back from to_plain() (InvalidFilter for a field it does not know)."""
        if not isinstance(plain, dict):
            raise InvalidFilter(field="filter", value=plain, expected="a mapping of fields")
        for name, value in plain.items():
            if name not in FIELDS:
                raise InvalidFilter(
                    field=str(name), value=value, expected="one of WorkflowFilter's fields"
                )
        return cls(**plain)

    @property
    def empty(self) -> bool:
        """Whether it matches every workflow (no field given)."""
        return not self.to_plain()

    def matches(self, described: WorkflowDescription, queues: dict[str, str]) -> bool:
        """Whether `described` passes every field given (`queues`: id -> its queue)."""
        d = described
        refused = (
            (self.states and str(d.state) not in self.states)
            or (self.names and d.workflow_name not in self.names)
            or (self.ids and d.workflow_id not in self.ids)
            or (self.id_prefix is not None and not d.workflow_id.startswith(self.id_prefix))
            or (self.parent is not None and d.parent != self.parent)
            or (self.queue is not None and queues.get(d.workflow_id) != self.queue)
            or (self.error_type is not None and self.error_type not in error_types(d.error))
        )
        return not refused and self._in_bounds(d)

    def _in_bounds(self, described: WorkflowDescription) -> bool:
        for name, bound in self.bounds.items():
            which, side = name.rsplit("_", 1)
            moment: datetime | None = getattr(described, which)
            if moment is None:
                return False
            at = moment.timestamp()
            if (side == "after" and at < bound) or (side == "before" and at >= bound):
                return False
        return True


def error_types(error: str | None) -> set[str]:
    """The names a description's error ("Type: message") matches as error_type.

    The type's full name and last part; for an ActivityError, the activity's error type's too.
    """
    if error is None:
        return set()
    kind, _, message = error.partition(": ")
    found = {kind, kind.rsplit(".", 1)[-1]}
    inner = _ACTIVITY_ERROR.search(message)
    if inner is not None:
        found |= {inner.group(1), inner.group(1).rsplit(".", 1)[-1]}
    return found


@dataclass(frozen=True)
class WorkflowPage:
    """One page of a query: its workflows in order, and the cursor of the next page.

    Attributes:
        workflows: the descriptions, newest start first (then by id).
        next_cursor: give it as `cursor` for the next page; None on the last page.
        total: how many workflows match the filter, on every page.
        unreadable: journals that could not be read (id -> why), listed on the first page.
    """

    workflows: list[WorkflowDescription]
    next_cursor: str | None
    total: int
    unreadable: dict[str, str] = field(default_factory=dict)


def order_key(described: WorkflowDescription) -> tuple[float, str]:
    """The sort key: newest start first, then id (ascending)."""
    return (-described.started.timestamp(), described.workflow_id)


def encode_cursor(described: WorkflowDescription) -> str:
    """The cursor after `described`: opaque text (its start time and id)."""
    raw = json.dumps([described.started.timestamp(), described.workflow_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[float, str] | None:
    """The (started, id) a cursor stands for, as an order_key (InvalidFilter if it is not one)."""
    if cursor is None:
        return None
    expected = "a next_cursor a previous page returned"
    if not isinstance(cursor, str) or len(cursor) > 4 * TEXT_MAX:
        raise InvalidFilter(field="cursor", value=cursor, expected=expected)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, workflow_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidFilter(field="cursor", value=cursor, expected=expected) from None
    if (
        not isinstance(started, float | int)
        or isinstance(started, bool)
        or not math.isfinite(started)
        or not isinstance(workflow_id, str)
    ):  # (NaN, which json takes, would order nothing: a forged cursor)
        raise InvalidFilter(field="cursor", value=cursor, expected=expected)
    return (-float(started), workflow_id)


def check_limit(limit: int) -> int:
    """A page's size, 1..PAGE_MAX (InvalidFilter otherwise)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_MAX:
        raise InvalidFilter(field="limit", value=limit, expected=f"a whole number 1..{PAGE_MAX}")
    return limit


def page_of(
    matching: list[WorkflowDescription], limit: int, cursor: str | None, unreadable: dict[str, str]
) -> WorkflowPage:
    """The page of `matching` (any order) after `cursor`, `limit` rows long."""
    check_limit(limit)
    after = decode_cursor(cursor)
    matching.sort(key=order_key)
    rows = [row for row in matching if after is None or order_key(row) > after]
    page = rows[:limit]
    more = len(rows) > limit
    return WorkflowPage(
        workflows=page,
        next_cursor=encode_cursor(page[-1]) if more else None,
        total=len(matching),
        unreadable=unreadable if cursor is None else {},
    )
