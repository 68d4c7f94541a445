"""Recorded outcomes as workflow code and callers see them: values rebuilt, errors raised.

Pure functions of a record and a spec: the same record gives the same value or error on
every replay, in whatever process reads it. And how a run ends, as a value its runtime
matches on (Finished, Suspended, ContinuedAsNew): exceptions out of a run are errors only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._encoding import convert
from .._errors import (
    ActivityError,
    ChildIdInUse,
    DurableError,
    InDoubtError,
    SerializationError,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowTimedOut,
)
from . import _records as records
from ._specs import ActivitySpec, WorkflowSpec
from ._steps import ContinueAsNew


def rebuild(value: Any, spec: ActivitySpec) -> Any:
    """A recorded result as the activity's return annotation says (dataclasses, ...)."""
    try:
        return convert(value, spec.return_type)
    except SerializationError:  # again, with the message naming the activity
        return convert(value, spec.return_type, context=f"the result of {spec.name!r}")


def step_error(
    workflow_id: str, spec: ActivitySpec, step: int, event: dict[str, Any]
) -> DurableError:
    """The exception a recorded failed step raises in workflow code."""
    return recorded_error(workflow_id, spec.name, step, event)


def recorded_error(
    workflow_id: str, activity: str, step: int, event: Mapping[str, Any]
) -> DurableError:
    """step_error() by the activity's name (readers of a journal have no spec)."""
    error = event["e"]
    kind = error.get("kind")
    if kind == "in-doubt":
        return InDoubtError(workflow_id=workflow_id, activity=activity, position=step)
    if kind == "child-cancelled":
        return WorkflowCancelled(workflow_id=error["id"], reason=error["msg"])
    if kind == "child-id-in-use":
        return ChildIdInUse(
            workflow_id=error["id"],
            parent=workflow_id,
            recorded=error.get("was", ""),
            given=error.get("asked", ""),
            step=step,
            call_site=error.get("site", ""),
        )
    if kind == "child":
        return WorkflowFailed(
            workflow_id=error["id"],
            error_type=error["type"],
            message=error["msg"],
            traceback=error.get("tb", ""),
        )
    return ActivityError(
        workflow_id=workflow_id,
        activity=activity,
        attempts=event.get("n", 0),
        error_type=error["type"],
        message=error["msg"],
        traceback=error.get("tb", ""),
    )


@dataclass(frozen=True, slots=True)
class Finished:
    """The workflow ended (in this run or an earlier one): its result, or why not.

    `error` is what run() and result() raise: WorkflowFailed, or WorkflowCancelled
    (WorkflowTimedOut), its __cause__ the workflow's own exception when it ended here.
    """

    result: Any = None
    error: DurableError | None = None

    def unwrap(self) -> Any:
        """The result; the error raised."""
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def how(self) -> str:
        """How it ended: "completed", "failed" or "cancelled" (as the journal's end says)."""
        if self.error is None:
            return "completed"
        return "cancelled" if isinstance(self.error, WorkflowCancelled) else "failed"

    @classmethod
    def of(
        cls,
        workflow_id: str,
        spec: WorkflowSpec,
        end: Mapping[str, Any],
        cause: BaseException | None,
    ) -> Finished:
        """From a final end record; `cause`: the code's own exception, when it ended here."""
        if "e" not in end:
            context = f"the result of workflow {spec.name!r}"
            return cls(convert(end["r"], spec.return_type, context=context))
        error = end["e"]
        failed: DurableError
        if end.get("c"):
            cancelled = (
                WorkflowTimedOut if error.get("kind") == records.TIMED_OUT else WorkflowCancelled
            )
            failed = cancelled(workflow_id=workflow_id, reason=error["msg"])
        else:
            failed = WorkflowFailed(
                workflow_id=workflow_id,
                error_type=error["type"],
                message=error["msg"],
                traceback=error.get("tb", ""),
            )
        failed.__cause__ = cause  # (as `raise failed from cause` does, for when it is raised)
        return cls(error=failed)


@dataclass(frozen=True, slots=True)
class Suspended:
    """The workflow only sleeps, until `wake_at` (inf: a message): resume it from its journal then.

    Its timers are durable and its journal says everything: while it sleeps it needs no
    loop, task or memory beyond the runtime's wait. `inbox_next`: the first inbox message
    it has not taken (a message from there on wakes it).
    """

    wake_at: float
    inbox_next: int


