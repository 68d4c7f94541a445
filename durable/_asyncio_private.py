"""The one door to asyncio's private API: every private name durable uses is spelled here.

durable needs a few things asyncio only offers under private names:
- a loop of its own (the engine's `WorkflowLoop`) must be the running loop while it steps,
  and run the handles it queued exactly as asyncio's loops run theirs (in the handle's
  context, an exception reported to the loop's exception handler); whether one of ours
  runs is kept here too, per thread (`our_running_loop`), since asking asyncio costs a
  system call per question on 3.11;
- asyncio's `TimerHandle.cancel()` tells its loop by a private method, which a loop of our
  own must therefore define;
- storage (group commit) and the test runtime ask whether the host loop has nothing else
  ready, which only asyncio's own loops can tell (`loop._ready`);
- a workflow's task whose coroutine is closed on purpose (an unloaded or killed run) is
  let go of pending, and asyncio reports such a task when it is destroyed unless told not
  to (`Task._log_destroy_pending`).

Each is one name below whose docstring says what it wraps and why. `tests/test_asyncio_private.py`
pins the behaviour relied on, on the running Python, so a release that changes it fails
there, in one file; the same tests check that no other module of durable spells a private
asyncio name. Imports nothing from durable: every layer, storage included, may use it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import sys
import threading
from asyncio import events
from collections.abc import Callable, Iterator
from typing import Any

running_loop: Callable[[], asyncio.AbstractEventLoop | None] = events._get_running_loop
"""The running loop of this thread, or None (`asyncio.events._get_running_loop`).

`asyncio.get_running_loop()` raises when there is none; the engine asks on every call of
workflow-facing API whether the running loop is a workflow's, where a raise and catch would
cost several times the call. Bound to asyncio's function itself (the C one), no wrapper:
it is on every step's path.
"""

set_running_loop: Callable[[asyncio.AbstractEventLoop | None], None] = events._set_running_loop
"""Make `loop` (or None) this thread's running loop (`asyncio.events._set_running_loop`).

A workflow's loop is stepped from a host loop's callback, so it must be made the running
loop for the step and the host's put back after: asyncio's own loops do this in
`run_forever`, which a stepped loop has no equivalent of. `asyncio.get_running_loop()`,
`asyncio.current_task()` and every future and task made without `loop=` then find it.
Bound to asyncio's function itself, no wrapper: it runs twice per step.
"""


current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]
if sys.version_info >= (3, 12):
    current_task = asyncio.current_task
else:
    current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
"""The task running on `loop` now, or None: `asyncio.current_task(loop)`, minus a wrapper.

Python 3.11's `asyncio.current_task` is a Python function around the dict of current
tasks by loop (`asyncio.tasks._current_tasks`, which the C tasks keep); replay asks once
per step, so on 3.11 this is that dict's `get`. From 3.12 the public function is C.
"""


class _OursRunning(threading.local):
    """Which loop of durable's own (a workflow's) is the running loop of this thread, if any.

    Per thread, as asyncio keeps its running loop. Python 3.11's `_get_running_loop` makes a
    getpid() system call whenever a loop is running (its check against a fork), ~0.7 us on
    these machines, and the engine asks on every step whether workflow code is running:
    `our_running_loop` answers that from here, with no system call. Set only by
    `run_as_ours` and `as_running_loop`, which set asyncio's running loop with it.
    """

    loop: asyncio.AbstractEventLoop | None = None


OURS_RUNNING = _OursRunning()
"""This thread's loop of durable's own that runs (`.loop`), for `run_as_ours`'s callers on
a step's path to set themselves (two calls less per step), as `run_as_ours` does."""


our_running_loop: Callable[[], asyncio.AbstractEventLoop | None] = functools.partial(
    getattr, OURS_RUNNING, "loop"
)
"""The running loop if it is one durable made running (run_as_ours, as_running_loop).

None when the running loop is a host's (asyncio's own) or there is none: the same answer
as `running_loop()` for the question "is a workflow's loop running?", without its system
call on 3.11. (A partial of getattr: no Python frame, it is on every step's path.)
"""


def run_as_ours(
    loop: asyncio.AbstractEventLoop | None, host: asyncio.AbstractEventLoop | None = None
) -> asyncio.AbstractEventLoop | None:
    """Make `loop` (one of durable's; None: `host`, a host's loop or none) the running loop.

    Returns the loop of durable's that was running (None: a host's or none), to pass back
    when the previous one is put back: `run_as_ours(previous or host)` then needs `host`,
    the host loop that was running before, which the caller knows (reading it would cost
    the system call `our_running_loop` saves).
    """
    ours = OURS_RUNNING
    previous = ours.loop
    set_running_loop(loop if loop is not None else host)
    ours.loop = loop
    return previous


