"""What a Runtime hands the parts it is made of (serving, operations, queries).

The parts are given these (the runtime's bound methods) when it makes them, so none of them
reaches into another's state; the runtime's public methods delegate to its parts.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any, Protocol

from ._definitions import Workflow

# A queued request to start from: its workflow and its arguments.
QueuedRequest = tuple[Workflow[..., Any], list[Any]]


class StartRun(Protocol):
    """Start (or resume) a workflow's run in the runtime; its handle.

    A WorkflowHandle, whose module is the layer above the parts: typed Any here.
    """

    async def __call__(
        self,
        definition: Workflow[..., Any],
        workflow_id: str,
        arguments: list[Any] | None,
        *,
        follow: bool = True,
    ) -> Any: ...


class ParkRecovered(Protocol):
    """recover(): hold an unloaded sleeper's journal and park it, not replayed; its handle.

    None: its journal does not end parked; start it as usual.
    """

    async def __call__(self, definition: Workflow[..., Any], workflow_id: str) -> Any: ...


class HandleOf(Protocol):
    """A handle to a workflow (its task in this runtime, if it runs here)."""

    def __call__(self, workflow_id: str, task: Any, /) -> Any: ...


def default_by() -> str:
    """Who asks, when the caller does not say: user@host (pid), as a journal keeps it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # (no name for this uid, in a container say)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"
