"""The door to asyncio's private API: what durable relies on, pinned on the running Python.

If one of these fails after a Python upgrade, asyncio changed something durable uses by a
private name: fix `durable/_asyncio_private.py` (the only module that spells them; the last
tests here keep it so) and nothing else should need to change.
"""

from __future__ import annotations

import ast
import asyncio
import collections
import contextvars
import gc
import threading
from asyncio import events
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable._asyncio_private import (
    CustomEventLoop,
    as_running_loop,
    current_task,
    forget_pending,
    loop_is_idle,
    our_running_loop,
    run_as_ours,
    run_handle,
    run_ready,
    running_loop,
    set_running_loop,
)

PACKAGE = Path(__file__).resolve().parent.parent / "durable"
DOOR = PACKAGE / "_asyncio_private.py"


class BareLoop(asyncio.AbstractEventLoop):
    """A loop not derived from asyncio's BaseEventLoop, as uvloop's: no `_ready` to read."""

    def get_debug(self) -> bool:  # (asked by every Handle made for it)
        return False


class StandInLoop(CustomEventLoop):
    """The least a loop of durable's own defines (as WorkflowLoop), with a queue to step."""

    def __init__(self) -> None:
        self.queue: collections.deque[asyncio.Handle] = collections.deque()
        self.errors: list[dict[str, Any]] = []
        self.timers_cancelled: list[asyncio.TimerHandle] = []

    def get_debug(self) -> bool:
        return False

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self.queue.append(handle)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.timers_cancelled.append(handle)


def bare_loop() -> BareLoop:
    return BareLoop()  # type: ignore[abstract]  # (a stand-in: only what the tests call)


def stand_in() -> StandInLoop:
    return StandInLoop()  # type: ignore[abstract]


def ready_of(loop: asyncio.AbstractEventLoop) -> Any:
    return vars(loop)["_ready"]


# -- the running loop: _get_running_loop / _set_running_loop ---------------------------------


def test_the_door_binds_asyncios_own_running_loop_functions() -> None:
    assert running_loop is events._get_running_loop
    assert set_running_loop is events._set_running_loop


def test_setting_the_running_loop_is_what_get_running_loop_answers_and_is_undone() -> None:
    assert running_loop() is None
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()
    loop = stand_in()
    set_running_loop(loop)
    try:
        assert running_loop() is loop
        assert asyncio.get_running_loop() is loop
        seen: list[asyncio.AbstractEventLoop | None] = []
        thread = threading.Thread(target=lambda: seen.append(running_loop()))
        thread.start()
        thread.join()
        assert seen == [None]  # (per thread)
    finally:
        set_running_loop(None)
    assert running_loop() is None


def test_as_running_loop_puts_back_the_loop_that_was_running_even_on_error() -> None:
    async def main() -> None:
        host = asyncio.get_running_loop()
        loop = stand_in()
        with as_running_loop(loop):
            assert asyncio.get_running_loop() is loop
        assert asyncio.get_running_loop() is host
        with pytest.raises(ZeroDivisionError), as_running_loop(loop):
            1 / 0  # noqa: B018
        assert asyncio.get_running_loop() is host

    asyncio.run(main())


def test_a_loop_run_as_ours_is_the_running_loop_and_ours_per_thread_and_is_undone() -> None:
    async def main() -> None:
        host = asyncio.get_running_loop()
        assert our_running_loop() is None  # (asyncio's own loop runs: not ours)
        outer, inner = stand_in(), stand_in()
        previous = run_as_ours(outer)
        try:
            assert previous is None
            assert asyncio.get_running_loop() is outer
            assert our_running_loop() is outer
            seen: list[asyncio.AbstractEventLoop | None] = []
            thread = threading.Thread(target=lambda: seen.append(our_running_loop()))
            thread.start()
            thread.join()
            assert seen == [None]  # (per thread)
            nested = run_as_ours(inner)  # (one of ours stepped inside another's step)
            assert nested is outer
            assert (running_loop(), our_running_loop()) == (inner, inner)
            run_as_ours(nested, host)  # back to the outer one, not to the host
            assert (running_loop(), our_running_loop()) == (outer, outer)
        finally:
            run_as_ours(previous, host)
        assert asyncio.get_running_loop() is host
        assert our_running_loop() is None

    asyncio.run(main())


