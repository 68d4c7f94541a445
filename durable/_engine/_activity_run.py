"""One activity call on the host loop: attempts, per-attempt timeout, journaled retries.

An at_most_once attempt first appends its intent ("sched") and syncs it, so a resumed run
knows the call was in doubt. Other attempts write their intent only once they have run for
INTENT_AFTER (for readers of the journal: what is running now): an activity that finishes
sooner costs one record, its "done", which names the activity and attempt itself. A failed attempt
that will be retried journals ("retry") and syncs it before waiting, so a crash neither resets
the count nor shortens the back-off. The outcome is returned as an encoded "done" record for
the workflow driver to journal and deliver; this module never delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from .._encoding import convert, decode, encode
from .._errors import ActivityTimeout, DurableError, SerializationError, SimulatedCrash
from .._storage._interface import Journal
from . import _records as records
from ._context import current_activity
from ._specs import ActivitySpec

# A timer, not call_soon: a handle in the ready queue would keep the lone appender from
# syncing inline, costing a loop iteration per step.
INTENT_AFTER = 0.001


def call_arguments(
    spec: ActivitySpec, encoded: bytes, workflow_id: str
) -> tuple[list[Any], dict[str, Any]]:
    """A copy of a call's arguments, as a replay would see them (decoded, rebuilt).

    `encoded` is the call's [args, kwargs] as the step digested them. The activity must not
    share objects with workflow code: a mutation on either side would make the live run
    differ from a replay.
    """
    args, kwargs = decode(encoded, path=workflow_id, offset=-1)
    context = f"an argument of activity {spec.name!r}"
    types = spec.parameter_types
    args = [
        convert(value, types[index] if index < len(types) else Any, context=context)
        for index, value in enumerate(args)
    ]
    by_name = spec.keyword_types or {}
    kwargs = {
        name: convert(value, by_name.get(name, Any), context=context)
        for name, value in kwargs.items()
    }
    return args, kwargs


async def _call(spec: ActivitySpec, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if spec.is_async:
        return await spec.fn(*args, **kwargs)
    # A sync activity blocks a worker thread, never the loop; on timeout the thread is
    # abandoned (Python cannot stop it) and its late result ignored.
    return await anyio.to_thread.run_sync(
        functools.partial(spec.fn, *args, **kwargs), abandon_on_cancel=True
    )


async def _attempt(spec: ActivitySpec, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if spec.timeout is None:
        return await _call(spec, args, kwargs)
    deadline = asyncio.timeout(spec.timeout)
    try:
        async with deadline:
            return await _call(spec, args, kwargs)
    except TimeoutError as error:
        if not deadline.expired():
            raise  # the activity's own TimeoutError, not its deadline
        raise ActivityTimeout(activity=spec.name, timeout=spec.timeout) from error


async def run_activity(
    *,
    spec: ActivitySpec,
    workflow_id: str,
    generation: int = 0,
    step: int,
    digest: str,
    args: list[Any],
    kwargs: dict[str, Any],
    journal: Journal,
    first_attempt: int = 1,
    start_at: float | None = None,
    sleep_until: Callable[[float], Awaitable[None]],
    now: Callable[[], float],
) -> bytes:
    """Run attempts until one succeeds or the policy gives up; return the encoded outcome."""
    attempt = first_attempt
    if start_at is not None:
        await sleep_until(start_at)
    loop = asyncio.get_running_loop()
    while True:
        intent: asyncio.TimerHandle | None = None
        journal.check_held()  # (a runner whose lease lapsed starts no side effect)
        began = now()  # journaled with the outcome ("b"): how long each attempt ran
        if spec.at_most_once:  # durable before the effect, even against power loss
            await journal.append(_intent(spec, step, digest, attempt, began))
        else:  # made durable with the outcome, if the attempt is still running by then
            intent = loop.call_later(
                INTENT_AFTER, _write_intent, journal, (spec, step, digest, attempt), began
            )
        token = current_activity.set((workflow_id, spec.name, step, attempt, generation, now))
        try:
            if spec.is_async and spec.timeout is None:  # the common case, one frame less
                result = await spec.fn(*args, **kwargs)
            else:
                result = await _attempt(spec, args, kwargs)
            return encode(
                records.done(
                    step, spec.name, digest, attempt, now=now(), result=result, began=began
                ),
                context="its result",
                activity=spec.name,
            )
        except SerializationError as error:  # a result that cannot be journaled: not retried
            failure: BaseException = _unstorable_result(error, spec, workflow_id, step)
            retry = False
        except (KeyboardInterrupt, SystemExit):
            raise
        except asyncio.CancelledError as error:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this attempt really is being cancelled (the workflow let go of it)
            failure = error  # raised by the activity itself: a failure like any other
            retry = spec.retry.retries_after(attempt, type(error))
        except BaseException as error:  # the activity's failure, recorded
            failure = error
            retry = spec.retry.retries_after(attempt, type(error))
        finally:
            current_activity.reset(token)
            if intent is not None:
                intent.cancel()  # finished (or failed) before its intent was written: skip it
        if not retry:
            described = records.describe_error(failure)
            outcome = records.done(
                step, spec.name, digest, attempt, now=now(), error=described, began=began
            )
            return encode(outcome)
        failed_at = now()
        next_at = failed_at + spec.retry.delay_after(attempt)
        failed = records.retry(
            step,
            spec.name,
            digest,
            attempt,
            error=records.describe_error(failure),
            retry_at=next_at,
            began=began,
            now=failed_at,
        )
        await journal.append(encode(failed))
        await sleep_until(next_at)
        attempt += 1


def _unstorable_result(
    error: SerializationError, spec: ActivitySpec, workflow_id: str, step: int
) -> SerializationError:
    """The error of a result that cannot be journaled, saying that the activity did run."""
    context = (
        f"the result of activity {spec.name!r} (step {step} of workflow {workflow_id!r}), "
        "which has run: its side effects happened, yet the call fails and is not retried. "
        "Return a value the journal can hold"
    )
    unstorable = SerializationError(value_type=error.value_type, context=context)
    unstorable.activity = spec.name
    return unstorable


def _intent(spec: ActivitySpec, step: int, digest: str, attempt: int, at: float) -> bytes:
    return encode(records.scheduled(step, spec.name, digest, attempt, now=at))


def _write_intent(
    journal: Journal, attempt: tuple[ActivitySpec, int, str, int], began: float
) -> None:
    """The attempt is still running: say so in the journal (for a resume, and for readers)."""
    # A failed or closed journal: the outcome says so. A simulated crash: the test's kill
    # already stopped the run; nothing is left to tell.
    with contextlib.suppress(DurableError, SimulatedCrash):
        journal.write(_intent(*attempt, began))


def in_doubt_outcome(step: int, spec: ActivitySpec, digest: str, at: float) -> bytes:
    """The outcome of an at_most_once call a crash left undecided."""
    error: records.ErrorInfo = {
        "type": "durable.InDoubtError",
        "msg": "",
        "tb": "",
        "kind": "in-doubt",
    }
    return encode(records.done(step, spec.name, digest, 0, now=at, error=error))
