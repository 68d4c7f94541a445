"""OpenTelemetry for a runtime: spans and metrics through the engine's observer seam.

Imported only when a Runtime is asked for OpenTelemetry (`durable._telemetry`), so durable
runs without the `otel` extra. It uses the TracerProvider and MeterProvider it is given, or
the application's global ones (looked up through the API's proxies, so a provider set after
the Runtime was made is used too); it never sets a global one. Trace contexts travel as
carriers through the application's global propagator (W3C tracecontext by default).

Spans (their parent in brackets): `workflow <name>` per live run, a generation or a resume
[the starter's span, journaled with the start; linked to the run before it]; `activity
<name>` per attempt, current while the activity runs, so its own calls join the trace
[the run]; `timer`, `wait_for_event <name>`, `child <name>` per step started live [the
run; a child's own run is the child of its step's span]; `event <name>` when a run takes an
event from its inbox [the sender's span; linked to the run]. Replay emits nothing.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from ._engine._observer import AttemptScope, Carrier, RunObserver, StepScope

_SCOPE = "durable"
try:
    _VERSION: str | None = importlib.metadata.version("aiodurable")
except importlib.metadata.PackageNotFoundError:  # (run from a source tree)
    _VERSION = None
_FAILED = frozenset({"failed", "stopped"})
logger = logging.getLogger("durable")
P = ParamSpec("P")
R = TypeVar("R")


def _complain(telemetry: OpenTelemetryObserver, error: Exception) -> None:
    """OpenTelemetry raised: said once with the traceback, then at debug level."""
    first = not telemetry.complained
    telemetry.complained = True
    logger.log(
        logging.WARNING if first else logging.DEBUG,
        "OpenTelemetry raised %s: %s; durable goes on without that span or measurement "
        "(a span processor, exporter or meter of the application's failed)",
        type(error).__name__,
        error,
        exc_info=error if first else None,
    )


def _guarded(fallback: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A method of the observer that never raises: on an error, `fallback` (said once)."""

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except Exception as error:  # (the application's SDK: anything)
                _complain(_telemetry_of(args[0]), error)
                return fallback() if callable(fallback) else fallback  # type: ignore[no-any-return]

        return guarded

    return wrap


def _telemetry_of(owner: Any) -> OpenTelemetryObserver:
    """The observer a guarded method's object belongs to."""
    if isinstance(owner, OpenTelemetryObserver):
        return owner
    found: OpenTelemetryObserver = owner._telemetry  # (a _Run, _Step or _Attempt)
    return found


class _Unobserved:
    """What a run, a step or an attempt is observed by once OpenTelemetry raised: nothing."""

    def carrier(self) -> Carrier | None:
        return None

    def step_began(self, step: int, kind: str, name: str) -> StepScope:
        return self

    def attempt_began(self, activity: str, step: int, attempt: int) -> AttemptScope:
        return self

    def event_taken(self, name: str, sender: Carrier | None) -> None:
        return None

    def cancel_taken(self, reason: str, sender: Carrier | None) -> None:
        return None

    def ended(self, *args: Any, **kwargs: Any) -> None:
        return None


def _error_type(error: BaseException | None) -> str | None:
    if error is None:
        return None
    error_type = getattr(error, "error_type", None)  # (WorkflowFailed, ActivityError: the cause's)
    if isinstance(error_type, str):
        return error_type
    klass = type(error)
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def _carrier_of(span: Span) -> Carrier | None:
    carrier: Carrier = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier or None


def _link_to(carrier: Carrier | None) -> list[Link]:
    if not carrier:
        return []
    span_context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return [Link(span_context)] if span_context.is_valid else []