def test_as_running_loop_keeps_our_running_loop_in_step() -> None:
    loop = stand_in()
    with as_running_loop(loop):
        assert our_running_loop() is loop
        assert running_loop() is loop
    assert our_running_loop() is None
    assert running_loop() is None


def test_current_task_answers_as_asyncios_for_the_loop_asked_about() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert current_task(loop) is asyncio.current_task()
        other = stand_in()
        assert current_task(other) is None  # (a loop with no task running on it)

    asyncio.run(main())


def test_current_task_on_a_loop_of_our_own_is_the_task_it_steps() -> None:
    loop = stand_in()
    seen: list[object] = []

    async def inside() -> None:
        seen.append(current_task(loop))

    set_running_loop(loop)
    try:
        task = asyncio.Task(inside(), loop=loop)
        run_ready(loop.queue)
    finally:
        set_running_loop(None)
    assert seen == [task]
    assert current_task(loop) is None  # (between steps, none)


def test_asyncio_tasks_run_on_a_loop_of_our_own_stepped_by_run_ready() -> None:
    """A Task and a Future on a loop that is not asyncio's: what WorkflowLoop relies on."""
    loop = stand_in()
    seen: list[object] = []

    async def body() -> str:
        seen.append((asyncio.get_running_loop(), asyncio.current_task()))
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, "woken")
        return await future

    task = asyncio.Task(body(), loop=loop)
    set_running_loop(loop)
    try:
        run_ready(loop.queue)
    finally:
        set_running_loop(None)
    assert task.result() == "woken"
    assert seen == [(loop, task)]
    assert not loop.queue
    assert not loop.errors


# -- Handle._run and Handle._cancelled --------------------------------------------------------


def test_handle_cancel_sets_the_private_flag() -> None:
    handle = asyncio.Handle(print, (), bare_loop(), None)
    assert handle._cancelled is False
    handle.cancel()
    assert handle._cancelled is True
    assert handle.cancelled()


def test_a_handle_runs_its_callback_with_its_arguments_in_its_own_context() -> None:
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="outside")
    context = contextvars.copy_context()
    context.run(variable.set, "inside")
    seen: list[tuple[str, int]] = []
    handle = asyncio.Handle(
        lambda number: seen.append((variable.get(), number)), (7,), stand_in(), context
    )
    run_handle(handle)
    assert seen == [("inside", 7)]
    assert variable.get() == "outside"


def test_a_handle_made_without_a_context_runs_in_a_copy_of_the_one_it_was_made_in() -> None:
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="outside")
    seen: list[str] = []

    def made_and_changed() -> asyncio.Handle:
        variable.set("when made")
        handle = asyncio.Handle(lambda: seen.append(variable.get()), (), stand_in(), None)
        variable.set("after")
        return handle

    run_handle(contextvars.copy_context().run(made_and_changed))
    assert seen == ["when made"]


@pytest.mark.parametrize("error", [ValueError("boom"), asyncio.CancelledError()])
def test_a_callbacks_error_goes_to_the_loops_exception_handler_not_out(
    error: BaseException,
) -> None:
    loop = stand_in()

    def fail() -> None:
        raise error

    handle = asyncio.Handle(fail, (), loop, None)
    run_handle(handle)
    [reported] = loop.errors
    assert reported["exception"] is error
    assert reported["handle"] is handle
    assert reported["message"].startswith("Exception in callback")


@pytest.mark.parametrize("error", [SystemExit, KeyboardInterrupt])
def test_system_exit_and_keyboard_interrupt_propagate_out_of_a_handle(
    error: type[BaseException],
) -> None:
    loop = stand_in()

    def fail() -> None:
        raise error

    with pytest.raises(error):
        run_handle(asyncio.Handle(fail, (), loop, None))
    assert loop.errors == []