@contextlib.contextmanager
def as_running_loop(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Make `loop` the running loop meanwhile, then put back whichever was (or None).

    For code that runs a loop's callbacks outside its stepping (a workflow's teardown).
    Wraps `_get_running_loop` and `_set_running_loop` as `set_running_loop` says, and
    keeps `our_running_loop` in step.
    """
    previous = running_loop()
    previous_ours = run_as_ours(loop)
    try:
        yield
    finally:
        run_as_ours(previous_ours, previous)


def run_ready(queue: collections.deque[asyncio.Handle], limit: int = -1) -> None:
    """Run handles from the front of `queue` until it is empty or `limit` were taken.

    Handles queued meanwhile run too; a cancelled handle is dropped (it counts toward
    `limit`); `limit` -1 is none. Each runs as asyncio's loops run theirs, by
    `Handle._run`: the callback runs in the handle's context, and an exception it raises
    goes to `loop.call_exception_handler` instead of out of here (SystemExit and
    KeyboardInterrupt still propagate). Reimplementing that would drift from asyncio's
    reporting; calling it is what a custom loop must do. Reads `Handle._cancelled`, the
    flag `cancel()` sets, where the public `cancelled()` would cost a method call per
    callback. The whole loop is here, not one call per handle, to keep the step's path short.

    `Handle._run`'s first line, `self._context.run(self._callback, *self._args)`, runs here
    inline (a Python frame less per handle, one or two a step); a callback that raises is
    then reported by `Handle._run` itself (`_report`), so the message and the exception
    handler's context are asyncio's own, whatever the Python version formats.
    """
    while queue and limit != 0:
        limit -= 1
        handle = queue.popleft()
        if not handle._cancelled:
            try:
                handle._context.run(handle._callback, *handle._args)  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as error:
                _report(handle, error)


class _Raising:
    """A stand-in for a handle's context whose run() raises what the callback raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def run(self, *_: Any) -> None:
        raise self.error


def _report(handle: asyncio.Handle, error: BaseException) -> None:
    """Report `error`, raised by `handle`'s callback, as `Handle._run` reports one."""
    context = handle._context  # type: ignore[attr-defined]
    handle._context = _Raising(error)  # type: ignore[attr-defined]
    try:
        handle._run()
    finally:
        handle._context = context  # type: ignore[attr-defined]


def run_handle(handle: asyncio.Handle) -> None:
    """Run one handle's callback now, as a loop would (`Handle._run`; see `run_ready`).

    For timers kept outside any loop's queue (virtual time), fired when a test says so.
    """
    handle._run()


def loop_is_idle(loop: asyncio.AbstractEventLoop) -> bool | None:
    """Whether `loop` has no callback ready to run; None when it cannot tell.

    Reads `loop._ready`, the ready queue (a deque) of asyncio's own loops (BaseEventLoop),
    which has no public view. Group commit syncs at once, on the loop's thread, an
    appender that nothing else on the loop is ready to follow, and otherwise waits until
    the loop ran what was ready, so one sync covers every workflow's records; the test
    runtime calls a runtime idle only when its loop is. Another loop (uvloop) has no
    `_ready`: None, and the caller takes the path that does not need to know.
    """
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return None
    return not ready


def forget_pending(task: asyncio.Task[Any]) -> None:
    """Let `task` be destroyed while pending without asyncio reporting it.

    asyncio's tasks (Python's and C's alike) report "Task was destroyed but it is pending!"
    to their loop's exception handler when collected unfinished, unless their
    `_log_destroy_pending` is false (asyncio itself clears it for the tasks it abandons
    knowingly). The engine closes an unloaded or killed run's coroutines instead of
    cancelling them (their `except CancelledError` handlers must not run), which leaves the
    tasks pending for good: that is intended, not a leak to report.
    """
    task._log_destroy_pending = False  # type: ignore[attr-defined]


class CustomEventLoop(asyncio.AbstractEventLoop):
    """Base of an event loop of durable's own: what asyncio calls on a loop by private names.

    `asyncio.TimerHandle.cancel()` calls `loop._timer_handle_cancelled(handle)` (the first
    time the handle is cancelled; asyncio's own loops count cancelled timers with it), which
    `AbstractEventLoop` declares privately and leaves raising NotImplementedError, so a loop
    of its own must override it to let workflow code cancel a timer. Here it forwards to
    `timer_handle_cancelled`, which a subclass overrides.
    """

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.timer_handle_cancelled(handle)

    def timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """A timer handle of this loop was cancelled (once per handle, when first cancelled)."""
