"""Noticing workflow code that blocks the host thread (a time.sleep, a CPU loop): a watchdog.

Workflow code runs on the host thread, in a run's steps (`WorkflowLoop.run_until_idle`);
code that blocks there stalls every workflow, timer, activity and sync of the runtime. Each
step marks a StallWatch (which workflow, and a step count: ~20 ns a step, no clock read) and
a daemon thread looks at the mark every quarter of the threshold: a mark it has seen
unchanged for the threshold is a step that has run at least that long, and is logged once,
as a warning on the `durable` logger, with the workflow id, for how long, the file:line its
code is at and the stack below the step (Temporal's deadlock detector). A warning, not an
error: the code may be slow rather than wrong, and another thread cannot interrupt it.
Knows nothing of journals.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from types import FrameType
from typing import Protocol

from .._asyncio_private import run_ready
from ._context import _ASYNCIO, _PACKAGE
from ._log_fields import durable_logger
from ._loop import WorkflowLoop

logger = durable_logger()

_STEP_CODE = WorkflowLoop.run_until_idle.__code__  # where a step starts, on the host thread
_DOOR = run_ready.__code__.co_filename  # the door to asyncio (run_ready runs the step's handles)


class Stepping(Protocol):
    """The run whose step is marked (WorkflowRun)."""

    workflow_id: str

    @property
    def replaying(self) -> bool:
        """Whether it replays its journal (else it runs live)."""


class StallWatch:
    """Marks workflow steps; a watcher thread reports one that runs past `threshold` seconds.

    The run writes the mark itself around each step, on the host thread (`steps += 1`,
    `stepping = run`, then `stepping = None`): two stores, where a method call and a clock
    read would cost ~5 times as much. The watcher only reads it, and believes a stall
    only when it reads the same mark for the whole threshold, so a mark read halfway through
    a change (the id of one step, the count of the next) is never reported.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.stepping: Stepping | None = None  # the run whose step runs now
        self.steps = 0  # steps begun: tells one step from the next of the same workflow
        self._host: int | None = None  # the thread steps run on
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Watch the calling (host) thread's steps; starts the watcher thread once."""
        self._host = threading.get_ident()
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._stopped.clear()
        self._watcher = threading.Thread(
            target=self._watch, name="durable stall watch", daemon=True
        )
        self._watcher.start()

    def stop(self) -> None:
        """Stop the watcher thread (the runtime closes)."""
        self._stopped.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=1)

    def _watch(self) -> None:
        interval = min(max(self.threshold / 4, 0.005), 0.5)
        seen: tuple[Stepping, int] | None = None  # the mark, and since when it holds
        since = 0.0
        reported: tuple[Stepping, int] | None = None
        while not self._stopped.wait(interval):
            run = self.stepping
            if run is None:
                seen = None
                continue
            mark = (run, self.steps)
            if mark != seen:
                seen, since = mark, time.monotonic()
            elif (
                mark != reported
                and time.monotonic() - since >= self.threshold
                and self._report(mark, since)
            ):
                reported = mark

    def _mark(self) -> tuple[Stepping | None, int]:
        return self.stepping, self.steps

    def _report(self, mark: tuple[Stepping, int], since: float) -> bool:
        """Log the stall `mark` names, unless its step ended meanwhile; whether it did."""
        frame = sys._current_frames().get(self._host or -1)
        frames = _step_frames(frame)
        if self._mark() != mark or not frames:
            return False  # the step ended meanwhile: no stall
        run = mark[0]
        where = _workflow_frame(frames)
        if run.replaying:  # (a long replay holds the loop too, whatever the code does)
            advice = (
                "while replaying its journal: if its code is fast, the journal is long "
                "(continue_as_new keeps journals short); else workflow code must not block"
            )
        else:
            advice = "workflow code must not block"
        summary = traceback.StackSummary.extract(
            ((f, f.f_lineno) for f in reversed(frames) if not _is_asyncio(f)), limit=20
        )
        logger.warning(
            "workflow %r has blocked the event loop for over %.1f s, at %s:%d in %s(), %s "
            "(time.sleep, blocking I/O, long computations), since every workflow of the "
            "runtime waits meanwhile; use durable.sleep, or move the work into an activity. "
            "Its stack (innermost last):\n%s",
            run.workflow_id,
            time.monotonic() - since,
            where.f_code.co_filename,
            where.f_lineno,
            where.f_code.co_name,
            advice,
            "".join(summary.format()).rstrip(),
        )
        return True


def _step_frames(frame: FrameType | None) -> list[FrameType]:
    """The frames below the running step, innermost first (none: no step is running)."""
    found: list[FrameType] = []
    while frame is not None:
        if frame.f_code is _STEP_CODE:
            return found
        found.append(frame)
        frame = frame.f_back
    return []


def _is_asyncio(frame: FrameType) -> bool:
    """Whether `frame` is asyncio's, or durable's door to it: machinery, not workflow code."""
    filename = frame.f_code.co_filename
    return filename.startswith(_ASYNCIO) or filename == _DOOR


def _workflow_frame(frames: list[FrameType]) -> FrameType:
    """The innermost frame of workflow code: outside durable and asyncio (else the innermost)."""
    for frame in frames:
        filename = frame.f_code.co_filename
        if not (filename.startswith(_PACKAGE) or filename.startswith(_ASYNCIO)):
            return frame
    return frames[0]
