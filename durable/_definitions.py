"""@workflow and @activity: typed wrappers that keep the decorated function's signature.

Decorating registers nothing globally: a workflow is found by the Runtime it runs on (or
that lists it in `workflows=`), an activity by the workflow that awaits it.
"""

from __future__ import annotations

import inspect
import keyword
import sys
import typing
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, final, overload

from ._asyncio_private import our_running_loop
from ._durations import Duration, to_seconds
from ._engine._log_fields import durable_logger
from ._engine._loop import OrderedCall, WorkflowLoop
from ._engine._retry import RetryPolicy
from ._engine._specs import ActivitySpec, WorkflowSpec
from ._engine._steps import RecordedOutcome
from ._errors import InvalidDuration, InvalidQueue, WorkflowDefinitionError
from ._limits import Limit, limited

if TYPE_CHECKING:
    from ._engine._workflow_run import WorkflowRun

logger = durable_logger()

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRY = RetryPolicy()


def _hints(fn: Callable[..., Any]) -> tuple[tuple[Any, ...], Any]:
    """Parameter and return annotations, resolved where possible (unresolvable: Any)."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as error:  # a forward reference to a local class, say
        logger.warning(
            "cannot resolve the annotations of %s (%s): its journaled values come back as "
            "decoded (dataclasses as dicts); define the annotated types at module level",
            getattr(fn, "__qualname__", fn),
            error,
        )
        hints = {}
    parameters = [
        hints.get(parameter.name, Any)
        for parameter in inspect.signature(fn).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    return tuple(parameters), hints.get("return", Any)


def _keyword_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable: rebuild nothing (_hints logged it)
        return {}
    hints.pop("return", None)
    return hints


def _look_like(wrapper: Any, fn: Callable[..., Any], name: str) -> None:
    """Give a wrapper the function's name and docstring (for help(), logs and debuggers)."""
    wrapper.__name__ = getattr(fn, "__name__", name)
    wrapper.__qualname__ = getattr(fn, "__qualname__", name)
    wrapper.__doc__ = fn.__doc__
    wrapper.__wrapped__ = fn


def _accept_any(*args: Any, **kwargs: Any) -> None:
    """The binder of a callable whose signature cannot be read: the call itself will tell."""


