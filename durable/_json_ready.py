"""Catalog data as JSON-ready values: the shape of the CLI's --json and of the web UI's API.

`to_plain` turns a decoded journal value into plain data (for people and scripts, never read
back); `plain_description` a workflow's description and who runs it. Reads nothing: the
catalog (`_catalog`) reads the journals, and uses `to_plain` too, to search statuses.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from ._engine._describe import WorkflowDescription


class RunnerFacts(Protocol):
    """Who holds a workflow's journal now, as the catalog tells it (`_catalog.Runner`).

    A protocol rather than that class: the catalog imports this module, not the reverse.
    """

    @property
    def holder(self) -> str | None:
        """The process holding the journal (None: nobody, or it cannot be known)."""
        ...

    def says(self, described: WorkflowDescription) -> str:
        """Who runs the workflow and, while it sleeps or waits, who wakes it: in words."""
        ...

    def stalled(self, described: WorkflowDescription) -> bool:
        """Journaled as running an activity, yet no process holds it."""
        ...


def to_plain(value: Any) -> Any:  # noqa: PLR0911 (one return a type)
    """A decoded journal value as JSON-ready data, for people and scripts (never read back).

    Journals hold more types than JSON (tuples, sets, datetimes, Decimals, bytes...); each
    becomes the closest JSON form: ISO text for times, a string for Decimal and UUID, base64
    for bytes (as {"base64": ...}), lists for tuples and sets, text keys for maps.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else str(key): to_plain(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((to_plain(item) for item in value), key=repr)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    return repr(value)


def plain_description(described: WorkflowDescription, runner: RunnerFacts) -> dict[str, Any]:
    """A WorkflowDescription as JSON-ready data (times in ISO 8601, UTC).

    The shape of the CLI's --json and of the web UI's API.
    """
    return {
        "id": described.workflow_id,
        "workflow": described.workflow_name,
        "state": str(described.state),
        "status": to_plain(described.status),
        "generation": described.generation,
        "steps": described.steps,
        "current": described.current,
        "attempt": described.attempt,
        "waiting_for": described.waiting_for,
        "wake_at": to_plain(described.wake_at),
        "started": to_plain(described.started),
        "updated": to_plain(described.updated),
        "ended": to_plain(described.ended),
        "error": described.error,
        "parent": described.parent,
        "unread_events": described.unread_events,
        "skipped_messages": described.skipped_messages,
        "last_skip": described.last_skip,
        "runner": runner.holder,  # (None: no process holds it, or it cannot be known)
        "runner_says": runner.says(described),
        "stalled": runner.stalled(described),
    }