class OpenTelemetryObserver:
    """The runtime's observer (the engine's Observer), its metrics and its carriers."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        tracers = tracer_provider if tracer_provider is not None else trace
        meters = meter_provider if meter_provider is not None else metrics
        self.tracer = tracers.get_tracer(_SCOPE, _VERSION)
        self._meters = meters
        meter = meters.get_meter(_SCOPE, _VERSION)
        self.steps = meter.create_counter(
            "durable.steps", unit="{step}", description="Steps that ended, live (not replayed)"
        )
        self.step_duration = meter.create_histogram(
            "durable.step.duration", unit="s", description="From a step's start to its outcome"
        )
        self.retries = meter.create_counter(
            "durable.activity.retries", unit="{attempt}", description="Attempts to be retried"
        )
        self.failures = meter.create_counter(
            "durable.failures",
            unit="{failure}",
            description="Activities, children and workflows that failed (finally)",
        )
        self.sync_duration = meter.create_histogram(
            "durable.journal.sync.duration", unit="s", description="One journal sync (commit)"
        )
        self.sync_batch = meter.create_histogram(
            "durable.journal.sync.batch",
            unit="{append}",
            description="Appends one sync made durable",
        )
        self.running = meter.create_up_down_counter(
            "durable.workflows.running", unit="{workflow}", description="Runs loaded and live"
        )
        self.sleeping = meter.create_up_down_counter(
            "durable.workflows.sleeping",
            unit="{workflow}",
            description="Workflows unloaded while they sleep or wait for an event",
        )
        self._asleep: set[str] = set()  # ids unloaded by this runtime (the sleeping gauge)
        self.complained = False  # OpenTelemetry raised once already (see _guarded)

    # -- the runtime's side -----------------------------------------------------------------

    @_guarded(None)
    def capture(self) -> Carrier | None:
        """The caller's trace context as a carrier (None: no span is current)."""
        carrier: Carrier = {}
        propagate.inject(carrier)
        return carrier or None

    @_guarded(None)
    def synced(self, seconds: float, appends: int) -> None:
        """A journal sync (or a PostgreSQL commit) took `seconds` for `appends` appends."""
        self.sync_duration.record(seconds)
        self.sync_batch.record(appends)

    @_guarded(None)
    def queue_wait(
        self, queue: str, began: float, workflow_id: str, parent: Carrier | None
    ) -> Carrier | None:
        """A queued workflow was admitted now: its wait since `began` (epoch seconds).

        Under the enqueuer's span (`parent`); its carrier is the workflow's run's parent.
        """
        span = self.tracer.start_span(
            f"queue {queue}",
            context=propagate.extract(parent) if parent else otel_context.Context(),
            attributes={"durable.queue": queue, "durable.workflow.id": workflow_id},
            start_time=int(began * 1e9),
        )
        span.end()
        return _carrier_of(span)

    def watch_queues(self, waiting: Callable[[], dict[str, int]], store: str) -> None:
        """Report `waiting()` (requests per queue) as the gauge durable.workflows.queued.

        On a meter of the runtime's own (scope attribute `durable.store`): a gauge's
        callback is registered once per meter, and two runtimes may share a provider.
        Held weakly: a closed runtime's queues stop being reported (the meter lives on).
        """
        reference = weakref.WeakMethod(waiting)

        def observe(_: CallbackOptions) -> Iterable[Observation]:
            found = reference()
            if found is None:
                return []
            return [Observation(count, {"durable.queue": name}) for name, count in found().items()]

        meter = self._meters.get_meter(_SCOPE, _VERSION, attributes={"durable.store": store})
        meter.create_observable_gauge(
            "durable.workflows.queued",
            callbacks=[observe],
            unit="{workflow}",
            description="Requests waiting in each queue this runtime declares (file store)",
        )

    @_guarded(None)
    def parked(self, workflow_id: str, workflow_name: str) -> None:
        """recover() parked an unloaded sleeper without loading it: it counts as sleeping."""
        if workflow_id not in self._asleep:
            self._asleep.add(workflow_id)
            self.sleeping.add(1, {"durable.workflow.name": workflow_name})

    # -- the engine's Observer -----------------------------------------------------------------

    @_guarded(_Unobserved)
    def run_began(
        self,
        *,
        workflow_id: str,
        workflow_name: str,
        generation: int,
        parent: Carrier | None,
        previous: Carrier | None,
        replayed: int,
        began: int,
    ) -> RunObserver:
        if workflow_id in self._asleep:
            self._asleep.discard(workflow_id)
            self.sleeping.add(-1, {"durable.workflow.name": workflow_name})
        self.running.add(1, {"durable.workflow.name": workflow_name})
        parent_context = propagate.extract(parent) if parent else otel_context.Context()
        attributes: dict[str, Any] = {
            "durable.workflow.id": workflow_id,
            "durable.workflow.name": workflow_name,
            "durable.workflow.generation": generation,
            "durable.replayed": replayed,
        }
        span = self.tracer.start_span(
            f"workflow {workflow_name}",
            context=parent_context,
            attributes=attributes,
            links=_link_to(previous),
            start_time=began,
        )
        return _Run(self, span, workflow_id, workflow_name)


