"""Runtime.resume / restart / fork (a mixin): an operator's actions on one ended workflow.

The Runtime provides what is declared here (its store, clock, registry, running tasks, and
how it starts a run); the actions themselves are `_actions` (store I/O) over `_plans`
(what to write, pure) and `_checks` (the replay check with the current code). After an
action the run it made is started here when this runtime knows the workflow's code, as
start() would; otherwise the handle follows it (a runtime with the code runs it: recover(),
serve(), or run()/start() of the id).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import Mapping
from typing import Any, Protocol

from .._definitions import Workflow
from .._engine._clock import Clock
from .._engine._describe import WorkflowDescription
from .._errors import ActionRefused, InvalidOverride, WorkflowNotFound
from .._storage._interface import JournalStore
from . import _actions
from ._checks import check_replays
from ._plans import FORK, RESTART, plan_fork, plan_restart


class RunHandle(Protocol):
    """What resume/restart/fork return: the run's handle.

    A WorkflowHandle (whose module is the layer above); its outcome's type is not known
    from an id, so result() is Any.
    """

    id: str

    def done(self) -> bool: ...

    async def result(self) -> Any: ...

    async def describe(self) -> WorkflowDescription: ...

    async def send_event(
        self, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool: ...

    async def cancel(self, reason: str = "cancelled") -> None: ...


def default_by() -> str:
    """Who asked, when the caller does not say: user@host (pid), as a journal keeps it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # (no name for this uid, in a container say)
        user = "?"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


