"""Runtime.resume / restart / fork: an operator's actions on one ended workflow.

A part a Runtime holds (its resume, restart and fork delegate here), given the runtime's
store, clock, registry, running tasks, and how it starts a run. The actions themselves are
`_actions` (store I/O) over `_plans` (what to write, pure) and `_checks` (the replay check
with the current code). After an action the run it made is started here when this runtime
knows the workflow's code, as start() would; otherwise the handle follows it (a runtime
with the code runs it: recover(), serve(), or run()/start() of the id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .._definitions import Workflow
from .._engine._clock import Clock
from .._engine._describe import WorkflowDescription
from .._errors import ActionRefused, InvalidOverride, WorkflowNotFound
from .._runtime_parts import HandleOf, StartRun, default_by
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


class Operations:
    """A runtime's actions on ended runs: resume, restart and fork (Runtime delegates)."""

    def __init__(
        self,
        store: JournalStore,
        workflows: dict[str, Workflow[..., Any]],
        running: dict[str, Any],
        clock: Clock,
        *,
        check_id: Callable[[str], None],
        start: StartRun,
        handle_of: HandleOf,
    ) -> None:
        self._store = store
        self._workflows = workflows  # (the runtime's registry, shared)
        self._running = running  # (the runtime's running tasks by id, shared)
        self._clock = clock
        self._check_id = check_id
        self._start = start
        self._handle_of = handle_of

    async def resume(
        self,
        workflow_id: str,
        *,
        by: str | None = None,
        reason: str | None = None,
        start: bool = True,
        request_id: str | None = None,
    ) -> RunHandle:
        """See Runtime.resume."""
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
        """See Runtime.restart."""
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
        """See Runtime.fork."""
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