def test_asyncios_own_loop_reports_a_callbacks_error_the_same_way() -> None:
    reported: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(context))
        run_handle(asyncio.Handle(lambda: 1 / 0, (), loop, None))

    asyncio.run(main())
    [context] = reported
    assert isinstance(context["exception"], ZeroDivisionError)


def test_run_ready_runs_in_order_including_handles_queued_meanwhile_and_skips_cancelled() -> None:
    loop = stand_in()
    ran: list[str] = []
    loop.call_soon(ran.append, "a")
    loop.call_soon(lambda: loop.call_soon(ran.append, "queued meanwhile"))
    loop.call_soon(ran.append, "cancelled").cancel()
    loop.call_soon(ran.append, "b")
    run_ready(loop.queue)
    assert ran == ["a", "b", "queued meanwhile"]
    assert not loop.queue


def test_run_ready_stops_after_limit_handles_cancelled_ones_included() -> None:
    loop = stand_in()
    ran: list[int] = []
    loop.call_soon(ran.append, 1).cancel()
    for number in (2, 3, 4):
        loop.call_soon(ran.append, number)
    run_ready(loop.queue, limit=2)
    assert ran == [2]
    assert len(loop.queue) == 2
    run_ready(loop.queue, limit=0)
    assert ran == [2]
    run_ready(loop.queue)
    assert ran == [2, 3, 4]


def test_run_ready_reports_a_callbacks_error_and_carries_on() -> None:
    loop = stand_in()
    ran: list[str] = []
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(ran.append, "after")
    run_ready(loop.queue)
    assert ran == ["after"]
    assert isinstance(loop.errors[0]["exception"], ZeroDivisionError)


# -- TimerHandle.cancel() -> loop._timer_handle_cancelled -------------------------------------


def test_cancelling_a_timer_tells_its_loop_once_by_the_private_hook() -> None:
    loop = stand_in()
    timer = asyncio.TimerHandle(10.0, print, (), loop, None)
    timer.cancel()
    timer.cancel()
    assert loop.timers_cancelled == [timer]
    asyncio.Handle(print, (), loop, None).cancel()  # (a plain handle does not)
    assert loop.timers_cancelled == [timer]


def test_a_loop_without_the_hook_cannot_have_a_timer_cancelled() -> None:
    """Why CustomEventLoop exists: AbstractEventLoop leaves the hook unimplemented."""
    timer = asyncio.TimerHandle(10.0, print, (), bare_loop(), None)
    with pytest.raises(NotImplementedError):
        timer.cancel()


def test_handles_are_made_as_the_engine_makes_them() -> None:
    """Handle(callback, args, loop, context) and TimerHandle(when, ...): no public maker."""
    loop = stand_in()
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="outside")
    context = contextvars.copy_context()
    context.run(variable.set, "inside")
    seen: list[tuple[str, str]] = []
    handle = asyncio.Handle(lambda x: seen.append((x, variable.get())), ("handle",), loop, context)
    timer = asyncio.TimerHandle(
        5.0, lambda x: seen.append((x, variable.get())), ("timer",), loop, context
    )
    assert timer.when() == 5.0
    run_ready(collections.deque([handle, timer]))
    assert seen == [("handle", "inside"), ("timer", "inside")]


# -- loop._ready: is the loop idle? ----------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_asyncios_loop_keeps_ready_callbacks_in_a_deque_until_they_ran(debug: bool) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ready = ready_of(loop)
        assert isinstance(ready, collections.deque)
        assert loop_is_idle(loop) is True
        ran: list[int] = []
        handle = loop.call_soon(ran.append, 1)
        assert handle in ready
        assert loop_is_idle(loop) is False
        await asyncio.sleep(0)  # (this task resumes after the callback queued before it)
        assert ran == [1]
        assert not ready
        assert loop_is_idle(loop) is True

    asyncio.run(main(), debug=debug)


