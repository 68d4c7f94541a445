"""The per-workflow event loop: a ready queue and a logical clock, stepped by the runtime.

Workflow code (its tasks, futures, gather, wait, timeouts) runs here, never on the host
loop. This loop does no I/O and never blocks: `run_until_idle` runs ready callbacks until
none are left and returns. Its clock is the timestamp of the journal event being delivered,
so `loop.time()` replays identically. A timer (`call_at`, which `asyncio.sleep`, `wait_for`
and `asyncio.timeout` all use) is reported to the driver as a command; it fires only when
the driver delivers its journaled "fired" event. Knows nothing of journals or activities.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import sys
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from contextvars import Context
from typing import Any, NoReturn, Protocol, TypeVar, TypeVarTuple, Unpack

from .._asyncio_private import (
    OURS_RUNNING,
    CustomEventLoop,
    as_running_loop,
    our_running_loop,
    run_ready,
    running_loop,
    set_running_loop,
)
from .._errors import WorkflowDefinitionError

logger = logging.getLogger("durable")

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


TASK_SALT_SHIFT = 40  # (a task's hash: its count below bit 40, the run's salt above)
TASK_SALT_MASK = (1 << 20) - 1  # (hashes stay under 2**61 - 1: Python reduces above it)


class StepTimer(asyncio.TimerHandle):
    """A timer of workflow code, tagged with the step its driver gave it."""

    __slots__ = ("step",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.step = -1


class OrderedTask(asyncio.Task):  # type: ignore[type-arg]
    """A task of workflow code that hashes by when it was created, not where it lies.

    Sets of tasks (asyncio.wait's `done` and `pending`) then iterate in the same order in
    every process that replays the workflow, so code that loops over them replays.

    `order` is the creation count plus the run's salt (its start record's `hs`) at bits
    40-59. Without it, every run's first task hashed 0: asyncio's one set of all tasks held
    thousands of equal hashes, and registering a task compared it with each (~180 us a
    task at 3,000 sleepers). A set's slots follow the low bits, so the salt changes an
    iteration order only past a probe's ~7th perturbation round (thousands of tasks that
    all collide); a journal from before it has no `hs` and replays with 0, as recorded.
    """

    __slots__ = ("order",)

    def __init__(self, order: int, *args: Any, **kwargs: Any) -> None:
        self.order = order  # first: registering the task hashes it
        super().__init__(*args, **kwargs)

    def __hash__(self) -> int:
        return self.order


class OrderedCall(tuple[Coroutine[Any, Any, Any], int]):
    """A call of workflow code's (an activity, a child, a durable sleep or event wait).

    It is the call's coroutine, hashing by the call's place in the code's order (a per-run
    count), not by its address. `asyncio.as_completed` puts the awaitables it is given in a
    set and starts them in the set's order; steps are numbered when they start, so that
    order must not follow memory. Awaited directly, it is its coroutine: `__await__` hands
    the coroutine's own iterator over, so a sequential `await charge(x)` costs one small
    object more and no frame per resumption. (A tuple, so that making one runs no Python
    code; asyncio takes it for a coroutine by its methods.)
    """

    __slots__ = ()

    def __hash__(self) -> int:
        return self[1]

    def __await__(self) -> Generator[Any, None, Any]:
        return self[0].__await__()

    def send(self, value: Any) -> Any:
        return self[0].send(value)

    def throw(self, *args: Any) -> Any:
        return self[0].throw(*args)

    def close(self) -> None:
        self[0].close()

    def __getattr__(self, name: str) -> Any:  # cr_frame, __qualname__: for reprs, debuggers
        return getattr(self[0], name)

    def __repr__(self) -> str:
        return repr(self[0])


def in_order(coroutine: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """`coroutine`, hashing in call order if it was called in workflow code (OrderedCall)."""
    loop = our_running_loop()
    if loop.__class__ is WorkflowLoop:
        return OrderedCall((coroutine, next(loop.orders)))
    return coroutine


class TimerScheduler(Protocol):
    """What the loop tells its driver about timers (the driver journals and arms them)."""

    def timer_requested(self, handle: StepTimer) -> None: ...

    def timer_cancelled(self, handle: StepTimer) -> None: ...


class _NoTimers:
    """A closed loop's scheduler (its driver let go): asks nothing of anyone."""

    def timer_requested(self, handle: StepTimer) -> None:
        pass

    def timer_cancelled(self, handle: StepTimer) -> None:
        pass


