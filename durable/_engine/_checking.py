"""What a replay check runs a workflow over: a journal that is only read, no children.

Replay verification (durable.testing's replay check, `durable verify`) and the operations'
checks before they write (a fork's copied records, a resumed journal) run `WorkflowRun`
over these: a write, or a child started, would be a bug, and says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._storage._frames import StoredRecord


class ReadOnlyJournal:
    """A journal replay reads and never writes (a write would be a bug: say so)."""

    held_until: float | None = None

    def __init__(self, records: list[StoredRecord]) -> None:
        self.records = records
        self.closed = False

    def write(self, payload: bytes) -> None:
        raise AssertionError("replay verification must not write to a journal")

    async def append(self, payload: bytes) -> None:
        self.write(payload)

    async def flush(self) -> None:
        pass

    async def note(
        self, *, finished: bool = False, wake_at: float | None = None, inbox_next: int | None = None
    ) -> None:
        pass

    async def suspend(self) -> None:
        """Nothing to keep: a check never unloads."""

    async def resume(self) -> None:
        """Nothing to read again."""

    def check_held(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


class NoChildren:
    """Children of a replayed workflow: their recorded outcomes replay; nothing starts."""

    def begin(
        self,
        target: Any,
        workflow_id: str,
        arguments: list[Any],
        parent: str,
        trace: dict[str, str] | None = None,
    ) -> asyncio.Future[Any]:
        raise AssertionError("replay verification must not start a child workflow")

    async def outcome(self, started: asyncio.Future[Any]) -> Any:
        raise AssertionError("replay verification must not start a child workflow")

    def cancel(self, workflow_id: str, reason: str, parent: str) -> None:
        pass

    async def end_with_parent(self, parent: str, children: list[str], reason: str) -> None:
        raise AssertionError("replay verification must not end a workflow")