def test_during_a_callback_the_rest_of_its_iteration_is_still_ready() -> None:
    """What a group-commit round waits on: it ends when it is the last one ready."""
    seen: list[bool | None] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def last() -> None:
            seen.append(loop_is_idle(loop))
            done.set_result(None)

        loop.call_soon(lambda: seen.append(loop_is_idle(loop)))
        loop.call_soon(last)
        await done  # (this task waits: both callbacks are queued for one iteration)

    asyncio.run(main())
    assert seen == [False, True]  # (the first saw the second still queued; the last, nothing)


def test_each_of_asyncios_loop_classes_has_the_ready_queue() -> None:
    for loop in (asyncio.new_event_loop(), asyncio.SelectorEventLoop()):
        try:
            assert isinstance(ready_of(loop), collections.deque)
            assert loop_is_idle(loop) is True
            loop.call_soon(print)
            assert loop_is_idle(loop) is False
        finally:
            loop.close()


def test_a_loop_that_is_not_asyncios_cannot_tell_whether_it_is_idle() -> None:
    assert loop_is_idle(bare_loop()) is None
    assert loop_is_idle(stand_in()) is None


# -- Task._log_destroy_pending: a task let go of pending on purpose ---------------------------


def destroyed_pending(task_class: Any, *, forgotten: bool) -> list[str]:
    """What the loop is told when a task is collected pending, its coroutine closed."""
    loop = asyncio.new_event_loop()
    reports: list[str] = []
    loop.set_exception_handler(lambda _, context: reports.append(context["message"]))
    try:

        async def forever() -> None:
            await loop.create_future()

        task = task_class(forever(), loop=loop)
        loop.run_until_complete(asyncio.sleep(0))  # (it started: it awaits the future)
        if forgotten:
            forget_pending(task)
        task.get_coro().close()  # (as the engine lets go of a run: closed, not cancelled)
        assert not task.done()
        del task
        gc.collect()
    finally:
        loop.close()
    return reports


TASK_CLASSES = [asyncio.Task, getattr(asyncio.tasks, "_PyTask", asyncio.Task)]


@pytest.mark.parametrize("task_class", TASK_CLASSES, ids=["c", "python"])
def test_a_pending_task_destroyed_is_reported_unless_forgotten(task_class: Any) -> None:
    assert destroyed_pending(task_class, forgotten=False) == [
        "Task was destroyed but it is pending!"
    ]
    assert destroyed_pending(task_class, forgotten=True) == []


# -- no module but the door spells a private asyncio name ------------------------------------

# asyncio's private names that durable has no reason to spell for anything of its own. Other
# private names reached through asyncio or one of its modules (`events._x`) are found apart.
PRIVATE_NAMES = frozenset(
    {
        "_ready",
        "_scheduled",
        "_cancelled",
        "_callbacks",
        "_source_traceback",
        "_state",
        "_callback",
        "_args",
        "_result",
        "_exception",
        "_when",
        "_debug",
        "_task_factory",
        "_thread_id",
        "_clock_resolution",
        "_timer_cancelled_count",
        "_timer_handle_cancelled",
        "_run_once",
        "_current_tasks",
        "_all_tasks",
        "_scheduled_tasks",
        "_eager_tasks",
        "_asyncio_future_blocking",
        "_log_traceback",
        "_fut_waiter",
        "_must_cancel",
        "_num_cancels_requested",
        "_make_cancelled_error",
        "_cancel_message",
        "_coro",
        "_repr_info",
        "_Task__step",
        "_Task__wakeup",
        "_default_executor",
        "_selector",
        "_write_to_self",
        "_process_events",
        "_add_callback",
        "_call_soon",
        "_check_closed",
        "_check_thread",
        "_check_running",
        "_set_running_loop",
        "_get_running_loop",
        "_enter_task",
        "_leave_task",
        "_register_task",
        "_unregister_task",
        "_swap_current_task",
        "_chain_future",
        "_get_loop",
        "_set_task_name",
        "_format_callback_source",
        "_log_destroy_pending",
    }
)


