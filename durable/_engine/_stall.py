"""Noticing workflow code that blocks the host thread (a time.sleep, a CPU loop): a watchdog.

Workflow code runs on the host thread, in a run's steps (`WorkflowLoop.run_until_idle`);
code that blocks there stalls every workflow, timer, activity and sync of the runtime. A
StallWatch marks each step (one tuple stored: ~0.1 us a step) and a daemon thread looks at
the mark every quarter of the threshold: a step running longer than the threshold is logged
once, as a warning on the `durable` logger, with the workflow id, for how long, the file:line
its code is at and the stack below the step (Temporal's deadlock detector). A warning, not
an error: the code may be slow rather than wrong, and another thread cannot interrupt it.
Knows nothing of journals.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from types import FrameType

from ._context import _ASYNCIO, _PACKAGE
from ._loop import WorkflowLoop

logger = logging.getLogger("durable")

_STEP_CODE = WorkflowLoop.run_until_idle.__code__  # where a step starts, on the host thread


class StallWatch:
    """Marks workflow steps; a watcher thread reports one that runs past `threshold` seconds.

    `enter`/`leave` run on the host thread around each step; the watcher only reads the mark
    (a tuple, replaced whole, so it is never seen half-written).
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.current: tuple[str, float] | None = None  # (workflow id, monotonic start)
        self._host: int | None = None  # the thread steps run on
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()
        self._reported: tuple[str, float] | None = None  # the stall already logged

    def enter(self, workflow_id: str) -> None:
        self.current = (workflow_id, time.monotonic())

    def leave(self) -> None:
        self.current = None

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
        while not self._stopped.wait(interval):
            current = self.current
            if current is None or current is self._reported:
                continue
            if time.monotonic() - current[1] >= self.threshold:
                self._report(current)

    def _report(self, current: tuple[str, float]) -> None:
        frame = sys._current_frames().get(self._host or -1)
        frames = _step_frames(frame)
        if self.current is not current or not frames:
            return  # the step ended meanwhile: no stall
        self._reported = current
        workflow_id, since = current
        where = _workflow_frame(frames)
        summary = traceback.StackSummary.extract(
            ((f, f.f_lineno) for f in reversed(frames) if not _is_asyncio(f)), limit=20
        )
        logger.warning(
            "workflow %r has blocked the event loop for %.1f s so far, at %s:%d in %s(): workflow "
            "code must not block (time.sleep, blocking I/O, long computations), since every "
            "workflow of the runtime waits meanwhile; use durable.sleep, or move the work "
            "into an activity. Its stack (innermost last):\n%s",
            workflow_id,
            time.monotonic() - since,
            where.f_code.co_filename,
            where.f_lineno,
            where.f_code.co_name,
            "".join(summary.format()).rstrip(),
        )


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
    return frame.f_code.co_filename.startswith(_ASYNCIO)


def _workflow_frame(frames: list[FrameType]) -> FrameType:
    """The innermost frame of workflow code: outside durable and asyncio (else the innermost)."""
    for frame in frames:
        filename = frame.f_code.co_filename
        if not (filename.startswith(_PACKAGE) or filename.startswith(_ASYNCIO)):
            return frame
    return frames[0]
