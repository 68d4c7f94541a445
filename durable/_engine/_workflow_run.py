"""Drives one workflow: replays its journal into the workflow loop, then goes on live.

The loop of a run: deliver one event (an activity outcome or a timer firing) into the
workflow loop, run the loop until idle, collect the commands the code asked for (activity
calls, timers), check them against what the journal recorded at those steps, start the new
ones on the host loop. Replay delivers the journal's events in journal order; live, each
outcome is journaled durably first and then delivered the same way, so a replay makes the
same decisions as the first run whatever asyncio composition the workflow uses.

WorkflowRun is one class; its state lives in parts with one job each, the way trio's
Runner holds its run queue and deadlines: `_steps` (StepsInFlight: numbering, the check
against the journal, the steps not delivered yet), `_life` (Lifecycle: the main task, host
tasks, the wake-up, live / stopping / killed, what stops it), `_drain` (Drain: outcomes to
journal, then deliver), `_starter` (StepStarter: the new steps started on the host loop),
`_inbox` (InboxCursor), `_children` (ChildSteps) and `_patches` (Patches). The run holds
what the journal says (`_index`), what it was given (journal, clock, the host's ports), and
decides which part acts when. One part uses others: StepStarter is handed `_steps` (the
new steps to start, what the journal recorded of them, retry back-offs), `_life` (host tasks, the
run's context, stopping and failing), `_drain` (outcomes posted, activities run inline or
at once) and `_children` (a child step's start). The other parts know none of each other.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import CodeType, FrameType
from typing import Any

from .._asyncio_private import current_task, our_running_loop
from .._encoding import PlainPacker, convert, decode, encode
from .._errors import (
    NonDeterminismError,
    SerializationError,
    WorkflowDefinitionError,
)
from .._gc_pause import collector_paused
from .._storage._frames import DEFAULT_MAX_RECORD_SIZE
from .._storage._interface import Journal
from . import _records as records
from ._activity_run import shareable
from ._child_steps import ChildSteps
from ._clock import SYSTEM_CLOCK, Clock
from ._context import WorkflowInfo, user_call_site
from ._drain import Drain
from ._events import EventWaiters
from ._in_flight import Diverged, Evicted, StepsInFlight
from ._inbox_cursor import InboxCursor
from ._lifecycle import Lifecycle
from ._loop import StepTimer, WorkflowLoop
from ._observer import Carrier, Observer, Observing
from ._outcomes import (
    ContinuedAsNew,
    Finished,
    RunOutcome,
    Suspended,
    end_of_failure,
    ending_of,
    ending_of_task,
    first_difference,
    rebuild,
    step_error,
)
from ._patches import Patches
from ._ports import Children, InboxReader
from ._replay import JournalIndex, digest_of, new_digest
from ._sites import timer_site
from ._specs import ActivitySpec, WorkflowSpec
from ._stall import StallWatch
from ._starting import StepStarter
from ._steps import ChildCall, Command, CommandFuture, ContinueAsNew, RecordedOutcome
from ._streams import RunStreams, check_stream_name, current_sink, encode_value


class WorkflowRun:
    """One execution of one workflow over its journal (replay, then live)."""

    def __init__(
        self,
        *,
        spec: WorkflowSpec,
        workflow_id: str,
        journal: Journal,
        arguments: list[Any] | None,
        clock: Clock = SYSTEM_CLOCK,
        suspend_after: float | None = None,
        inbox: InboxReader | None = None,
        children: Children | None = None,
        parent: str | None = None,
        substitute: Callable[[ActivitySpec], ActivitySpec] | None = None,
        record_limit: int = DEFAULT_MAX_RECORD_SIZE,
        location: str | None = None,
        execution_timeout: float | None = None,
        watch: StallWatch | None = None,
        asked: dict[int, ActivitySpec] | None = None,
        streamed: Callable[[], None] | None = None,
        observer: Observer | None = None,
        trace: Carrier | None = None,
        previous_run: Carrier | None = None,
    ) -> None:
        """Prepare a run; `arguments` is None when resuming from the journal's start record.

        `record_limit` is the largest record the journal takes (its store's max_record_size):
        an inbox message whose record would be larger is journaled as skipped.
        `execution_timeout` (seconds) gives a new journal its deadline (`dl`, from its start
        time); a journal that has a start record keeps its own. `watch` marks each step, for
        the runtime's stall watchdog. `asked` (checks only) collects the activity each step
        called, by step. `streamed` is called once stream records were written (readers in
        this process may look at once). `observer`: told of the run once it goes live (see
        `_observer`); `trace`: a new journal's start record's `tc` (the starter's context);
        `previous_run`: the context of the run before this one, when the journal has none
        (the previous generation's).

        Raises:
            JournalCorrupted: a record is not one this version understands.
            UnsupportedJournalFormat: the journal was written by a newer durable.
            WorkflowDefinitionError: the journal belongs to another workflow.
            ChildIdInUse: `parent` starts it as a child, and the journal is not that child.
        """
        self.spec = spec
        self.workflow_id = workflow_id
        self._journal = journal
        self._clock = clock  # durable timers, retry back-offs and every journaled timestamp
        self._suspend_after = suspend_after
        self._watch = watch
        index = self._index = JournalIndex(
            journal.records,
            workflow_id=workflow_id,
            workflow_name=spec.name,
            arguments=arguments,
            clock=clock.time,
            parent=parent,
            path=location,  # (the journal's path or place, for errors: else the id)
            execution_timeout=execution_timeout,
            trace=trace,
        )
        self._streams = RunStreams(
            record_limit=record_limit,
            location=location or workflow_id,
            written=streamed,
            counts=index.stream_counts,
        )
        self.finished = index.finished  # the journal's end record: nothing to run
        self._replay_index = 0  # the next recorded event to deliver
        start = index.start
        self.start_time: float = start["t"]
        # durable.random()'s generator, made when the code first asks (most never do; one
        # costs ~25k instructions to seed): until then, its seed. One attribute: see
        # tests/engine/test_run_shape.py.
        self._random: random.Random | int = start["seed"]
        self.arguments: list[Any] = start["args"]
        self.generation: int = start.get("gen", 0)
        self.parent: str | None = start.get("parent")
        self.events = EventWaiters()
        self.events.preload(start.get("carry", []))
        self.status: Any = None
        self.delivered = 0  # journaled events (outcomes, firings, messages) processed so far
        self._deferred: list[bytes] = []  # bookkeeping records to write once live
        self._packer = PlainPacker()  # (this run's records and arguments, on its thread)
        self._steps = StepsInFlight(workflow_id, index.steps, index.sites)
        self._steps.asked = asked
        self._life = Lifecycle()
        self._drain = Drain()
        self._inbox = InboxCursor(
            inbox,
            workflow_id=workflow_id,
            taken=index.inbox_next,
            delivered=start.get("q", 0),
            record_limit=record_limit,
            now=clock.time,
        )
        self._children = ChildSteps(
            children,
            workflow_id=workflow_id,
            journal=journal,
            now=clock.time,
            open_children=index.open_children(),
        )
        self._patches = Patches(index.patches, max(index.steps, default=-1))
        # (with an observer; None: none. One attribute: see Observing)
        self._observing = (
            None if observer is None else Observing(observer, index.last_run or previous_run)
        )
        self._starter = StepStarter(
            workflow_id=workflow_id,
            generation=self.generation,
            journal=journal,
            clock=clock,
            packer=self._packer,
            steps=self._steps,
            life=self._life,
            drain=self._drain,
            children=self._children,
            observing=self._observing,
            substitute=substitute,
            post=self._post,
            drain_outcomes=self._drain_outcomes,
        )
        self.loop = WorkflowLoop(  # type: ignore[abstract]  # (I/O methods: not for workflows)
            start_time=self.start_time, scheduler=self, owner=self, salt=start.get("hs", 0)
        )

    # -- what the runtime reads -----------------------------------------------------------

    @property
    def random(self) -> random.Random:
        """durable.random()'s generator, seeded by the start record: the same on replay."""
        made = self._random
        if isinstance(made, int):
            made = self._random = random.Random(made)
        return made

    @property
    def trace_carrier(self) -> Carrier | None:
        """This run's trace context once it went live, observed (the next run links to it)."""
        return self._observing.carrier if self._observing is not None else None

    def hint_timer_site(self, code: CodeType, offset: int) -> None:
        """durable.sleep's call site: the timer its asyncio.sleep asks for now is from there."""
        self._steps.sites.timer_hint = (code, offset)

    @property
    def starter(self) -> Carrier | None:
        """The trace carrier of whoever started the workflow (its start record's `tc`)."""
        return self._index.start.get("tc")

    @property
    def deadline(self) -> float | None:
        """When the runtime cancels it (epoch seconds; None: never); continue-as-new keeps it."""
        return self._index.start.get("dl")

    @property
    def replaying(self) -> bool:
        """Whether the code runs again what an earlier run ran (durable.logger stays quiet).

        Recorded events remain to replay, or the code has not yet asked again for the last
        step the journal holds (a step asked for, or under way, when that run stopped: the
        code before it ran then). What ran after that last step runs again, live.
        """
        index = self._index
        if not self._life.live and self._replay_index < len(index.events):
            return True
        return self._steps.next <= index.last_step

    @property
    def inbox_next(self) -> int:
        """The first inbox message this run has not taken (journaled) yet."""
        return self._inbox.next

    @property
    def info(self) -> WorkflowInfo:
        return WorkflowInfo(
            workflow_id=self.workflow_id,
            workflow_name=self.spec.name,
            start_time=datetime.fromtimestamp(self.start_time, UTC),
        )

    # -- running ------------------------------------------------------------------------

    async def execute(self) -> RunOutcome:
        """Replay, then run live until the workflow ends or only sleeps; how it stands then.

        See `_execute`; with an observer, the live run it observed is told how it ended.
        """
        observing = self._observing
        if observing is None:
            return await self._execute()
        began = time.time_ns()  # (the span's start: wall time, whatever the run's clock)
        try:
            outcome = await self._execute(began)
        except BaseException as error:
            if observing.run is not None:
                observing.run.ended("stopped", error)
            raise
        if observing.run is not None:
            if isinstance(outcome, Finished):
                observing.run.ended(outcome.how, outcome.error)
            else:
                how = "suspended" if isinstance(outcome, Suspended) else "continued"
                observing.run.ended(how, None)
        return outcome

    async def _execute(self, began: int = 0) -> RunOutcome:
        """Replay, then run live until the workflow ends or only sleeps; how it stands then.

        Returns:
            Finished: the workflow returned, raised or was cancelled (now or in a recorded
                earlier run): its result, or the WorkflowFailed / WorkflowCancelled for it.
            Suspended: it only sleeps, for longer than suspend_after: resume it at wake_at.
            ContinuedAsNew: this generation ended with continue_as_new: start the next.

        Raises:
            NonDeterminismError: the code diverged from the journal; nothing was written.
            WorkflowDefinitionError: the code misused the workflow (I/O, bad arguments).
            JournalError: the journal failed; the run stops (not final: resume it).
        """
        life = self._life
        life.host_loop = self.loop.host = asyncio.get_running_loop()
        life.context = self._host_context()
        if self._watch is not None:
            self._watch.start()
        if self.finished is not None:
            if "cont" in self.finished:
                return ContinuedAsNew.of(self.finished, self.generation)
            return Finished.of(self.workflow_id, self.spec, self.finished, None)
        if self._index.new_start_record is not None:
            self._journal.write(self._index.new_start_record)
        main = self._start_main()
        try:
            self._replay(main)
            life.live = True
            if self._observing is not None:
                self._observe(self._observing, began)
            if self._past_deadline():  # its cancellation is in the inbox: take it first
                await self.take_inbox()
            if self._deferred:
                self._write_deferred()
            self._starter.start_new()
            self._check_progress()
            self.request_pull()  # what was sent while it was not running
            while not main.done() and life.fatal is None:
                wake_at = self._long_sleep_until()
                if wake_at is not None:
                    self._note_park()  # (unless the drain's is still its last record)
                    await self._journal.flush()  # its timers are durable: it may go
                    wake_at = self._long_sleep_until()  # unless a message came meanwhile
                    if wake_at is not None:
                        return Suspended(wake_at, self._inbox.next)
                    continue
                await life.idle()
            if life.fatal is not None:
                raise life.fatal
            return await self._finish(main)
        finally:
            self._teardown()

    def _observe(self, observing: Observing, began: int) -> None:
        """The run went live: its observer, and a `run` record of its context (page cache)."""
        start = self._index.start
        observed = observing.run = observing.observer.run_began(
            workflow_id=self.workflow_id,
            workflow_name=self.spec.name,
            generation=self.generation,
            parent=start.get("tc"),
            previous=observing.previous,
            replayed=self.delivered,
            began=began,
        )
        carrier = observing.carrier = observed.carrier()
        if carrier:
            self._journal.write(encode(records.run(carrier, self._clock.time())))
        for command in self._steps.pending.values():  # (waits asked for before it went live)
            if command.event is not None and command.scope is None:
                command.scope = observed.step_began(command.step, "wait", command.event)

    def _start_main(self) -> asyncio.Task[Any]:
        arguments = [
            convert(value, hint, context=f"argument {index} of workflow {self.spec.name!r}")
            for index, (value, hint) in enumerate(
                zip(
                    self.arguments,
                    _padded(self.spec.parameter_types, len(self.arguments)),
                    strict=True,
                )
            )
        ]
        try:
            coroutine = self.spec.fn(*arguments)
        except TypeError as error:  # (an async def only binds its arguments when called)
            raise WorkflowDefinitionError(
                f"workflow {self.spec.name!r} cannot take the arguments its journal "
                f"{self.workflow_id!r} recorded: {error}"
            ) from None
        main = self._life.main = self.loop.create_task(coroutine, name=self.workflow_id)
        return main

    def _replay(self, main: asyncio.Task[Any]) -> None:
        """Deliver the journal's events in order; raise if the code asked for other steps."""
        events = self._index.events
        if not events:  # (nothing to replay: the code runs to its first step, live)
            self._step()
        else:
            self._replay_events(main, events)
        self._index.events = []
        unasked = self._index.unasked(self._steps.next)
        if unasked is not None:
            raise unasked

    def _replay_events(self, main: asyncio.Task[Any], events: list[dict[str, Any]]) -> None:
        with collector_paused():
            loop, last = self.loop, len(events)
            loop.replaying = last > 0
            self._step()
            while self._replay_index < last and not main.done():
                self._replay_index += 1  # (a recorded result taken inline moves it too)
                if self._replay_index == last:  # (what the code asks for next is new)
                    loop.replaying = False
                self._deliver(events[self._replay_index - 1])
            loop.replaying = False

    def check_replay(self) -> None:
        """Replay the whole journal against the code, writing nothing and running nothing.

        For finished workflows too: what a deploy of this code would make of every journal.

        Raises:
            NonDeterminismError: the code asks for other steps than the journal recorded, or
                for more after the journal's end, or ends another way than it recorded.
        """
        try:
            main = self._start_main()
            self._replay(main)
            end = self.finished
            if end is None:
                return
            recorded = ending_of(end)
            asked = self._steps.next
            if not main.done():
                waiting = sorted(self._steps.pending)
                raise NonDeterminismError(
                    workflow_id=self.workflow_id,
                    position=asked - 1 if not waiting else waiting[0],
                    recorded=f"the workflow {recorded} after step {asked - 1}",
                    requested=f"the code still waits for step(s) {waiting} there",
                    call_site="the workflow's last await",
                )
            now = ending_of_task(main)
            if now != recorded:
                raise NonDeterminismError(
                    workflow_id=self.workflow_id,
                    position=asked,
                    recorded=f"the workflow {recorded}",
                    requested=f"the code {now}",
                    call_site="the workflow's return",
                )
            self._check_result(main, end, asked)
        finally:
            self._teardown()

    def _check_result(self, main: asyncio.Task[Any], end: dict[str, Any], asked: int) -> None:
        """A replayed result (or continue_as_new's arguments) must equal the recorded one."""
        if main.cancelled() or (main.exception() is not None and "cont" not in end):
            return
        error = main.exception()
        replayed: Any = error.arguments if isinstance(error, ContinueAsNew) else main.result()
        key = "cont" if "cont" in end else "r"
        try:  # (as the journal would hold it: the recorded side is decoded msgpack)
            value = decode(encode(replayed), path=self.workflow_id, offset=-1)
        except SerializationError as unencodable:
            value = f"<cannot be journaled: {unencodable}>"
        difference = first_difference(end[key], value, "result" if key == "r" else "arguments")
        if difference is not None:
            raise NonDeterminismError(
                workflow_id=self.workflow_id,
                position=asked,
                recorded=f"the workflow's {'result' if key == 'r' else 'next arguments'}",
                requested=f"another one: {difference}",
                call_site="the workflow's return",
            )

    def _past_deadline(self) -> bool:
        """Resumed after its deadline and not cancelled yet: it must start nothing new."""
        deadline = self.deadline
        life = self._life
        return (
            deadline is not None
            and deadline <= self._clock.time()
            and life.cancel_reason is None
            and not life.main_done()
        )

    def _long_sleep_until(self) -> float | None:
        """When the workflow only sleeps, for longer than suspend_after: its wake-up time."""
        wake_at = self._steps.sleeping_until()  # (first: None while an activity runs)
        if (
            wake_at is None
            or self._suspend_after is None
            or self._drain.busy()
            or self._inbox.pulling
        ):
            return None
        return wake_at if wake_at - self._clock.time() > self._suspend_after else None

    def _note_park(self) -> None:
        """A park record, before the sync that makes its timers durable, if it is to unload.

        It rides that sync. recover() trusts one only while it is the journal's last record
        (see _sleepers.parked_at): nothing happened after it but mail, which a replay
        takes. One that is not last (or none, or a stale one skipped here) costs a replay.
        """
        wake_at = self._steps.sleeping_until()
        suspend_after = self._suspend_after
        if wake_at is None or suspend_after is None:
            return
        now = self._clock.time()
        parked = (wake_at, self._inbox.next)
        life = self._life
        if wake_at - now <= suspend_after or parked == life.parked:
            return
        life.parked = parked
        self._journal.write(encode(records.park(wake_at, parked[1], now)))

    def _step(self) -> None:
        watch = self._watch
        if watch is None:
            self.loop.run_until_idle()
        else:  # (the stall watchdog's mark, written here: see StallWatch)
            watch.steps += 1
            watch.stepping = self
            try:
                self.loop.run_until_idle()
            finally:
                watch.stepping = None
        divergence = self._steps.divergence
        if divergence is not None:
            raise divergence
        if self._life.live:
            if self._deferred:
                self._write_deferred()
            self._starter.start_new()

    def _deliver(self, event: dict[str, Any]) -> None:
        kind = event["k"]
        if kind in records.FROM_INBOX:
            self._deliver_message(event)
            return
        step = event["s"]
        steps = self._steps
        if step >= steps.next:
            recorded = self._steps.recorded.get(step)
            what = recorded.description if recorded else "an outcome"
            raise NonDeterminismError(
                workflow_id=self.workflow_id,
                position=step,
                recorded=f"{what} at step {step}",
                requested=f"only {steps.next} steps before the workflow went idle",
                call_site="the workflow's last await",
            )
        self.delivered += 1
        children = self._children
        if children.open and kind == records.DONE:
            children.ended(step)
        command = steps.forget(step)
        if command is None:
            return  # cancelled by the workflow before this outcome: ignored alike on replay
        if command.scope is not None:  # (a step started live, observed)
            error = event.get("e")
            if error is None:
                command.scope.ended("fired" if kind == records.FIRED else "completed")
            else:
                command.scope.ended("failed", error.get("type"))
        self.loop.set_time(event["t"])
        if kind == records.FIRED:
            assert command.handle is not None
            self.loop.fire(command.handle)
        else:
            future = command.future
            assert future is not None
            assert command.spec is not None
            if not future.done():
                if "e" in event:
                    future.set_exception(
                        step_error(self.workflow_id, command.spec, command.step, event)
                    )
                elif command.spec.plain_result:
                    future.set_result(event["r"])
                else:
                    future.set_result(rebuild(event["r"], command.spec))
        self._step()

    def _deliver_message(self, message: dict[str, Any]) -> None:
        """An event or a cancellation from the inbox, now in the journal's order."""
        self.delivered += 1
        self._inbox.delivered_one(message["q"])
        if message["k"] == records.SKIP:
            return  # (an undeliverable message: nothing reaches the workflow)
        self.loop.set_time(message["t"])
        if message["k"] == records.EVENT:
            step = self.events.deliver(message["n"], message.get("p"))
            if step is not None:
                command = self._steps.forget(step)
                if command is not None and command.scope is not None:
                    command.scope.ended("received", link=message.get("tc"))
            observing = self._observing
            if observing is not None and observing.run is not None and self._life.live:
                observing.run.event_taken(message["n"], message.get("tc"))
        else:  # the first cancel only: a repeated one (journaled too) would interrupt cleanup
            reason = message.get("m", "cancelled")
            life = self._life
            observing = self._observing
            if observing is not None and observing.run is not None and life.live:
                observing.run.cancel_taken(reason, message.get("tc"))
            if life.cancelled(reason, timed_out=message.get("id") == records.DEADLINE_CANCEL_ID):
                main = life.main
                if main is not None and not main.done():
                    main.cancel(msg=reason)
        self._step()

    def _write_deferred(self) -> None:
        """Write the bookkeeping of the steps taken since (waits, status, patches, streams)."""
        deferred, self._deferred = self._deferred, []
        for record in deferred:
            self._journal.write(record)
        self._streams.deferred_written()

    # -- the drain: live outcomes journaled in batches, then delivered (see _drain) -------

    def _post(self, payload: bytes, record: dict[str, Any] | None = None) -> None:
        """Queue an outcome from a callback (a timer, the inbox); a task drains it."""
        if self._drain.post(payload, record):
            self._post_pending()

    async def _drain_outcomes(self) -> None:
        drain, life, journal = self._drain, self._life, self._journal
        main = life.main
        assert main is not None  # (a drain runs live only)
        drain.draining = True
        try:
            while drain.outcomes and life.fatal is None and not main.done():
                batch = drain.take()
                for payload, _ in batch[:-1]:
                    journal.write(payload)
                last = batch[-1]
                await journal.append(last[0])  # one sync makes the batch durable
                for entry in batch:
                    if main.done():
                        break  # as on replay: nothing is delivered once the workflow returned
                    # The last outcome, nothing queued behind it, in an activity's task: the
                    # next activity may run at once (_run_now), as it would right after.
                    drain.run_now = entry is last and drain.inline_open and not drain.outcomes
                    payload, plain = entry
                    # (a plain record of an immutable result is equal to its decoding)
                    self._deliver(plain or decode(payload, path=self.workflow_id, offset=-1))
                drain.run_now = False
            if not main.done() and life.fatal is None:
                if not drain.outcomes and not self._steps.activities:
                    self._note_park()  # (if it will be unloaded: in this sync)
                    await journal.flush()  # timer records: no outcome will sync them
                self._check_progress()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # a journal failure, a divergence: the run stops
            life.fail(error)
        finally:
            drain.draining = False
            drain.run_now = False
        if main.done() or self._long_sleep_until() is not None:
            life.wake()
        elif drain.outcomes and life.fatal is None:
            self._post_pending()

    def _post_pending(self) -> None:
        self._drain.draining = True  # the task drains; until it starts, nobody else may
        self._life.spawn(self._drain_outcomes())

    def _check_progress(self) -> None:
        """Fail a workflow that waits on nothing that could ever wake it."""
        drain = self._drain
        if not self._steps.pending and not drain.outcomes and not self._life.main_done():
            self._life.fail(
                WorkflowDefinitionError(
                    f"workflow {self.workflow_id!r} is waiting on something that is not an "
                    "activity, a timer or one of its own tasks, so it can never resume: await "
                    "only activities, durable.sleep / asyncio.sleep and tasks of the workflow"
                )
            )
        elif drain.outcomes and not drain.draining:
            self._post_pending()

    async def _finish(self, main: asyncio.Task[Any]) -> Finished | ContinuedAsNew:
        if main.cancelled():
            reason = self._life.cancel_reason
            if reason is None:  # ("" is a reason the canceller gave)
                reason = "the workflow cancelled itself"
            error: BaseException = asyncio.CancelledError(reason)
        else:
            error_or_none = main.exception()
            if error_or_none is None:
                try:
                    payload = encode(
                        records.end_result(main.result(), self._clock.time()),
                        context=f"the result of workflow {self.spec.name!r}",
                    )
                except SerializationError as unencodable:
                    error_or_none = unencodable  # a final failure, like any other
                else:
                    if self._children.open:  # (most runs started no child)
                        await self._children.end_with_parent("returned")
                    await self._journal.append(payload)
                    end = decode(payload, path=self.workflow_id, offset=-1)
                    return Finished.of(self.workflow_id, self.spec, end, None)
            elif isinstance(error_or_none, ContinueAsNew):
                continued = records.end_continued(
                    error_or_none.arguments,
                    self._inbox.delivered,
                    self.events.kept(),
                    self._clock.time(),
                )
                payload = encode(continued, context="the arguments of continue_as_new")
                await self._children.end_with_parent("continued as new")  # (per generation)
                await self._journal.append(payload)
                end = decode(payload, path=self.workflow_id, offset=-1)
                return ContinuedAsNew.of(end, self.generation)
            error = error_or_none
        if isinstance(error, Diverged | Evicted):
            raise self._steps.divergence or error
        if isinstance(error, WorkflowDefinitionError):
            raise error  # misuse (I/O in workflow code): fix the code and run again; not final
        cancelled = main.cancelled()
        timed_out = cancelled and self._life.timed_out
        now = self._clock.time()
        end = end_of_failure(error, cancelled=cancelled, now=now, timed_out=timed_out)
        await self._children.end_with_parent("was cancelled" if cancelled else "failed")
        await self._journal.append(encode(end))
        return Finished.of(self.workflow_id, self.spec, end, error)

    # -- stopping --------------------------------------------------------------------------

    def _teardown(self) -> None:
        """Stop what this run started: host tasks and timers, then the workflow's own tasks."""
        self._steps.close()
        if self._observing is not None:  # (steps left in flight: unloaded, stopped, crashed)
            for command in self._steps.pending.values():
                if command.scope is not None:
                    command.scope.ended("stopped")
                    command.scope = None
        self._stop_host_work()
        self._life.let_go(self.loop)
        if not self._life.killed:  # (a killed run's coroutines are closed later: bury())
            # The run and its loop, and the run and its step starter, refer to each other:
            # undone here, the run is freed as soon as the runtime drops it, its objects
            # young, instead of waiting for (and adding to) a cyclic collection.
            self.loop.detach()
            self._starter.detach()

    def _stop_host_work(self) -> None:
        self._steps.cancel_host_work()
        self._life.cancel_host_tasks()
        self._drain.cancel_inline()

    def kill(self, error: BaseException) -> None:
        """Stop now, as if the process died here (durable.testing's crash injection).

        Host work is cancelled at once and execute() raises `error`; the workflow's own
        coroutines are kept, not closed, so none of its code runs, until bury().
        """
        self._life.killed = True
        self._stop_host_work()
        self._life.fail(error)

    def bury(self) -> None:
        """Close the coroutines of a killed run (its `finally` blocks may start nothing)."""
        self._life.bury(self.loop)

    def parked(self, child_parked: Callable[[str], bool]) -> bool:
        """Whether only the clock, a message or a parked child can move this run now.

        Virtual time may skip ahead only when every run is parked: no outcome to journal, no
        activity running (one waiting out its back-off on the clock is parked).
        """
        drain = self._drain
        if (
            not self._life.waiting()
            or drain.busy()
            or self._inbox.pulling
            or drain.inline is not None
        ):
            return False
        return self._steps.parked(child_parked)

    def stop_starting(self) -> list[asyncio.Task[Any]]:
        """The runtime is closing: start no new activity; the host tasks still running.

        Not a child's: it waits for a workflow that is being stopped too (its activities in
        flight are its own run's), so close() would wait all of stop_grace for it.
        """
        return self._life.stop_starting(self._steps.child_tasks())

    # -- commands from workflow code -------------------------------------------------------

    def request_activity(
        self,
        spec: ActivitySpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        caller: FrameType | None = None,
        offset: int = 0,
    ) -> asyncio.Future[Any] | RecordedOutcome:
        """Called from workflow code: a future for the outcome of the next step, or the outcome.

        The outcome itself comes back (no future, no suspension) when replay would deliver
        it right after this call anyway: the next recorded event is this step's outcome and
        nothing else in the workflow is ready to run, so the loop would go idle at once.
        Sequential replay then runs without a task switch per step; the decisions are the
        same, since no other workflow code could run in between. `caller` (the workflow
        code's frame) and `offset` (its f_lasti at the call): where it called (journaled
        with the step; None while replaying, whose steps' records name it already).
        """
        encoded = plain = self._packer.pack([list(args), kwargs])
        if encoded is None:
            encoded = encode([list(args), kwargs], context="its arguments", activity=spec.name)
        hashing = new_digest()  # (digest_of, inline)
        hashing.update(encoded)
        digest = hashing.hexdigest()
        step = self._steps.begin("activity", spec.name, digest)
        if self._steps.asked is not None:
            self._steps.asked[step] = spec
        if self._replay_index < len(self._index.events):  # (live: none left, no call)
            recorded = self._recorded_outcome_now(step, spec)
            if recorded is not None:
                return recorded
        future = CommandFuture(self.loop, step, self.command_cancelled)
        command = Command(step, future, None, spec=spec, arguments=encoded)
        command.digest = digest
        if caller is not None:
            sites = self._steps.sites
            if caller is sites.last_frame and offset == sites.last_offset:  # (a loop)
                command.site = sites.last_keys
            else:
                command.site = sites.of(caller.f_code, offset, step, caller)
        if plain is not None and spec.plain_parameters and shareable(args, kwargs):
            command.call = (args, kwargs)  # (no copy to make: nothing in them can be mutated)
        self._steps.add(command)
        return future

    def _recorded_outcome_now(self, step: int, spec: ActivitySpec) -> RecordedOutcome | None:
        index = self._replay_index
        events = self._index.events  # (empty once replay is over: live, nothing recorded)
        if index >= len(events) or self.loop.has_ready():
            return None
        event = events[index]
        if event["k"] != records.DONE or event["s"] != step:  # (inbox records have no step)
            return None
        task = current_task(self.loop)
        if task is None or task.cancelling():
            return None  # a pending cancellation is delivered at the suspension we skip
        self._replay_index = index + 1
        if index + 1 == len(events):  # (what the code asks for next is new)
            self.loop.replaying = False
        self.delivered += 1
        self.loop.set_time(event["t"])
        if "e" in event:
            return RecordedOutcome(None, step_error(self.workflow_id, spec, step, event))
        # (no class call, whose Python __init__ takes CPython 3.11's slow path: one per step)
        outcome: RecordedOutcome = _new_outcome(RecordedOutcome)
        outcome.value = event["r"] if spec.plain_result else rebuild(event["r"], spec)
        outcome.error = None
        return outcome

    def timer_requested(self, handle: StepTimer) -> None:
        step = self._steps.begin("timer", "", "", when=handle.when())
        handle.step = step
        command = Command(step, None, handle)
        sites = self._steps.sites
        found, sites.timer_hint = sites.timer_hint, None
        if step not in self._steps.recorded:  # (a new timer: its record names its call site)
            found = found or timer_site(_RUN_UNTIL_IDLE)
            if found is not None:
                command.site = sites.of(*found, step)
        self._steps.add(command)

    def timer_cancelled(self, handle: StepTimer) -> None:
        command = self._steps.forget(handle.step)
        if command is None:
            return
        if command.scope is not None:
            command.scope.ended("stopped" if self._steps.closed else "cancelled")
        recorded = self._steps.recorded.get(handle.step)
        if command.host is not None or recorded is not None:  # its timer record exists
            self._note_cancelled(records.timer(handle.step, command.fire_at))
        else:
            self._steps.sites.unused(command.site)  # (nothing of it written: the next names it)
        if command.host is not None:
            command.host.cancel()

    def _note_cancelled(self, record: records.TimerRecord | records.WaitRecord) -> None:
        """Journal that the code let go of a timer or a wait (for readers: describe)."""
        recorded = self._steps.recorded.get(record["s"])
        if self._steps.closed or (recorded is not None and recorded.cancelled):
            return  # unloading is not the code letting go; or the journal says so already
        self._deferred.append(encode(records.let_go(record)))

    def command_cancelled(self, step: int) -> None:
        """Workflow code cancelled the wait for `step`: stop its activity, forget it."""
        steps = self._steps
        command = steps.forget(step)
        if command is None:
            return
        if command.scope is not None:
            command.scope.ended("stopped" if steps.closed else "cancelled")
        if command.event is not None:
            self.events.forget(command.event, step)
            self._note_cancelled(records.wait(step, command.event))
        recorded = self._steps.recorded.get(step)
        if command.child is not None and not steps.closed and not (recorded and recorded.outcome):
            self._children.cancel(command, f"its parent {self.workflow_id!r} was cancelled")
        if command.host is None and command.event is None and recorded is None:
            self._steps.sites.unused(command.site)  # (never started: nothing of it written)
        if command.host is not None:
            command.host.cancel()

    def request_event(
        self, name: str, code: CodeType | None = None, offset: int = 0
    ) -> asyncio.Future[Any] | RecordedOutcome:
        """The next event named `name`: at once if one was delivered and not taken yet."""
        found, payload = self.events.take(name)
        step = self._steps.begin("wait", name, "")
        if found:
            return RecordedOutcome(payload, None)
        future = CommandFuture(self.loop, step, self.command_cancelled)
        command = Command(step, future, None, event=name)
        self._steps.wait(command)
        self.events.wait(name, step, future)
        if step not in self._steps.recorded:
            site = None if code is None else self._steps.sites.of(code, offset, step)
            self._deferred.append(encode(records.wait(step, name, site)))
        observing = self._observing
        if observing is not None and observing.run is not None and self._life.live:
            command.scope = observing.run.step_began(step, "wait", name)
        return future

    def set_status(self, value: Any, code: CodeType | None = None, offset: int = 0) -> None:
        encoded = encode(value, context="the workflow's status (durable.set_status)")
        step = self._steps.begin("status", "", "")
        self.status = decode(encoded, path=self.workflow_id, offset=-1)
        if step not in self._steps.recorded:
            site = None if code is None else self._steps.sites.of(code, offset, step)
            record = records.status(step, self.status, self.loop.time(), site)
            self._deferred.append(encode(record))

    def append_stream(self, name: str, value: Any) -> None:
        """Workflow code appends `value` to stream `name`: a step, journaled with the next ones.

        A replay takes the same step and writes nothing (the journal has it): no value is
        written twice, none is lost.

        Raises:
            SerializationError: the value cannot be journaled; nothing was written.
            RecordTooLarge: its record would exceed the store's max_record_size.
        """
        check_stream_name(name)
        step = self._steps.begin("stream", name, "")
        if step in self._steps.recorded:
            return  # (journaled by an earlier run: it encoded then, and does now)
        # Encoded once the step is taken: a value that fails fails the same way on every
        # replay at this step, which no record ever holds, so numbering stays the same.
        record = records.stream_value(step, name, value, self.loop.time())
        self._deferred.append(self._streams.checked(encode_value(record, name, None), name))

    @property
    def stream_counts(self) -> dict[str, int]:
        """How many values each stream has had, this generation and those before it."""
        return self._streams.counts

    def _host_context(self) -> contextvars.Context:
        """What the run's host tasks (its activities) run in: with the run's stream sink.

        Set once here rather than per activity attempt (a ContextVar set and reset costs
        ~170 ns, ~1% of a step); each task gets a copy, as create_task would make.
        """
        sink = self._streams.sink(self._journal, self._clock.time)
        context = contextvars.copy_context()
        context.run(current_sink.set, sink)
        return context

    def patched(self, patch_id: str) -> bool:
        """True where new code may take its new path; False replaying an older journal.

        A journal that recorded the patch says yes; one whose steps go on past this point
        without it was written by the old code, so no; otherwise (new work) yes, recorded.
        The first check decides for the whole run: later checks, at any place, repeat it.
        """
        if not isinstance(patch_id, str) or not patch_id:
            raise WorkflowDefinitionError(f"a patch id is a non-empty string, not {patch_id!r}")
        before = self._steps.next
        decision, new = self._patches.decide(patch_id, before)
        if new:
            self._deferred.append(encode(records.patch(patch_id, before)))
        return decision

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

    def request_child(
        self,
        target: Any,
        spec: WorkflowSpec,
        args: tuple[Any, ...],
        child_id: str | None,
        *,
        detached: bool = False,
        code: CodeType | None = None,
        offset: int = 0,
    ) -> asyncio.Future[Any] | RecordedOutcome:
        """A step that runs workflow `target` (opaque here) with its own journal.

        `detached` is not part of the step's digest: it decides what the parent's end does
        to the child, not which child runs, so changing it does not break a replay.
        """
        activity = self._children.spec_of(spec)
        encoded = encode(
            [list(args), child_id], context=f"the arguments of child workflow {spec.name!r}"
        )
        digest = digest_of(encoded)
        step = self._steps.begin("activity", activity.name, digest)
        if self._steps.asked is not None:  # (a replay check: an override's type is the child's)
            self._steps.asked[step] = activity
        recorded = self._recorded_outcome_now(step, activity)
        if recorded is not None:
            return recorded
        if child_id is None:
            generation = f".g{self.generation}" if self.generation else ""
            child_id = f"{self.workflow_id}{generation}.{step}"
        arguments = decode(encoded, path=self.workflow_id, offset=-1)[0]
        future = CommandFuture(self.loop, step, self.command_cancelled)
        call = ChildCall(target, child_id, arguments, detached=detached, call_site=user_call_site())
        command = Command(step, future, None, spec=activity, digest=digest, child=call)
        if code is not None:
            command.site = self._steps.sites.of(code, offset, step)
        self._steps.add(command)
        return future

    # -- the inbox ------------------------------------------------------------------------

    def request_pull(self) -> None:
        """Journal and deliver the inbox messages this run has not taken yet (in a task)."""
        life = self._life
        if not life.live or life.main_done():
            return
        if self._inbox.begin_pull():
            life.spawn(self._pull(), f"{self.workflow_id} inbox")

    async def _pull(self) -> None:
        life = self._life
        try:
            await self._inbox.pull(self._post, life.main_done)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # an unreadable inbox: the run stops (not final)
            life.fail(error)
        finally:
            life.wake()  # the run may go idle (or be unloaded) now that nothing is pending

    async def take_inbox(self) -> None:
        """Journal and deliver the inbox now, before the run starts anything on going live.

        For a run resumed past its deadline: the runtime posted the deadline's cancellation
        before the run started, so the code is cancelled at the await the replay left it at,
        and an activity it had asked for (one in doubt, say) never starts. Messages before
        the cancellation are delivered first, in order, as a pull would. (A send meanwhile
        is pulled after: execute() asks for a pull.)
        """
        taken = await self._inbox.take_all()
        if taken is None:
            return
        drain = self._drain
        for payload in taken:
            drain.post(payload)
        if drain.outcomes and not drain.draining:
            await self._drain_outcomes()


_new_outcome = object.__new__
_RUN_UNTIL_IDLE = WorkflowLoop.run_until_idle.__code__  # where a timer's site search stops


def current_run() -> WorkflowRun | None:
    """The workflow whose code is running now, or None outside workflow code."""
    loop = our_running_loop()
    if isinstance(loop, WorkflowLoop):
        return loop.owner  # type: ignore[return-value]
    return None


def _padded(types: tuple[Any, ...], count: int) -> list[Any]:
    return [*types[:count], *([Any] * (count - len(types)))]