def _asyncio_modules(tree: ast.Module) -> set[str]:
    """Local names bound to asyncio or one of its modules (`from asyncio import events`)."""
    names = {"asyncio"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in {"asyncio", "_asyncio"}:
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module == "asyncio" and not node.level:
            for alias in node.names:
                if alias.name.islower():  # (a module: events, tasks; not Handle, Task)
                    names.add(alias.asname or alias.name)
    return names


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_asyncio_uses(source: str) -> list[str]:
    """Each spelling of a private asyncio name in `source`, as "line: what"."""
    tree = ast.parse(source)
    modules = _asyncio_modules(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if "_asyncio" in a.name]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            if module.split(".")[0] in {"asyncio", "_asyncio"}:
                found += [
                    f"{line}: from {module} import {alias.name}"
                    for alias in node.names
                    if _is_private(alias.name) or module.startswith("_")
                ]
        elif isinstance(node, ast.Attribute):
            if node.attr in PRIVATE_NAMES or (
                _is_private(node.attr) and _root(node.value) in modules
            ):
                found.append(f"{line}: .{node.attr}")
            elif node.attr == "_run" and not (
                isinstance(node.value, ast.Name) and node.value.id == "self"
            ):
                found.append(f"{line}: ._run (Handle._run)")  # (self._run: a class's own)
        elif isinstance(node, ast.ClassDef):
            found += [
                f"{method.lineno}: def {method.name} (a private hook)"
                for method in node.body
                if isinstance(method, ast.FunctionDef) and method.name in PRIVATE_NAMES
            ]
        elif isinstance(node, ast.Constant) and node.value in PRIVATE_NAMES:
            found.append(f"{line}: {node.value!r}")  # getattr(loop, "_ready", None)
    return found


def test_no_module_but_the_door_spells_a_private_asyncio_name() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != DOOR and (uses := private_asyncio_uses(path.read_text()))
    }
    assert offenders == {}, "use durable/_asyncio_private.py (and pin it in this file)"


def test_the_scan_finds_every_kind_of_use() -> None:
    assert len(private_asyncio_uses(DOOR.read_text())) >= 6  # (the door itself: it sees them)
    uses = [
        "from asyncio.events import _get_running_loop",
        "from asyncio import events\nevents._set_running_loop(None)",
        "import asyncio.tasks\nasyncio.tasks._enter_task(loop, task)",
        "import asyncio\nasyncio._get_running_loop()",
        "import _asyncio",
        "loop._ready",
        "getattr(loop, '_ready', None)",
        "handle._run()",
        "if not handle._cancelled: pass",
        "class Loop:\n    def _timer_handle_cancelled(self, handle): pass",
        "task._log_destroy_pending = False",
    ]
    for source in uses:
        assert private_asyncio_uses(source), source
    own = [
        "self._run()",
        "self._closed = True",
        "self._runtime._loop",
        "def _when(record): pass",
        "from asyncio import Handle, events\nevents.__file__",
        "import asyncio\nasyncio.get_running_loop()",
    ]
    for source in own:
        assert private_asyncio_uses(source) == [], source


@pytest.mark.parametrize("error", [ValueError("boom"), asyncio.CancelledError()])
def test_run_ready_reports_a_callbacks_error_as_handle_run_does(error: BaseException) -> None:
    """run_ready runs a handle's callback inline: its report is still Handle._run's own."""
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="outside")
    context = contextvars.copy_context()
    context.run(variable.set, "inside")
    seen: list[str] = []

    def fail(number: int) -> None:
        seen.append(f"{variable.get()} {number}")
        raise error

    by_loop, by_run_ready = stand_in(), stand_in()
    run_handle(asyncio.Handle(fail, (7,), by_loop, context))
    handle = by_run_ready.call_soon(fail, 7, context=context)
    run_ready(by_run_ready.queue)
    assert seen == ["inside 7", "inside 7"]
    [expected], [reported] = by_loop.errors, by_run_ready.errors
    assert reported["handle"] is handle
    assert handle._context is context  # (put back)
    assert reported["exception"] is error
    assert reported["message"] == expected["message"].replace(repr(by_loop), repr(by_run_ready))
    assert reported.keys() == expected.keys()