def _binder(fn: Callable[..., Any]) -> Callable[..., None]:
    """A no-op function with `fn`'s parameters: calling it raises Python's own TypeError.

    Built once per activity; a call costs what calling an empty function costs (~0.1 us),
    where inspect.Signature.bind costs ~2 us on every step.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # (some builtins and C callables have none)
        return _accept_any
    empty = inspect.Parameter.empty
    bare = signature.replace(
        parameters=[
            parameter.replace(
                annotation=empty, default=empty if parameter.default is empty else None
            )
            for parameter in signature.parameters.values()
        ],
        return_annotation=empty,
    )
    name = getattr(fn, "__name__", "")
    name = name if name.isidentifier() and not keyword.iskeyword(name) else "activity"
    namespace: dict[str, Any] = {}
    exec(f"def {name}{bare}: pass", namespace)  # noqa: S102 (identifiers and None only)
    return namespace[name]  # type: ignore[no-any-return]


def _unbound(error: TypeError, activity: str, workflow_id: str) -> TypeError:
    return TypeError(
        f"{error} (activity {activity!r} called from workflow {workflow_id!r}: the "
        "arguments do not fit its signature; nothing was journaled and it is not retried)"
    )


@final
class Activity(Generic[P, R]):
    """A side effect a workflow awaits; its result is journaled and never recomputed.

    Awaited inside a workflow, the call is journaled, run on the host loop (sync functions
    in a worker thread) with the activity's timeout and retry policy, and its recorded
    outcome is delivered to the workflow. Awaited anywhere else, it just calls the function.
    """

    def __init__(self, fn: Callable[P, Any], spec: ActivitySpec) -> None:
        self.fn = fn
        self.spec = spec
        self._bind = _binder(fn)
        _look_like(self, fn, spec.name)

    @property
    def name(self) -> str:
        return self.spec.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        loop = our_running_loop()
        if not isinstance(loop, WorkflowLoop):
            return self._plain(*args, **kwargs)
        run: WorkflowRun = loop.owner  # type: ignore[assignment]
        # In workflow code: a coroutine that hashes in call order, so sets of calls replay.
        if loop.replaying:  # (a recorded step: its records name its call site already)
            step = self._step(run, args, kwargs, None, 0)
        else:
            caller = sys._getframe(1)  # (the call site, journaled with the step)
            step = self._step(run, args, kwargs, caller, caller.f_lasti)
        return OrderedCall((step, next(loop.orders)))

    async def _plain(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.spec.is_async:
            return await self.fn(*args, **kwargs)  # type: ignore[no-any-return]
        return self.fn(*args, **kwargs)  # type: ignore[no-any-return]

    async def _step(
        self,
        run: WorkflowRun,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        caller: FrameType | None,
        offset: int,
    ) -> R:
        try:
            self._bind(*args, **kwargs)  # a call that does not bind is never journaled
        except TypeError as error:
            raise _unbound(error, self.spec.name, run.workflow_id) from None
        outcome = run.request_activity(self.spec, args, kwargs, caller, offset)
        # The lines that raise an activity's failure end the workflow's traceback (shown by
        # run(), `durable show`, the web UI): they say what happened, in words.
        if isinstance(outcome, RecordedOutcome):  # replay, nothing else to run: no suspension
            if outcome.error is not None:
                raise outcome.error  # the activity failed for good: ActivityError (or InDoubtError)
            replayed: R = outcome.value
            return replayed
        result: R = await outcome  # its result; or ActivityError (InDoubtError): it failed for good
        return result

    def __repr__(self) -> str:
        return f"<durable activity {self.spec.name!r}>"


@final
class Workflow(Generic[P, R]):
    """An async function run durably by `durable.run` / `Runtime.run` over its journal.

    Calling it directly returns the plain coroutine (no journal), which is handy in tests.
    """

    def __init__(self, fn: Callable[P, Coroutine[Any, Any, R]], spec: WorkflowSpec) -> None:
        self.fn = fn
        self.spec = spec
        _look_like(self, fn, spec.name)

    @property
    def name(self) -> str:
        return self.spec.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<durable workflow {self.spec.name!r}>"


@overload
def workflow(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *, name: str | None = None, execution_timeout: Duration | None = None
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]: ...
def workflow(
    fn: Any = None, /, *, name: str | None = None, execution_timeout: Duration | None = None
) -> Any:
    """Make an async function a durable workflow.

    The function is the business process: deterministic code that awaits activities,
    timers and events. After a crash it runs again from the top and its journal answers
    every step it recorded (see the docs' "Determinism" page for what it may do).

    ```python
    @durable.workflow(execution_timeout="1 day")
    async def order_workflow(order: Order) -> str:
        payment_id = await charge_payment(order)
        await durable.sleep("2 hours")
        return await create_shipment(order, payment_id)
    ```

    Args:
        fn: the workflow function (`async def`); its positional arguments are journaled.
        name: the name its journals record (default: the function's __qualname__). Renaming
            a workflow orphans its unfinished journals; pass the old name to keep them.
        execution_timeout: how long a run may take, from its start (seconds, timedelta or
            "2 hours"; default None: no limit). Its start record journals the deadline, so
            restarts do not extend it, and continue_as_new keeps it (the limit spans the
            chain, as Temporal's). When it passes the runtime cancels the workflow (and so
            its children); its result raises WorkflowTimedOut. run()/start() may override it.

    Raises:
        WorkflowDefinitionError: `fn` is not an async function.
        InvalidDuration: `execution_timeout` is not a duration.
    """
    timeout = execution_timeout_seconds(execution_timeout)

    def decorate(function: Callable[P, Coroutine[Any, Any, R]]) -> Workflow[P, R]:
        if not inspect.iscoroutinefunction(function):
            raise WorkflowDefinitionError(
                f"@durable.workflow needs an `async def` function; {function!r} is not one. "
                "Write the workflow as `async def` (blocking work belongs in activities)"
            )
        parameters, returns = _hints(function)
        spec = WorkflowSpec(
            name=name or function.__qualname__,
            fn=function,
            parameter_types=parameters,
            return_type=returns,
            execution_timeout=timeout,
        )
        return Workflow(function, spec)

    return decorate(fn) if fn is not None else decorate


def execution_timeout_seconds(value: Duration | None) -> float | None:
    """An execution_timeout in seconds (None: no limit).

    Raises:
        InvalidDuration: not a duration, or zero (a workflow cancelled before it starts).
    """
    if value is None:
        return None
    seconds = to_seconds(value, what="execution_timeout")
    if seconds <= 0:
        raise InvalidDuration(
            f"execution_timeout must be longer than zero, not {value!r}; None means no limit"
        )
    return seconds


class _Omitted:
    """Default for `timeout`: no per-attempt timeout unless one is given."""

    def __repr__(self) -> str:
        return "OMITTED"


OMITTED = _Omitted()


@final
class ActivityDecorator:
    """@durable.activity(...) with options: applies them to the decorated function."""

    def __init__(
        self,
        *,
        name: str | None,
        timeout: Duration | _Omitted | None,
        retry: RetryPolicy | None,
        at_most_once: bool,
        limit: Limit | None = None,
    ) -> None:
        if limit is not None and not isinstance(limit, Limit):
            raise InvalidQueue(
                queue=str(name), option="limit", value=limit, expected="a durable.Limit"
            )
        self._limit = limit
        self._name = name
        self._timeout = (
            None
            if isinstance(timeout, _Omitted) or timeout is None
            else to_seconds(timeout, what="timeout")
        )
        self._retry = retry if retry is not None else DEFAULT_RETRY
        self._at_most_once = at_most_once

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Activity[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Activity[P, R]: ...
    def __call__(self, fn: Callable[P, Any], /) -> Activity[P, Any]:
        if not callable(fn) or isinstance(fn, Activity | Workflow):
            raise WorkflowDefinitionError(
                f"@durable.activity decorates a plain function (sync or async), not {fn!r}"
            )
        parameters, returns = _hints(fn)
        is_async = inspect.iscoroutinefunction(fn)
        run = fn if self._limit is None else limited(fn, is_async, self._limit)
        spec = ActivitySpec(
            name=self._name or str(getattr(fn, "__qualname__", repr(fn))),
            fn=run,
            is_async=is_async or self._limit is not None,
            timeout=self._timeout,
            retry=self._retry,
            at_most_once=self._at_most_once,
            return_type=returns,
            parameter_types=parameters,
            keyword_types=_keyword_hints(fn),
        )
        return Activity(fn, spec)


@overload
def activity(fn: Callable[P, Awaitable[R]], /) -> Activity[P, R]: ...
@overload
def activity(fn: Callable[P, R], /) -> Activity[P, R]: ...
@overload
def activity(
    *,
    name: str | None = None,
    timeout: Duration | None = None,
    retry: RetryPolicy | None = None,
    at_most_once: bool = False,
    limit: Limit | None = None,
) -> ActivityDecorator: ...
def activity(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    timeout: Duration | _Omitted | None = OMITTED,
    retry: RetryPolicy | None = None,
    at_most_once: bool = False,
    limit: Limit | None = None,
) -> Any:
    """Make a function (sync or async) an activity: a journaled side effect.

    Its result is journaled before the workflow sees it, so a recorded call never runs
    again; a call a crash interrupted runs again with the same idempotency key (at least
    once), unless `at_most_once`.

    ```python
    @durable.activity(timeout="30s", retry=durable.RetryPolicy(maximum_attempts=5))
    async def charge_payment(order: Order) -> str:
        key = durable.activity_info().idempotency_key  # the same on every attempt
        return (await payments.charge(order, idempotency_key=key)).id
    ```

    Args:
        fn: the function; sync ones run in a worker thread.
        name: the name journals record (default: the function's __qualname__).
        timeout: start-to-close limit of each attempt (seconds, timedelta or "30s");
            default none.
        retry: the RetryPolicy (default RetryPolicy(): 3 attempts, 1 s then 2 s back-off).
        at_most_once: journal the intent durably before each attempt, and after a crash
            raise InDoubtError in the workflow instead of running an undecided call again.
        limit: a durable.Limit shared with other activities: each attempt waits for it
            (within its timeout) before calling the function; it holds across every
            workflow, runtime and process sharing the journal directory (within the
            process on other stores).
    """
    decorator = ActivityDecorator(
        name=name, timeout=timeout, retry=retry, at_most_once=at_most_once, limit=limit
    )
    return decorator(fn) if fn is not None else decorator
