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
import types
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any

import anyio.to_thread

from .._encoding import PlainPacker, convert, decode, encode
from .._errors import ActivityTimeout, DurableError, SerializationError, SimulatedCrash
from .._storage._interface import Journal
from . import _records as records
from ._context import current_activity
from ._lease_watch import LeaseWatch
from ._observer import AttemptScope, RunObserver
from ._specs import ActivitySpec

# A timer, not call_soon: a handle in the ready queue would keep the lone appender from
# syncing inline, costing a loop iteration per step.
INTENT_AFTER = 0.001

# Values that decode to an equal value of the same type and that nobody can mutate: an
# activity may be handed the workflow's own (no copy), and a result of these reaches the
# workflow without decoding its record again.
IMMUTABLE_PLAIN = frozenset({int, float, str, bytes, bool, type(None)})

Outcome = tuple[bytes, dict[str, Any] | None]
"""An outcome to journal: its encoded record, and the record itself when it is safe to
deliver as it is (else None: the workflow gets it decoded from the bytes, as a replay)."""


def shareable(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether every argument is an immutable plain value (the activity may share them)."""
    for value in args:  # (loops, not all(): no generator on the step's path)
        if type(value) not in IMMUTABLE_PLAIN:
            return False
    for value in kwargs.values():  # noqa: SIM110
        if type(value) not in IMMUTABLE_PLAIN:
            return False
    return True


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


async def _call(spec: ActivitySpec, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    if spec.is_async:
        return await spec.fn(*args, **kwargs)
    # A sync activity blocks a worker thread, never the loop; on timeout the thread is
    # abandoned (Python cannot stop it) and its late result ignored.
    return await anyio.to_thread.run_sync(
        functools.partial(spec.fn, *args, **kwargs), abandon_on_cancel=True
    )


async def _attempt(spec: ActivitySpec, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
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


async def run_activity(  # noqa: PLR0915 (each attempt in this one frame: the step's path)
    *,
    spec: ActivitySpec,
    workflow_id: str,
    generation: int = 0,
    step: int,
    digest: str,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    journal: Journal,
    first_attempt: int = 1,
    start_at: float | None = None,
    sleep_until: Callable[[float], Awaitable[None]],
    now: Callable[[], float],
    packer: PlainPacker | None = None,
    site: records.Site | None = None,
    observer: RunObserver | None = None,
) -> Outcome:
    """Run attempts until one succeeds or the policy gives up; return the outcome.

    `packer`: the run's (encodes a plain record without building a msgpack Packer).
    `site`: the call site's number, on every record of the step. `observer`: the run's,
    told of each attempt, which runs inside the scope it returns (None: not observed).
    """
    attempt = first_attempt
    if start_at is not None:
        await sleep_until(start_at)
    while True:
        intent: asyncio.TimerHandle | None = None
        watch: LeaseWatch | None = None
        journal.check_held()  # (a runner whose lease lapsed starts no side effect)
        held_until = journal.held_until  # (None: held as long as it is open, a file's lock)
        began = now()  # journaled with the outcome ("b"): how long each attempt ran
        if spec.at_most_once:  # durable before the effect, even against power loss
            await journal.append(_intent((spec, step, digest, attempt, site), began))
            journal.check_held()  # (the lease may have lapsed while the commit waited)
            held_until = journal.held_until
        token = current_activity.set((workflow_id, spec.name, step, attempt, generation, now))
        scope: AttemptScope | None = None
        if observer is not None:
            scope = observer.attempt_began(spec.name, step, attempt)
        try:
            if spec.is_async and spec.timeout is None:  # the common case, one frame less
                calling = spec.fn(*args, **kwargs)
                if type(calling) is not types.CoroutineType:
                    if held_until is not None:
                        watch = LeaseWatch(
                            journal, held_until, (workflow_id, spec.name, step, attempt)
                        )
                    result = await calling
                else:
                    try:  # its first stretch, here: one that never suspends needs no intent
                        suspended = calling.send(None)
                    except StopIteration as returned:
                        result = returned.value
                    else:
                        if not spec.at_most_once:
                            intent = _intent_later(
                                journal, (spec, step, digest, attempt, site), began
                            )
                        if held_until is not None:
                            watch = LeaseWatch(
                                journal, held_until, (workflow_id, spec.name, step, attempt)
                            )
                        result = await _go_on(calling, suspended)
            else:
                if not spec.at_most_once:  # durable with the outcome, if still running then
                    intent = _intent_later(journal, (spec, step, digest, attempt, site), began)
                if held_until is not None:
                    watch = LeaseWatch(journal, held_until, (workflow_id, spec.name, step, attempt))
                result = await _attempt(spec, args, kwargs)
            record = records.done(
                step, spec.name, digest, attempt, now=now(), result=result, began=began, site=site
            )
            succeeded = _succeeded(record, result, spec, packer)
            if scope is not None:
                scope.ended("completed")
                scope = None
            return succeeded
        except SerializationError as error:
            if error.stream is None:  # a result that cannot be journaled: not retried
                failure: BaseException = _unstorable_result(error, spec, workflow_id, step)
                retry = False
            else:  # a stream value the activity appended: a failure like any other
                failure = error
                retry = spec.retry.retries_after(attempt, type(error))
        except (KeyboardInterrupt, SystemExit):
            raise
        except asyncio.CancelledError as error:
            task = asyncio.current_task()
            lost = watch.disarm() if watch is not None else None
            watch = None
            if lost is not None and task is not None and not task.cancelling():
                if scope is not None:  # the watch's alone: the lease may have lapsed
                    scope.ended("cancelled", error)
                    scope = None
                raise lost from error  # (JournalFenced: the run stops, claimed again if free)
            if task is not None and task.cancelling():
                if scope is not None:
                    scope.ended("cancelled", error)
                    scope = None
                raise  # this attempt really is being cancelled (the workflow let go of it)
            failure = error  # raised by the activity itself: a failure like any other
            retry = spec.retry.retries_after(attempt, type(error))
        except BaseException as error:  # the activity's failure, recorded
            failure = error
            retry = spec.retry.retries_after(attempt, type(error))
        finally:
            current_activity.reset(token)
            if watch is not None:
                watch.disarm()
            if intent is not None:
                intent.cancel()  # finished (or failed) before its intent was written: skip it
        if scope is not None:
            scope.ended("retrying" if retry else "failed", failure)
        if not retry:
            described = records.describe_error(failure)
            outcome = records.done(
                step, spec.name, digest, attempt, now=now(), error=described, began=began, site=site
            )
            return encode(outcome), None
        next_at = await _journal_retry(
            journal,
            spec,
            step,
            digest,
            attempt,
            failure=failure,
            began=began,
            now=now(),
            site=site,
        )
        await sleep_until(next_at)
        attempt += 1


async def _journal_retry(
    journal: Journal,
    spec: ActivitySpec,
    step: int,
    digest: str,
    attempt: int,
    *,
    failure: BaseException,
    began: float,
    now: float,
    site: records.Site | None = None,
) -> float:
    """Journal (durably) that a failed attempt is retried; when the next attempt starts."""
    next_at = now + spec.retry.delay_after(attempt)
    failed = records.retry(
        step,
        spec.name,
        digest,
        attempt,
        error=records.describe_error(failure),
        retry_at=next_at,
        began=began,
        now=now,
        site=site,
    )
    await journal.append(encode(failed))
    return next_at


def _intent_later(
    journal: Journal,
    attempt: tuple[ActivitySpec, int, str, int, records.Site | None],
    began: float,
) -> asyncio.TimerHandle:
    """Journal the attempt's intent if it still runs after INTENT_AFTER (for readers).

    Armed only once an attempt suspends: one that returns from its first stretch has run
    on the loop's thread all along, where no timer could have fired meanwhile anyway. The
    loop is looked up here, not per attempt (on 3.11 that lookup is a system call).
    """
    return asyncio.get_running_loop().call_later(
        INTENT_AFTER, _write_intent, journal, attempt, began
    )


def _succeeded(
    record: records.DoneRecord, result: Any, spec: ActivitySpec, packer: PlainPacker | None
) -> Outcome:
    """The outcome of an attempt that returned `result` (its "done" `record`)."""
    payload = packer.pack(record) if packer is not None else None
    if payload is None:
        return encode(record, context="its result", activity=spec.name), None
    # (no cast(): with its dict[str, Any], that is two calls per step)
    return payload, record if type(result) in IMMUTABLE_PLAIN else None  # type: ignore[return-value]


@types.coroutine
def _go_on(
    coroutine: types.CoroutineType[Any, Any, Any], suspended: Any
) -> Generator[Any, Any, Any]:
    """Await the rest of `coroutine`, already run to its first suspension (`suspended`).

    What `await` does after its first step (PEP 380's delegation): what the task sends or
    throws goes into the coroutine, what it yields goes out to the task.
    """
    while True:
        try:
            sent = yield suspended
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as thrown:  # (a cancellation, most likely)
            try:
                suspended = coroutine.throw(thrown)
            except StopIteration as returned:
                return returned.value
        else:
            try:
                suspended = coroutine.send(sent)
            except StopIteration as returned:
                return returned.value


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


def _intent(attempt: tuple[ActivitySpec, int, str, int, records.Site | None], at: float) -> bytes:
    """The "sched" of an attempt: (spec, step, digest, attempt number, call site)."""
    spec, step, digest, number, site = attempt
    return encode(records.scheduled(step, spec.name, digest, number, now=at, site=site))


def _write_intent(
    journal: Journal, attempt: tuple[ActivitySpec, int, str, int, records.Site | None], began: float
) -> None:
    """The attempt is still running: say so in the journal (for a resume, and for readers)."""
    # A failed or closed journal: the outcome says so. A simulated crash: the test's kill
    # already stopped the run; nothing is left to tell.
    with contextlib.suppress(DurableError, SimulatedCrash):
        journal.write(_intent(attempt, began))


def in_doubt_outcome(step: int, spec: ActivitySpec, digest: str, at: float) -> bytes:
    """The outcome of an at_most_once call a crash left undecided."""
    error: records.ErrorInfo = {
        "type": "durable.InDoubtError",
        "msg": "",
        "tb": "",
        "kind": "in-doubt",
    }
    return encode(records.done(step, spec.name, digest, 0, now=at, error=error))