class Operating:
    """resume(), restart() and fork() for Runtime (which provides what is declared here)."""

    _store: JournalStore
    _workflows: dict[str, Workflow[..., Any]]
    _running: dict[str, asyncio.Task[Any]]
    _clock: Clock

    def _check_id(self, workflow_id: str) -> None:
        raise NotImplementedError

    async def _start(
        self, definition: Workflow[..., Any], workflow_id: str, arguments: list[Any] | None
    ) -> Any:  # (a WorkflowHandle: _runtime is the layer above)
        raise NotImplementedError

    def _handle_of(self, workflow_id: str, task: asyncio.Task[Any] | None) -> Any:
        raise NotImplementedError

    async def resume(
        self,
        workflow_id: str,
        *,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
        request_id: str | None = None,
    ) -> RunHandle:
        """Resume a failed or cancelled workflow with the current code; its handle.

        Its journal is kept: a "resume" record sets the failure (or the cancellation) aside,
        and the workflow continues from the step that failed (that activity runs again,
        from its first attempt, under its retry policy), every result recorded before it
        kept. Which step that is, is read from the journal: the activity or child step
        whose error the workflow's final failure carries (it let the error through, or
        raised it again). A workflow whose own code raised after it caught a step's
        failure keeps every recorded step (the caught failure included) and runs its
        code again from where it raised. A failed child whose failure ended the workflow
        is resumed first (its own resume record, naming this parent), so the step that
        runs it again finds it going on rather than its recorded failure. A cancelled
        workflow goes on from where the cancellation reached it. Events it took after that
        point are not delivered again. Idempotent: resuming a workflow whose resumption
        stands (it has not ended since) writes nothing and returns its handle; so does a
        resume with a `request_id` already journaled, even once the resumed run has ended
        (a retry that cannot know how far the first call got: give one).

        Args:
            workflow_id: the ended workflow.
            by: who asked (journaled; default: user@host and pid).
            reason: why (journaled).
            start: run it here now if this runtime has the workflow's code (default);
                False only writes (a runtime that recovers or serves the store runs it).
            request_id: this request's id (journaled): a retry with it writes nothing.

        Raises:
            WorkflowNotFound: no such workflow.
            ActionRefused: it completed, has not ended, or a runner holds it.
            NonDeterminismError: this runtime has the workflow's code and it would not
                replay the records kept (the step and the call site); nothing was written.
        """
        self._check_id(workflow_id)
        _check_texts("resume", by=by, reason=reason, request_id=request_id)
        self._refuse_if_running_here(workflow_id, "resume")
        acted = await _actions.resume(
            self._store,
            workflow_id,
            self._clock.time(),
            by=by if by is not None else default_by(),
            reason=reason,
            check=self._check(workflow_id, None),
            request_id=request_id,
            resume_child=lambda child: self._resume_child(
                workflow_id, child, by=by, reason=reason, request_id=request_id
            ),
        )
        return await self._follow_acted(acted, start=start)

    async def _resume_child(
        self,
        parent: str,
        child: str,
        *,
        by: str | None,
        reason: str | None,
        request_id: str | None,
    ) -> None:
        """Resume the failed child whose failure ended `parent` (whose resume runs it again).

        Journaled in the child as its own resume (by the same operator, the reason naming
        the parent). A child that is not failed any more (resumed already, or completed
        since) is left as it is; one that cannot be resumed refuses the parent's resume.
        """
        said = f"with its parent {parent!r}" + (f": {reason}" if reason else "")
        try:
            await self.resume(
                child,
                by=by,
                reason=said,
                start=False,
                request_id=None if request_id is None else f"{request_id}/{child}",
            )
        except WorkflowNotFound:
            return  # (its journal is gone: the parent's step starts it anew)
        except ActionRefused as refused:
            if refused.state == "completed" or refused.state.startswith(
                ("not ended", "running in this runtime")
            ):
                return
            raise ActionRefused(
                workflow_id=parent,
                action="resume",
                state=f"failed by its child {child!r}, which cannot be resumed now "
                f"({refused.state})",
                hint=f"Resume {child!r} once it can be, or wait for its runner to let it go, "
                "and try again",
            ) from refused

    async def restart(
        self,
        workflow_id: str,
        *,
        new_id: str | None = None,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
    ) -> RunHandle:
        """Run an ended workflow again as a new run, with the same arguments; its handle.

        The new run's start record names its source, and the source's journal gets a link
        to it. Idempotent: a restart to a `new_id` that is already this restart returns
        it (finishing the link if a crash cut it short).

        Args:
            workflow_id: the ended workflow (completed, failed or cancelled).
            new_id: the new run's id (default: "<id>-restart").
            by: who asked (journaled; default: user@host and pid).
            reason: why (journaled).
            start: run it here now if this runtime has the workflow's code (default);
                False only writes (a runtime that recovers or serves the store runs it).

        Raises:
            WorkflowNotFound: no such workflow.
            ActionRefused: it has not ended, or a runner holds it.
            ActionRefused: also when `new_id` names another run.
        """
        self._check_id(workflow_id)
        _check_texts("restart", by=by, reason=reason)
        target = new_id if new_id is not None else f"{workflow_id}-restart"
        self._check_new(workflow_id, target, RESTART)
        by = by if by is not None else default_by()
        now = self._clock.time()
        acted = await _actions.make_run(
            self._store,
            workflow_id,
            target,
            lambda journal, _: plan_restart(
                workflow_id, target, journal, now, by=by, reason=reason
            ),
            by=by,
            reason=reason,
            check=None,
        )
        return await self._follow_acted(acted, start=start)

    async def fork(
        self,
        workflow_id: str,
        *,
        at_step: int | None = None,
        from_failure: bool = False,
        override: Mapping[int, Any] | None = None,
        new_id: str | None = None,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
    ) -> RunHandle:
        """A new run whose journal starts with the source's records up to a step; its handle.

        The fork replays the source's recorded outcomes of the steps before `at_step` (or
        before the step that failed) and runs live from there with the current code. With
        this runtime's code for the workflow, the copied records are replayed first (in
        memory), and a fork that would not replay is refused naming the step and the call
        site. Linked both ways, like restart(). Idempotent per `new_id`.

        Args:
            workflow_id: the ended source.
            at_step: the first step the fork runs live (0 to the source's step count).
            from_failure: instead, run live from the step whose failure ended the source
                (the same step resume() would run again: all steps kept when its own code
                raised) or where its cancellation reached it.
            override: {step: value}, one step before the live part (or the failed step):
                the fork records `value` as that activity's result instead (for debugging,
                "what if the payment had succeeded"). Needs this runtime to have the
                workflow's code, which checks the value against the activity's return
                annotation.
            new_id: the fork's id (default: "<id>-fork-<step>" or "<id>-fork-failure",
                plus "-override-<step>").
            by: who asked (journaled; default: user@host and pid).
            reason: why (journaled).
            start: run it here now if this runtime has the workflow's code (default);
                False only writes (a runtime that recovers or serves the store runs it).

        Raises:
            WorkflowNotFound: no such workflow.
            ActionRefused: it has not ended (or, from_failure, it completed), or a runner
                holds it.
            InvalidForkStep: `at_step` is past the end of the source's journal.
            InvalidOverride: the value does not encode, does not fit the annotation, or
                the step has no activity outcome before the live part.
            NonDeterminismError: the copied records would not replay with this code.
            ActionRefused: also when `new_id` names another run.
        """
        self._check_id(workflow_id)
        _check_texts("fork", by=by, reason=reason)
        if (at_step is None) == (not from_failure):
            raise TypeError("fork() takes at_step=N or from_failure=True (one of them)")
        if at_step is not None and type(at_step) is not int:
            raise TypeError(f"fork()'s at_step must be an int, not {at_step!r}")
        pair = _one_override(workflow_id, override)
        target = new_id if new_id is not None else _fork_id(workflow_id, at_step, pair)
        self._check_new(workflow_id, target, FORK)
        by = by if by is not None else default_by()
        now = self._clock.time()
        acted = await _actions.make_run(
            self._store,
            workflow_id,
            target,
            lambda journal, source: plan_fork(
                workflow_id,
                target,
                journal,
                source.records,
                now,
                at_step=at_step,
                override=pair,
                by=by,
                reason=reason,
            ),
            by=by,
            reason=reason,
            check=self._check(target, pair, source=workflow_id),
        )
        return await self._follow_acted(acted, start=start)

    # -- helpers --------------------------------------------------------------------------

    def _refuse_if_running_here(self, workflow_id: str, action: str) -> None:
        task = self._running.get(workflow_id)
        if task is not None and not task.done():
            raise ActionRefused(
                workflow_id=workflow_id,
                action=action,
                state="running in this runtime",
                hint="Wait for it to end, or cancel it and try again once it has",
            )

    def _check_new(self, workflow_id: str, target: str, action: str) -> None:
        self._check_id(target)
        if target == workflow_id:
            raise ActionRefused(
                workflow_id=workflow_id,
                action=action,
                state="the source itself (new_id is its id)",
                hint="Give the new run another id",
            )
        self._refuse_if_running_here(workflow_id, action)

    def _check(
        self, workflow_id: str, override: tuple[int, Any] | None, *, source: str | None = None
    ) -> _actions.Check:
        """The replay check with this runtime's code, as the actions call it."""

        def check(name: str, payloads: list[bytes]) -> None:
            workflow = self._workflows.get(name)
            if workflow is None:
                if override is not None:
                    raise InvalidOverride(
                        workflow_id=source or workflow_id,
                        step=override[0],
                        problem=f"this runtime does not have workflow {name!r}'s code to "
                        "check the value against: give it Runtime(workflows=[...]) (from a "
                        "shell: durable fork --code MODULE, durable ui --code MODULE)",
                    )
                return
            check_replays(
                workflow,
                workflow_id,
                payloads,
                where=self._store.location(workflow_id),
                override=override,
                source=source,
            )

        return check

    async def _follow_acted(self, acted: _actions.Acted, *, start: bool) -> RunHandle:
        definition = self._workflows.get(acted.workflow_name)
        if definition is None or not start:
            handle: RunHandle = self._handle_of(acted.workflow_id, None)
            return handle
        started: RunHandle = await self._start(definition, acted.workflow_id, None)
        return started


def _check_texts(action: str, **given: str | None) -> None:
    """Refuse what a journal's record could not hold as text (it would be unreadable).

    Raises:
        TypeError: `by`, `reason` or `request_id` is neither text nor None.
    """
    for name, value in given.items():
        if value is not None and type(value) is not str:  # (a str subclass may not encode)
            raise TypeError(f"{action}()'s {name} must be text or None, not {value!r}")


def _one_override(workflow_id: str, override: Mapping[int, Any] | None) -> tuple[int, Any] | None:
    if override is None:
        return None
    if len(override) != 1:
        raise InvalidOverride(
            workflow_id=workflow_id,
            step=min(override, default=-1),
            problem=f"a fork overrides one step, not {len(override)}",
        )
    ((step, value),) = override.items()
    if type(step) is not int or step < 0:
        raise InvalidOverride(
            workflow_id=workflow_id, step=-1, problem=f"the step {step!r} is not an int >= 0"
        )
    return step, value


def _fork_id(workflow_id: str, at_step: int | None, override: tuple[int, Any] | None) -> str:
    made = f"{workflow_id}-fork-{'failure' if at_step is None else at_step}"
    return made if override is None else f"{made}-override-{override[0]}"