_NO_TIMERS = _NoTimers()


class WorkflowLoop(CustomEventLoop):
    """A deterministic loop for one workflow: callbacks in FIFO order, time set from outside."""

    def __init__(
        self, *, start_time: float, scheduler: TimerScheduler, owner: object, salt: int = 0
    ) -> None:
        self._queue: collections.deque[asyncio.Handle] = collections.deque()  # ready callbacks
        self._time = start_time
        self._scheduler = scheduler
        self._closed = False
        self._stepping = False
        self._exception_handler: Any = None
        # (made at the first async generator: most workflows have none, and a WeakSet
        # costs a dozen Python-level calls to make)
        self._asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]] | None = None
        # Its tasks: the first (the workflow's main task, which its driver holds anyway),
        # then the others, weakly, in a WeakSet made at the second (most workflows have one).
        self._first_task: asyncio.Task[Any] | None = None
        self._tasks: weakref.WeakSet[asyncio.Task[Any]] | None = None
        self.orders = itertools.count()  # tasks and calls of workflow code (their hashes)
        # Added to its tasks' hashes: apart from other runs' tasks, the same on a replay
        # (journaled: the start record's `hs`), above the bits a set's slot reads first.
        self._task_salt = (salt & TASK_SALT_MASK) << TASK_SALT_SHIFT
        self.owner = owner  # the driver; how in-workflow calls find their workflow
        # The host loop its driver steps it from, once known (its driver sets it): the one
        # to put back after a step, without asking which runs (a system call on 3.11).
        self.host: asyncio.AbstractEventLoop | None = None
        # (firstiter, finalizer): made once, passed by position (no keywords to parse)
        self._hooks: tuple[Callable[[AsyncGenerator[Any, Any]], None], ...] = (
            self._asyncgen_first_iteration,
            self._asyncgen_finalize,
        )
        # Recorded outcomes remain to deliver: the steps asked for now are journaled, with
        # their call sites (an activity call skips reading its caller's frame). Its driver's.
        self.replaying = False

    # -- what the driver uses ------------------------------------------------------------

    def detach(self) -> None:
        """Let go of the driver once closed (it is freed when unreferenced; see its teardown)."""
        self.owner = None
        self._scheduler = _NO_TIMERS
        self._first_task = self._tasks = None  # (each task refers to its loop)
        self._hooks = ()  # (its own bound methods)

    def set_time(self, when: float) -> None:
        """Move the logical clock (never backwards) to the time of the event delivered next."""
        if when > self._time:  # noqa: PLR1730 (not max(): a call less on every step)
            self._time = when

    def run_until_idle(self, limit: int | None = None) -> None:
        """Run ready callbacks until none are left (or `limit` ran); new ones run too.

        While it runs, this loop is the running loop and its async-generator hooks are
        installed, so a generator abandoned in workflow code is closed here, its `finally`
        journaled like any workflow code, not run on the host loop.
        """
        host = self.host
        if host is None:
            host = running_loop()
        previous_hooks = sys.get_asyncgen_hooks()
        ours = OURS_RUNNING  # (run_as_ours, inline: the step's path)
        previous = ours.loop
        set_running_loop(self)
        ours.loop = self
        sys.set_asyncgen_hooks(*self._hooks)
        self._stepping = True
        try:
            run_ready(self._queue, limit if limit is not None else -1)
        finally:
            self._stepping = False
            sys.set_asyncgen_hooks(*previous_hooks)
            set_running_loop(previous if previous is not None else host)
            ours.loop = previous

    def running(self) -> contextlib.AbstractContextManager[None]:
        """Be the running loop meanwhile (for code run outside run_until_idle: teardown)."""
        return as_running_loop(self)

    def _asyncgen_first_iteration(self, generator: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens is None:
            self._asyncgens = weakref.WeakSet()
        self._asyncgens.add(generator)

    def _asyncgen_finalize(self, generator: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens is not None:
            self._asyncgens.discard(generator)
        if not self._closed:
            self._queue.append(asyncio.Handle(self.create_task, (generator.aclose(),), self, None))

    def close_asyncgens(self) -> None:
        """Close generators still open (as asyncio's shutdown_asyncgens), before close()."""
        generators = self._asyncgens
        if not generators:
            return  # (most workflows have none: no iteration of the WeakSet)
        for generator in list(generators):
            generators.discard(generator)
            self.create_task(generator.aclose())

    def has_ready(self) -> bool:
        """Whether callbacks are waiting to run (if not, the loop is idle once they yield)."""
        return bool(self._queue)

    def fire(self, handle: asyncio.TimerHandle) -> None:
        """Queue a timer's callback (its 'fired' event is being delivered)."""
        if not handle.cancelled():
            self._queue.append(handle)

    # -- what tasks and futures need -----------------------------------------------------

    def time(self) -> float:
        return self._time

    def call_soon(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> asyncio.Handle:
        if self._closed:  # (_check_open, inline: a task's wake-up comes here every step)
            self._check_open()
        handle = asyncio.Handle(callback, args, self, context)
        self._queue.append(handle)
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> NoReturn:
        self._forbidden("call_soon_threadsafe")

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self._time + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        self._check_open()
        handle = StepTimer(when, callback, args, self, context)
        self._scheduler.timer_requested(handle)
        return handle

    def timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if not self._closed and isinstance(handle, StepTimer):
            self._scheduler.timer_cancelled(handle)

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> asyncio.Task[T]:
        self._check_open()
        order = self._task_salt + next(self.orders)
        task = OrderedTask(order, coro, loop=self, name=name, context=context)
        if self._first_task is None:
            self._first_task = task
        else:
            if self._tasks is None:
                self._tasks = weakref.WeakSet()
            self._tasks.add(task)
        return task

    def tasks(self) -> set[asyncio.Task[Any]]:
        """This loop's unfinished tasks (asyncio.all_tasks would scan every task there is)."""
        found = {task for task in self._tasks if not task.done()} if self._tasks else set()
        first = self._first_task
        if first is not None and not first.done():
            found.add(first)
        return found

    def is_running(self) -> bool:
        return self._stepping

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._queue.clear()

    # Asked by every Future and Handle made for this loop (two a step): bool() is False, a
    # C call with no Python frame. Never in debug mode: its traceback capture would not
    # replay anyway.
    get_debug = staticmethod(bool)

    def set_debug(self, enabled: bool) -> None:
        pass

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        logger.error(
            "in workflow code: %s",
            context.get("message", "unhandled error"),
            exc_info=(type(exception), exception, exception.__traceback__)
            if isinstance(exception, BaseException)
            else None,
        )

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is not None:
            self._exception_handler(self, context)
        else:
            self.default_exception_handler(context)

    def get_task_factory(self) -> None:
        return None

    # -- what workflows must not do ------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this workflow's event loop is closed")

    def _forbidden(self, what: str) -> NoReturn:
        raise WorkflowDefinitionError(
            f"workflow code called loop.{what}(): workflows must not do I/O, use threads or "
            "wait on anything but activities, timers and their own tasks, because none of that "
            "replays. Move it into an @durable.activity"
        )

    def run_in_executor(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("run_in_executor")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("getaddrinfo")

    async def create_connection(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("create_connection")

    async def create_server(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("create_server")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("subprocess_exec")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("subprocess_shell")

    def add_reader(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("add_reader")

    def add_writer(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("add_writer")

    def run_forever(self) -> NoReturn:
        self._forbidden("run_forever")

    def run_until_complete(self, future: Any) -> NoReturn:
        self._forbidden("run_until_complete")
