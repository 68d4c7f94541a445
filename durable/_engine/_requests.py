"""What workflow code asks of its run beyond activities and timers, and what comes from outside.

Event waits, published status, patch decisions and child workflows are steps (or, for
patches, markers) like activity calls: numbered in the order the code asks, checked against
the journal on replay, their bookkeeping written once the run is live. Events and
cancellations arrive through the workflow's inbox; the run journals each before delivering
it, so a replay sees them at the same point. A mixin of WorkflowRun, kept apart so each
module has one job.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .._encoding import decode, encode
from .._errors import (
    ChildIdInUse,
    SerializationError,
    WorkflowCancelled,
    WorkflowDefinitionError,
    WorkflowFailed,
)
from . import _records as records
from ._context import user_call_site
from ._replay import digest_of
from ._retry import RetryPolicy
from ._specs import ActivitySpec, WorkflowSpec
from ._steps import ChildCall, Command, CommandFuture, RecordedOutcome

if TYPE_CHECKING:
    from .._storage._interface import Journal
    from ._events import EventWaiters
    from ._loop import WorkflowLoop
    from ._ports import Children, InboxReader
    from ._replay import JournalIndex, RecordedStep

logger = logging.getLogger("durable")

# What the record that wraps an inbox message adds to it, at most: the message's own keys
# become the record's, plus `q` (an inbox position) and a new `t` (about 20 bytes). A
# sender's message may be at most the journal's record limit less this, so that every
# message a send accepted can be journaled by the runner (Mailroom.send_event checks).
MESSAGE_MARGIN = 1024

_CHILD_RETRY = RetryPolicy(maximum_attempts=1)  # a child retries inside itself, not as a step


class WorkflowRequests:
    """Event waits, status, patches, children, and the inbox, for WorkflowRun."""

    if TYPE_CHECKING:  # provided by WorkflowRun
        spec: WorkflowSpec
        workflow_id: str
        generation: int
        loop: WorkflowLoop
        events: EventWaiters
        status: Any
        inbox_next: int
        _index: JournalIndex
        _journal: Journal
        _evicting: bool
        _recorded: dict[int, RecordedStep]
        _pending: dict[int, Command]
        _pending_activities: int
        _new: list[Command]
        _deferred: list[bytes]
        _patch_decisions: dict[str, tuple[bool, str]]
        _last_recorded_step: int
        _next_step: int
        _children: Children | None
        _open_children: dict[int, str]
        _clock: Callable[[], float]
        _inbox: InboxReader | None
        _record_limit: int
        _pulling: bool
        _pull_again: bool
        _outcomes: Any
        _draining: bool
        _live: bool
        _host_loop: asyncio.AbstractEventLoop | None
        _host_tasks: set[asyncio.Task[Any]]

        def _new_step(self, kind: str, name: str, digest: str, when: float = 0.0) -> int: ...
        def _recorded_outcome_now(
            self, step: int, spec: ActivitySpec
        ) -> RecordedOutcome | None: ...
        def command_cancelled(self, step: int) -> None: ...
        def _post(self, payload: bytes) -> None: ...
        async def _drain(self) -> None: ...
        def _main_done(self) -> bool: ...
        def _fail(self, error: BaseException) -> None: ...
        def _wake(self) -> None: ...
        async def _run_and_post(self, step: int, attempts: Coroutine[Any, Any, bytes]) -> None: ...

    # -- events ---------------------------------------------------------------------------

    def request_event(self, name: str) -> asyncio.Future[Any] | RecordedOutcome:
        """The next event named `name`: at once if one was delivered and not taken yet."""
        found, payload = self.events.take(name)
        step = self._new_step("wait", name, "")
        if found:
            return RecordedOutcome(payload, None)
        future = CommandFuture(loop=self.loop, step=step, on_cancel=self.command_cancelled)
        self._pending[step] = Command(step, future, None, event=name)
        self.events.wait(name, step, future)
        if step not in self._recorded:
            self._deferred.append(encode(records.wait(step, name)))
        return future

    def request_pull(self) -> None:
        """Journal and deliver the inbox messages this run has not taken yet (in a task)."""
        if self._inbox is None or not self._live or self._main_done():
            return
        if self._pulling:
            self._pull_again = True
            return
        assert self._host_loop is not None
        self._pulling = True
        task = self._host_loop.create_task(self._pull(), name=f"{self.workflow_id} inbox")
        self._host_tasks.add(task)
        task.add_done_callback(self._host_tasks.discard)

    async def _pull(self) -> None:
        assert self._inbox is not None
        try:
            while True:
                self._pull_again = False
                for position, message in await self._inbox(self.inbox_next):
                    if position < self.inbox_next or self._main_done():
                        continue
                    self.inbox_next = position + 1
                    record = _record_of(position, message, self._clock(), self._record_limit)
                    if record[1] is not None:
                        logger.warning(
                            "workflow %r: inbox message %d skipped, not delivered: %s",
                            self.workflow_id,
                            position,
                            record[1],
                        )
                    self._post(record[0])
                if not self._pull_again:
                    return
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # an unreadable inbox: the run stops (not final)
            self._fail(error)
        finally:
            self._pulling = False
            self._wake()  # the run may go idle (or be unloaded) now that nothing is pending

    async def take_inbox(self) -> None:
        """Journal and deliver the inbox now, before the run starts anything on going live.

        For a run resumed past its deadline: the runtime posted the deadline's cancellation
        before the run started, so the code is cancelled at the await the replay left it at,
        and an activity it had asked for (one in doubt, say) never starts. Messages before
        the cancellation are delivered first, in order, as a pull would.
        """
        if self._inbox is None or self._pulling:
            return
        self._pulling = True  # (a send meanwhile is pulled after: execute() asks for a pull)
        try:
            for position, message in await self._inbox(self.inbox_next):
                if position < self.inbox_next:
                    continue
                self.inbox_next = position + 1
                now = self._clock()
                payload, problem = _record_of(position, message, now, self._record_limit)
                if problem is not None:
                    logger.warning(
                        "workflow %r: inbox message %d skipped, not delivered: %s",
                        self.workflow_id,
                        position,
                        problem,
                    )
                self._outcomes.append(payload)
        finally:
            self._pulling = False
        if self._outcomes and not self._draining:
            await self._drain()

    # -- status and patches ---------------------------------------------------------------

    def set_status(self, value: Any) -> None:
        encoded = encode(value, context="the workflow's status (durable.set_status)")
        step = self._new_step("status", "", "")
        self.status = decode(encoded, path=self.workflow_id, offset=-1)
        if step not in self._recorded:
            self._deferred.append(encode(records.status(step, self.status, self.loop.time())))

    def patched(self, patch_id: str) -> bool:
        """True where new code may take its new path; False replaying an older journal.

        A journal that recorded the patch says yes; one whose steps go on past this point
        without it was written by the old code, so no; otherwise (new work) yes, recorded.
        The first check decides for the whole run: later checks, at any place, repeat it.
        """
        if not isinstance(patch_id, str) or not patch_id:
            raise WorkflowDefinitionError(f"a patch id is a non-empty string, not {patch_id!r}")
        known = self._patch_decisions.get(patch_id)
        if known is not None:  # decided once per run: every place checking it agrees (as
            return known[0]  # in Temporal), so one change spread over places stays whole
        site = user_call_site()  # (where it was decided, for a debugger)
        if patch_id in self._index.patches:
            decision = True
        elif self._last_recorded_step >= self._next_step:
            decision = False  # the journal's steps go on without it: the old code's path
        else:
            decision = True
            self._deferred.append(encode(records.patch(patch_id, self._next_step)))
        self._patch_decisions[patch_id] = (decision, site)
        return decision

    # -- continue-as-new ------------------------------------------------------------------

    def next_arguments(self, arguments: list[Any]) -> list[Any]:
        """continue_as_new's arguments, checked while this generation can still fail.

        Once `end{cont}` is journaled and the journal rotated, a next generation that cannot
        take them would fail at every resume, its predecessor gone.

        Raises:
            WorkflowDefinitionError: the workflow function cannot take them (fix the code).
            SerializationError: one cannot be journaled (the workflow fails, as for a result).
        """
        try:
            inspect.signature(self.spec.fn).bind(*arguments)
        except TypeError as error:
            raise WorkflowDefinitionError(
                f"continue_as_new() was given arguments workflow {self.spec.name!r} cannot "
                f"take: {error}"
            ) from None
        encode(arguments, context="the arguments of continue_as_new")
        return arguments

    # -- child workflows ------------------------------------------------------------------

    def request_child(
        self,
        target: Any,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        child_id: str | None,
        *,
        detached: bool = False,
    ) -> asyncio.Future[Any] | RecordedOutcome:
        """A step that runs workflow `target` (opaque here) with its own journal.

        `detached` is not part of the step's digest: it decides what the parent's end does
        to the child, not which child runs, so changing it does not break a replay.
        """
        if self._children is None:
            raise WorkflowDefinitionError("this runtime cannot run child workflows")
        encoded = encode(
            [list(args), child_id], context=f"the arguments of child workflow {spec.name!r}"
        )
        activity = _child_spec(spec)
        digest = digest_of(encoded)
        step = self._new_step("activity", activity.name, digest)
        recorded = self._recorded_outcome_now(step, activity)
        if recorded is not None:
            return recorded
        if child_id is None:
            generation = f".g{self.generation}" if self.generation else ""
            child_id = f"{self.workflow_id}{generation}.{step}"
        arguments = decode(encoded, path=self.workflow_id, offset=-1)[0]
        future = CommandFuture(loop=self.loop, step=step, on_cancel=self.command_cancelled)
        command = Command(
            step,
            future,
            None,
            spec=activity,
            digest=digest,
            child=ChildCall(
                target, child_id, arguments, detached=detached, call_site=user_call_site()
            ),
        )
        self._pending[step] = command
        self._pending_activities += 1
        self._new.append(command)
        return future

    def _start_child(self, command: Command) -> None:
        child, spec = command.child, command.spec
        assert child is not None
        assert spec is not None
        assert self._host_loop is not None
        assert self._children is not None
        if command.step not in self._recorded:  # which child it is, for readers and resumes
            step, digest, now = command.step, command.digest, self._clock()
            intent = records.scheduled(
                step,
                spec.name,
                digest,
                1,
                now=now,
                child=child.workflow_id,
                detached=child.detached,
            )
            self._journal.write(encode(intent))
            if not child.detached:
                self._open_children[step] = child.workflow_id
        started = self._children.begin(
            child.target, child.workflow_id, child.arguments, self.workflow_id
        )
        outcome = self._child_outcome(command, started)
        task = self._host_loop.create_task(
            self._run_and_post(command.step, outcome),
            name=f"{self.workflow_id}/{command.step} child {child.workflow_id}",
        )
        task.add_done_callback(lambda _: outcome.close())  # (as for activities: if unstarted)
        command.host = task
        self._host_tasks.add(task)

    async def _child_outcome(self, command: Command, started: asyncio.Future[Any]) -> bytes:
        """The outcome of the child `started` runs (or resumes, or reads), as a "done"."""
        child, spec = command.child, command.spec
        assert child is not None
        assert spec is not None
        assert self._children is not None
        step, name, digest = command.step, spec.name, command.digest
        error: records.ErrorInfo
        try:
            result = await self._children.outcome(started)
        except ChildIdInUse as in_use:  # (journaled: a replay must not look at that id again)
            error = {"type": "durable.ChildIdInUse", "msg": str(in_use), "tb": ""}
            error |= {"kind": "child-id-in-use", "id": child.workflow_id}
            error |= {"was": in_use.recorded, "asked": in_use.given, "site": child.call_site}
            return encode(records.done(step, name, digest, 1, now=self._clock(), error=error))
        except WorkflowFailed as failed:
            error = {"type": failed.error_type, "msg": failed.message, "tb": failed.traceback}
            error |= {"kind": "child", "id": failed.workflow_id}
            return encode(records.done(step, name, digest, 1, now=self._clock(), error=error))
        except WorkflowCancelled as cancelled:
            error = {"type": "durable.WorkflowCancelled", "msg": cancelled.reason, "tb": ""}
            error |= {"kind": "child-cancelled", "id": child.workflow_id}
            return encode(records.done(step, name, digest, 1, now=self._clock(), error=error))
        return encode(
            records.done(step, name, digest, 1, now=self._clock(), result=result),
            context=f"the result of child workflow {child.workflow_id!r}",
        )

    async def _end_children(self, ending: str) -> None:
        """Cancel, durably, the children this run started that may still run (not detached).

        Called before the run's `end` record: a crash in between redoes it on resume (a
        child's inbox takes one cancellation from its parent: the rest are duplicates), and
        once the end is written every child has its cancellation on disk. A child finished
        meanwhile, or never started, is left be; one running nowhere takes it when it resumes.
        """
        if not self._open_children or self._children is None:
            return
        reason = f"its parent {self.workflow_id!r} {ending}"
        await self._children.end_with_parent(
            self.workflow_id, list(self._open_children.values()), reason
        )

    def cancel_child(self, command: Command, reason: str) -> None:
        """The parent let go of a child step: cancel the child durably (idempotent)."""
        if command.child is not None and self._children is not None:
            self._children.cancel(command.child.workflow_id, reason, self.workflow_id)


def _child_spec(spec: WorkflowSpec) -> ActivitySpec:
    return ActivitySpec(
        name=records.CHILD_PREFIX + spec.name,
        fn=spec.fn,
        is_async=True,
        timeout=None,
        retry=_CHILD_RETRY,
        at_most_once=False,
        return_type=spec.return_type,
    )


def _record_of(
    position: int, message: dict[str, Any] | str, now: float, limit: int
) -> tuple[bytes, str | None]:
    """The journal record of inbox message `position`, and why it is a skip (None: it is not).

    `message` is the message (validated: records.read_message), or why it could not be
    read. A message that could not be read, or whose record would not fit the journal's
    record limit (`limit` bytes), is journaled as a skip: delivering it could only fail, and
    fail again at every resume, since the inbox is never rewritten.
    """
    problem = message if isinstance(message, str) else None
    if isinstance(message, dict):
        record: records.EventRecord | records.CancelRecord
        if message["k"] == records.CANCEL:
            record = records.cancel(position, message["m"], now, message.get("id"))
        else:
            record = records.event(position, message["n"], message["p"], now, message.get("id"))
        try:
            encoded = encode(record, context=f"inbox message {position}")
        except SerializationError as error:
            problem = f"it cannot be journaled again ({error})"
        else:
            if len(encoded) <= limit:
                return encoded, None
            problem = (
                f"its journal record would be {len(encoded)} bytes, over the journal's "
                f"{limit}-byte record limit"
            )
    assert problem is not None
    return encode(records.skip_record(position, problem, now)), problem


def event_message(name: str, payload: Any, event_id: str | None, now: float) -> bytes:
    """An inbox message carrying an event (SerializationError if the payload has no form)."""
    return encode(
        records.event_message(name, payload, event_id, now),
        context=f"the payload of event {name!r}",
    )


def cancel_message(reason: str, request_id: str | None, now: float) -> bytes:
    return encode(records.cancel_message(reason, request_id, now))
