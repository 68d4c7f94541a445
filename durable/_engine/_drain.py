"""Live outcomes on their way into the journal and then into the workflow: the drain's queue.

A part of WorkflowRun (its `_drain`). Whoever posts an outcome while nobody drains drains
the queue: an activity's own task, inline, or a new task (a timer, a message). A drain
journals everything queued with one sync, then delivers it in journal order, so a step
costs no hop to another task. While an activity's task drains (`inline_open`), the
activity the workflow asks for next is queued for that task to run (`inline`) instead of
a task of its own: a sequential workflow runs in one task, one loop pass per step.
While that task delivers the last outcome it has (`run_now`), the activity the workflow
asks for next even starts at once, inside the drain: one that returns without suspending
posts its outcome, which the same drain journals and delivers next, so a sequential
workflow of such activities runs in one drain, with no hand-over per step.
"""

from __future__ import annotations

import collections
from collections.abc import Coroutine
from typing import Any

from ._steps import InlineStart


class Drain:
    """The outcomes to journal and deliver, whether a task drains them, the inline start."""

    def __init__(self) -> None:
        # (encoded record, the record itself when it may be delivered as it is, else None)
        self.outcomes: collections.deque[tuple[bytes, dict[str, Any] | None]] = collections.deque()
        self.draining = False  # a task drains (or is about to): nobody else may
        self.inline_open = False  # an activity's task drains: it can run one activity more
        self.inline: InlineStart | None = None  # the activity it runs next
        # It delivers its last outcome queued: the activity asked for now may start at once
        # (see StepStarter._run_now); taken by the first one, for one activity at most.
        self.run_now = False

    def post(self, payload: bytes, record: dict[str, Any] | None = None) -> bool:
        """Queue an outcome; whether the caller must have it drained (nobody drains)."""
        self.outcomes.append((payload, record))
        return not self.draining

    def take(self) -> list[tuple[bytes, dict[str, Any] | None]]:
        """Everything queued, oldest first: the next batch to journal (one sync)."""
        batch = list(self.outcomes)
        self.outcomes.clear()
        return batch

    def busy(self) -> bool:
        """Whether an outcome is queued or being drained (the run is not idle)."""
        return self.draining or bool(self.outcomes)

    def run_inline(
        self, step: int, attempts: Coroutine[Any, Any, tuple[bytes, dict[str, Any] | None]]
    ) -> InlineStart | None:
        """Have the draining activity task run this activity next, if it can (else None)."""
        if not self.inline_open or self.inline is not None:
            return None
        self.inline = InlineStart(step, attempts)
        return self.inline

    def take_inline(self) -> InlineStart | None:
        """The activity queued to run inline (once the drain ends), if any."""
        queued, self.inline = self.inline, None
        return queued

    def cancel_inline(self) -> None:
        if self.inline is not None:
            self.inline.cancel()
