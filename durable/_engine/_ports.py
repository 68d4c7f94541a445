"""What the engine needs from its host, as protocols: child workflows and the inbox.

The runtime (a layer above) provides both; the engine knows them only by these shapes, so
nothing in the engine imports the runtime, the mailroom or the child runner. A leaf: it
imports nothing from durable, and every engine module may import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class Children(Protocol):
    """How a run starts and cancels child workflows (the runtime provides it)."""

    def begin(
        self,
        target: Any,
        workflow_id: str,
        arguments: list[Any],
        parent: str,
        trace: dict[str, str] | None = None,
    ) -> asyncio.Future[Any]:
        """Start (or resume, or join) the child now, in work the runtime owns; its start.

        `trace`: the step's trace carrier, for a new child's start record (its parent span).

        Called as the step starts, so the start outlives the parent's run: a parent that
        ends at once still finds it under way (end_with_parent waits for it).
        """

    async def outcome(self, started: asyncio.Future[Any]) -> Any:
        """The child's result once begin's start is done; WorkflowFailed etc. for its end."""

    def cancel(self, workflow_id: str, reason: str, parent: str) -> None:
        """Have `parent`'s child cancelled durably, soon (idempotent; a finished one is left be).

        The runtime owns that work: it must outlive the parent's run, which may end now. An
        id whose journal another parent (or nobody) started is left be: it was refused.
        """

    async def end_with_parent(self, parent: str, children: list[str], reason: str) -> None:
        """Cancel these children of `parent` durably, now: return once each is on disk.

        Idempotent (one cancellation per child from its parent); a child that has finished,
        or whose journal was never written, is left be. Starts of these children still in
        progress are waited for first, so none starts after its cancellation was skipped.
        """


# The inbox messages from a position on: (position, decoded message) pairs; in place of a
# message that cannot be decoded, why (the run journals it as skipped).
InboxReader = Callable[[int], Awaitable[list[tuple[int, dict[str, Any] | str]]]]
