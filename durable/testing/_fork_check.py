"""The fork check: finished workflows' recorded inputs re-run through the current code.

Where the replay check (`replay_directory`) stops at a journal's first divergence, this
runs a sample of finished workflows again, from their recorded arguments, with the
current code, in a TestRuntime on a temporary directory (virtual time): every activity is
replaced by its recorded outcome at that step (nothing real runs), recorded events are
sent to it in their order, and every divergence is reported with its step and call site: a
step calling another activity (that path stops there: its activity fails), or the same
activity with other arguments (it gets the recorded result and goes on), a step the
journal never recorded, and a final result other than the recorded one (the first
difference). A failed step's recorded error comes back as a RecordedFailure naming the
original type. Cancelled workflows are skipped: the moment their cancellation reached
them cannot be re-run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._definitions import Workflow
from .._encoding import convert, decode, encode
from .._engine import _records as records
from .._engine._context import current_activity
from .._engine._outcomes import first_difference
from .._engine._replay import activity_description, digest_of
from .._engine._retry import RetryPolicy
from .._engine._set_aside import as_replayed, ending
from .._engine._specs import ActivitySpec
from .._errors import DurableError, SerializationError, WorkflowCancelled, WorkflowFailed
from .._storage._directory import JournalDirectory
from ._test_runtime import TestRuntime

_PACKAGE = str(Path(__file__).resolve().parents[1]) + os.sep
_ASYNCIO = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep


class RecordedFailure(Exception):
    """A step's recorded failure, raised again by the fork check (`type` names the original)."""


@dataclass(frozen=True)
class Divergence:
    """One place where the current code does not do what the journal recorded."""

    step: int
    recorded: str
    requested: str
    call_site: str

    def __str__(self) -> str:
        return (
            f"step {self.step}: recorded {self.recorded}, the code asks for {self.requested} "
            f"at {self.call_site}"
        )


@dataclass(frozen=True)
class ForkCheckResult:
    """The verdict on one finished workflow: its divergences (none: ok), or why skipped."""

    workflow_id: str
    workflow_name: str
    divergences: list[Divergence] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.divergences and self.skipped is None

    def __str__(self) -> str:
        if self.skipped is not None:
            return f"{self.workflow_id}: skipped ({self.skipped})"
        if not self.divergences:
            return f"{self.workflow_id}: ok"
        return f"{self.workflow_id}: " + "; ".join(str(found) for found in self.divergences)


class _Recorded:
    """One journal's recorded steps, and what the re-run found against them."""

    def __init__(self, workflow_id: str, journal: list[records.Record]) -> None:
        self.workflow_id = workflow_id
        self.steps: dict[int, records.Record] = {}  # step -> its first record naming it
        self.outcomes: dict[int, records.Record] = {}  # step -> its "done"
        for record in journal[1:]:
            if record["k"] in (records.SCHEDULED, records.RETRY, records.DONE) and "a" in record:
                self.steps.setdefault(record["s"], record)
                if record["k"] == records.DONE:
                    self.outcomes[record["s"]] = record
        self.divergences: dict[int, Divergence] = {}
        self.runtime: TestRuntime | None = None

    def stand_in(self, spec: ActivitySpec) -> ActivitySpec:
        """`spec` with its recorded outcome instead of its function, tried once."""

        async def recorded_outcome(*args: Any, **kwargs: Any) -> Any:
            now = current_activity.get()
            assert now is not None  # (an activity's own context: the engine sets it)
            workflow_id, step = now[0], now[2]
            if workflow_id != self.workflow_id:
                self._diverged(step, "no such run", f"a child run {workflow_id!r}")
                raise RecordedFailure("the fork check re-runs no child workflow")
            asked = activity_description(spec.name, _digest(args, kwargs))
            first = self.steps.get(step)
            if first is None:
                self._diverged(step, f"no step {step}", asked)
                raise RecordedFailure(f"the journal recorded no step {step}")
            if first["a"] != spec.name:
                self._diverged(step, activity_description(first["a"], first["d"]), asked)
                raise RecordedFailure(f"the journal recorded {first['a']!r} at step {step}")
            if first["d"] != _digest(args, kwargs):
                self._diverged(step, activity_description(first["a"], first["d"]), asked)
            done = self.outcomes.get(step)
            if done is None or "e" in done:
                error = done["e"] if done is not None else {"type": "?", "msg": "no outcome"}
                raise RecordedFailure(f"{error['type']}: {error['msg']}")
            return convert(done["r"], spec.return_type)

        return dataclasses.replace(
            spec, fn=recorded_outcome, is_async=True, retry=RetryPolicy(maximum_attempts=1)
        )

    def _diverged(self, step: int, recorded: str, requested: str) -> None:
        if step not in self.divergences:
            self.divergences[step] = Divergence(step, recorded, requested, self._call_site())

    def _call_site(self) -> str:
        """file:line where the workflow awaits now (its main task's innermost user frame)."""
        run = self.runtime._runs.get(self.workflow_id) if self.runtime is not None else None
        main = run._life.main if run is not None else None
        site = "<unknown: the call is in a task of the workflow>"
        awaited: Any = main.get_coro() if main is not None else None
        while awaited is not None and hasattr(awaited, "cr_frame"):
            frame = awaited.cr_frame
            if frame is not None and not frame.f_code.co_filename.startswith((_PACKAGE, _ASYNCIO)):
                site = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            awaited = awaited.cr_await
        return site