class _Run:
    """One live run: its span, the parent of its steps' spans."""

    def __init__(
        self, telemetry: OpenTelemetryObserver, span: Span, workflow_id: str, workflow_name: str
    ) -> None:
        self._telemetry = telemetry
        self._span = span
        self._context = trace.set_span_in_context(span, otel_context.Context())
        self._id = workflow_id
        self._name = workflow_name
        self.metric_attributes = {"durable.workflow.name": workflow_name}
        # (kind, outcome) -> a step's metric attributes, built once per run
        self._step_attributes: dict[tuple[str, str], dict[str, str]] = {}

    def step_attributes(self, kind: str, outcome: str) -> dict[str, str]:
        """The metric attributes of a step of `kind` that ended `outcome` (shared, not copied)."""
        found = self._step_attributes.get((kind, outcome))
        if found is None:
            found = self._step_attributes[(kind, outcome)] = {
                **self.metric_attributes,
                "durable.step.kind": kind,
                "durable.outcome": outcome,
            }
        return found

    @_guarded(None)
    def carrier(self) -> Carrier | None:
        return _carrier_of(self._span)

    @_guarded(_Unobserved)
    def step_began(self, step: int, kind: str, name: str) -> StepScope:
        span = None
        if kind != "activity":  # (an activity's attempts have spans of their own)
            span_name = {"timer": "timer", "wait": "wait_for_event"}.get(kind, kind)
            span = self._telemetry.tracer.start_span(
                f"{span_name} {name}" if name else span_name,
                context=self._context,
                attributes={
                    "durable.workflow.id": self._id,
                    "durable.workflow.name": self._name,
                    "durable.step": step,
                    "durable.step.kind": kind,
                },
            )
        return _Step(self, span, kind, time.monotonic())

    @_guarded(_Unobserved)
    def attempt_began(self, activity: str, step: int, attempt: int) -> AttemptScope:
        span = self._telemetry.tracer.start_span(
            f"activity {activity}",
            context=self._context,
            attributes={
                "durable.workflow.id": self._id,
                "durable.workflow.name": self._name,
                "durable.activity.name": activity,
                "durable.step": step,
                "durable.attempt": attempt,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return _Attempt(self, span, activity, token)

    @_guarded(None)
    def event_taken(self, name: str, sender: Carrier | None) -> None:
        span = self._telemetry.tracer.start_span(
            f"event {name}",
            context=propagate.extract(sender) if sender else otel_context.Context(),
            kind=SpanKind.CONSUMER,
            attributes={
                "durable.workflow.id": self._id,
                "durable.workflow.name": self._name,
                "durable.event.name": name,
            },
            links=[Link(self._span.get_span_context())],
        )
        span.end()

    @_guarded(None)
    def cancel_taken(self, reason: str, sender: Carrier | None) -> None:
        span = self._telemetry.tracer.start_span(
            "cancel",
            context=propagate.extract(sender) if sender else otel_context.Context(),
            kind=SpanKind.CONSUMER,
            attributes={
                "durable.workflow.id": self._id,
                "durable.workflow.name": self._name,
                "durable.cancel.reason": reason,
            },
            links=[Link(self._span.get_span_context())],
        )
        span.end()

    @_guarded(None)
    def ended(self, how: str, error: BaseException | None) -> None:
        telemetry, span = self._telemetry, self._span
        telemetry.running.add(-1, self.metric_attributes)
        span.set_attribute("durable.outcome", how)
        if how in _FAILED:
            error_type = _error_type(error)
            if error_type is not None:
                span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, str(error) if error else how))
            if how == "failed":
                telemetry.failures.add(
                    1, {**self.metric_attributes, "durable.failure.of": "workflow"}
                )
        elif how == "suspended":
            telemetry._asleep.add(self._id)
            telemetry.sleeping.add(1, self.metric_attributes)
        span.end()


class _Step:
    """A timer, event wait, child or activity step started live; a span but for activities."""

    def __init__(self, run: _Run, span: Span | None, kind: str, began: float) -> None:
        self._run = run
        self._telemetry = run._telemetry
        self._span = span
        self._kind = kind
        self._began = began

    @_guarded(None)
    def carrier(self) -> Carrier | None:
        return _carrier_of(self._span) if self._span is not None else None

    @_guarded(None)
    def ended(
        self, outcome: str, error_type: str | None = None, link: Carrier | None = None
    ) -> None:
        run = self._run
        telemetry = run._telemetry
        if outcome != "stopped":  # (unloaded or stopped: the step goes on in a later run)
            attributes = run.step_attributes(self._kind, outcome)
            telemetry.steps.add(1, attributes)
            telemetry.step_duration.record(time.monotonic() - self._began, attributes)
            if outcome == "failed":
                telemetry.failures.add(
                    1, {**run.metric_attributes, "durable.failure.of": self._kind}
                )
        span = self._span
        if span is None:
            return
        span.set_attribute("durable.outcome", outcome)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, error_type))
        for found in _link_to(link):
            span.add_link(found.context)
        span.end()


class _Attempt:
    """One activity attempt: its span is current while the activity runs."""

    def __init__(self, run: _Run, span: Span, activity: str, token: Any) -> None:
        self._run = run
        self._telemetry = run._telemetry
        self._span = span
        self._activity = activity
        self._token = token

    @_guarded(None)
    def ended(self, outcome: str, error: BaseException | None = None) -> None:
        otel_context.detach(self._token)
        span = self._span
        span.set_attribute("durable.outcome", outcome)
        if error is not None:
            error_type = _error_type(error)
            assert error_type is not None
            span.set_attribute("error.type", error_type)
            if outcome != "cancelled":
                span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error) or error_type))
            if outcome == "retrying":
                run = self._run
                run._telemetry.retries.add(
                    1,
                    {
                        **run.metric_attributes,
                        "durable.activity.name": self._activity,
                        "error.type": error_type,
                    },
                )
        span.end()