@dataclass(frozen=True, slots=True)
class ContinuedAsNew:
    """A generation ended with continue_as_new (`end{cont}` journaled): start the next one.

    `inbox_next`: the first inbox message not delivered; `carried`: events delivered and
    not taken, as [name, payload] (the next start record's `q` and `carry`).
    """

    arguments: list[Any]
    generation: int
    inbox_next: int = 0
    carried: list[list[Any]] = field(default_factory=list)

    @classmethod
    def of(cls, end: Mapping[str, Any], generation: int) -> ContinuedAsNew:
        """From generation `generation`'s `end{cont}` record."""
        return cls(end["cont"], generation, end.get("q", 0), end.get("carry", []))


RunOutcome = Finished | Suspended | ContinuedAsNew  # how WorkflowRun.execute() ends


def final_outcome(
    workflow_id: str, spec: WorkflowSpec, end: Mapping[str, Any], cause: BaseException | None
) -> Any:
    """A workflow's result from its end record; raises its recorded failure."""
    return Finished.of(workflow_id, spec, end, cause).unwrap()


def end_of_failure(
    error: BaseException, *, cancelled: bool, now: float, timed_out: bool = False
) -> records.EndRecord:
    """The end record of a workflow that raised (or was cancelled; by its deadline: timed_out)."""
    described = records.describe_error(error, kind=records.TIMED_OUT if timed_out else None)
    return records.end_failure(described, now, cancelled=cancelled)


def ending_of(end: dict[str, Any]) -> str:
    """How a recorded `end` ended, in words (for replay verification's reports)."""
    if "cont" in end:
        return "continued as new"
    if end.get("c"):
        return "was cancelled"
    if "e" in end:
        return f"failed with {end['e'].get('type', 'an error')}"
    return "completed"


def ending_of_task(main: asyncio.Task[Any]) -> str:
    """How the code's main task ended, in the words of ending_of()."""
    if main.cancelled():
        return "was cancelled"
    error = main.exception()
    if error is None:
        return "completed"
    if isinstance(error, ContinueAsNew):
        return "continued as new"
    if isinstance(error, asyncio.CancelledError):
        return "was cancelled"
    return f"failed with {records.describe_error(error)['type']}"


def first_difference(  # noqa: PLR0911 (a return a case)
    recorded: Any, replayed: Any, where: str = "result"
) -> str | None:
    """Where two decoded values (journal shapes: maps, lists, scalars) first differ, in words.

    None if they are equal. Maps are compared key by key (sorted), lists item by item.
    """
    if type(recorded) is not type(replayed) and not (
        isinstance(recorded, int | float) and isinstance(replayed, int | float)
    ):
        return f"{where}: recorded {_brief(recorded)}, replayed {_brief(replayed)}"
    if isinstance(recorded, dict):
        for key in sorted(set(recorded) | set(replayed), key=repr):
            if key not in recorded or key not in replayed:
                side = "replayed" if key not in recorded else "recorded"
                return f"{where}[{key!r}]: only the {side} result has it"
            found = first_difference(recorded[key], replayed[key], f"{where}[{key!r}]")
            if found is not None:
                return found
        return None
    if isinstance(recorded, list):
        for index, (old, new) in enumerate(zip(recorded, replayed, strict=False)):
            found = first_difference(old, new, f"{where}[{index}]")
            if found is not None:
                return found
        if len(recorded) != len(replayed):
            return f"{where}: recorded {len(recorded)} items, replayed {len(replayed)}"
        return None
    if recorded == replayed or _both_nan(recorded, replayed):
        return None
    if isinstance(recorded, str | bytes) and max(len(recorded), len(replayed)) > _BRIEF:
        return _text_difference(recorded, replayed, where)
    return f"{where}: recorded {_brief(recorded)}, replayed {_brief(replayed)}"


_BRIEF = 80  # characters of a value shown in a difference


def _text_difference(recorded: Any, replayed: Any, where: str) -> str:
    """Long text or bytes that differ: where they first do, and a piece of each from there."""
    at = next(
        (i for i, (old, new) in enumerate(zip(recorded, replayed, strict=False)) if old != new),
        min(len(recorded), len(replayed)),
    )
    start = max(0, at - 10)
    return (
        f"{where}: first differs at index {at} (of {len(recorded)} recorded, "
        f"{len(replayed)} replayed): recorded ...{_brief(recorded[start : at + 30])}, "
        f"replayed ...{_brief(replayed[start : at + 30])}"
    )


def _both_nan(recorded: Any, replayed: Any) -> bool:
    """NaN (float or Decimal) on both sides: the same value, though NaN != NaN."""
    return bool(recorded != recorded and replayed != replayed)  # noqa: PLR0124 (NaN)


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _BRIEF else f"{text[: _BRIEF - 3]}..."