def _digest(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    try:
        return digest_of(encode([list(args), kwargs]))
    except SerializationError:
        return "(arguments that cannot be journaled)"


async def check_one(
    workflow: Workflow[..., Any], workflow_id: str, journal: list[records.Record]
) -> ForkCheckResult:
    """Re-run one finished journal's arguments through `workflow`'s code (see the module)."""
    journal = as_replayed(journal, path=workflow_id)
    end = ending(journal)
    if end is None or "cont" in end:
        return ForkCheckResult(workflow_id, workflow.name, skipped="not finished")
    if end.get("c"):
        return ForkCheckResult(workflow_id, workflow.name, skipped="cancelled")
    recorded = _Recorded(workflow_id, journal)
    events = [record for record in journal if record["k"] == records.EVENT]
    with tempfile.TemporaryDirectory(prefix="durable-fork-check-") as scratch:
        async with TestRuntime(scratch, start_time=journal[0]["t"]) as runtime:
            recorded.runtime = runtime
            runtime._doubles.fallback = recorded.stand_in
            arguments = journal[0]["args"]
            handle = await runtime.start(workflow, *arguments, id=workflow_id, attach=True)
            for event in events:
                await runtime.send_event(workflow_id, event["n"], event["p"])
            outcome: Any
            try:
                outcome = ("result", await asyncio.wait_for(handle.result(), 60))
            except WorkflowFailed as failed:
                outcome = ("failed", type(failed.__cause__).__name__)
            except (WorkflowCancelled, TimeoutError) as other:
                outcome = ("stopped", type(other).__name__)
    divergences = [recorded.divergences[step] for step in sorted(recorded.divergences)]
    difference = _ending_difference(end, outcome)
    if difference is not None:
        divergences.append(Divergence(len(recorded.steps), *difference, "the workflow's return"))
    return ForkCheckResult(workflow_id, workflow.name, divergences)


def _ending_difference(end: records.Record, outcome: tuple[str, Any]) -> tuple[str, str] | None:
    how, value = outcome
    if "e" in end:
        recorded = str(end["e"].get("type", "?")).rsplit(".", 1)[-1]
        if how == "failed":
            return None  # (failed again: the recorded error's type may come back rebuilt)
        return f"a failure ({recorded})", f"the workflow to end another way ({how})"
    if how != "result":
        return "a result", f"the workflow to end another way ({how}: {value})"
    try:
        replayed = decode(encode(value), path="", offset=0)
    except SerializationError as error:
        return "a result", f"a result that cannot be journaled ({error})"
    found = first_difference(end["r"], replayed)
    return None if found is None else ("the workflow's result", f"another one: {found}")


async def fork_check_directory(
    directory: str | os.PathLike[str],
    workflows: Iterable[Workflow[..., Any]],
    *,
    sample: int = 20,
    seed: int = 0,
) -> list[ForkCheckResult]:
    """The fork check on up to `sample` finished journals of `directory` (chosen by `seed`).

    Journals of workflows not in `workflows` are not sampled.
    """
    known = {workflow.name: workflow for workflow in workflows}
    finished: list[tuple[str, list[records.Record]]] = []
    async with JournalDirectory(directory) as store:
        for workflow_id in await store.list():
            try:
                stored = await store.read(workflow_id)
                journal = records.read_journal(stored, path=store.location(workflow_id))
            except DurableError:
                continue  # (the replay check reports unreadable journals)
            end = ending(journal) if journal else None
            if end is not None and "cont" not in end and journal[0]["wf"] in known:
                finished.append((workflow_id, journal))
    chosen = random.Random(seed).sample(finished, min(sample, len(finished)))
    results = []
    for workflow_id, journal in sorted(chosen, key=lambda pair: pair[0]):
        results.append(await check_one(known[journal[0]["wf"]], workflow_id, journal))
    return results
