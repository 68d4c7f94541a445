"""The seam observability plugs into: what the engine tells an observer, and when.

A run calls its observer at a few points only, and only while it runs live: when it goes
live (its replay done), when a step it starts on the host begins and ends (a timer, an
event wait, a child, an activity), around each activity attempt (the activity runs inside
it), and when the run stops. Replay calls nothing: a replayed step is not a new step.
Without an observer (the default) each point is one `is None` test.

The runtime's OpenTelemetry support (`durable/_otel.py`) is the one implementation; the
engine knows only these shapes. A leaf: it imports nothing from durable.

Trace contexts cross process boundaries as *carriers*: small str -> str maps (W3C
`traceparent`, `tracestate`) that the journal keeps (the start record's `tc`, an event's
or a cancellation's `tc`, a `run` record's `tc`); the engine stores and hands them on
without reading them.
"""

from __future__ import annotations

from typing import Protocol

Carrier = dict[str, str]


class Observing:
    """What a run with an observer holds of it: one attribute of the run, not five.

    (A WorkflowRun's attributes are read on every step: past 30 of them, CPython 3.11 stops
    sharing their keys between instances and each read slows down. So they stay here.)
    """

    __slots__ = ("carrier", "observer", "previous", "run")

    def __init__(self, observer: Observer, previous: Carrier | None) -> None:
        self.observer = observer
        self.previous = previous  # the run before this one (its `run` record, or in memory)
        self.run: RunObserver | None = None  # once live
        self.carrier: Carrier | None = None  # this run's context, once live


class StepScope(Protocol):
    """A step started live (a timer, an event wait, a child, an activity), until its end."""

    def ended(
        self, outcome: str, error_type: str | None = None, link: Carrier | None = None
    ) -> None:
        """Its outcome: "completed", "failed", "fired", "received", "cancelled", "stopped".

        `link`: the carrier of what ended it from outside (the sender of an event).
        """

    def carrier(self) -> Carrier | None:
        """Its context as a carrier (a child's start record journals it: its parent)."""


class AttemptScope(Protocol):
    """One activity attempt; the activity's code runs inside it (its current context)."""

    def ended(self, outcome: str, error: BaseException | None = None) -> None:
        """How it ended ("completed", "retrying", "failed", "cancelled"); leaves its context."""


class RunObserver(Protocol):
    """What one live run of a workflow reports (a run: a generation, or a resume)."""

    def carrier(self) -> Carrier | None:
        """This run's context (journaled in a `run` record: the next run links to it)."""

    def step_began(self, step: int, kind: str, name: str) -> StepScope:
        """A step started live: kind "activity", "child", "timer" or "wait"."""

    def attempt_began(self, activity: str, step: int, attempt: int) -> AttemptScope:
        """An activity attempt starts, on the task (or thread) that runs it."""

    def event_taken(self, name: str, sender: Carrier | None) -> None:
        """An event from the inbox was journaled and delivered (`sender`: its carrier)."""

    def cancel_taken(self, reason: str, sender: Carrier | None) -> None:
        """A cancellation from the inbox was journaled and delivered (`sender`: its carrier)."""

    def ended(self, how: str, error: BaseException | None) -> None:
        """The run stopped, and how.

        "completed", "failed", "cancelled", "suspended", "continued", or "stopped" (an
        error, a crash, the runtime closing: `error`).
        """


class Observer(Protocol):
    """The runtime's observer: one RunObserver per live run."""

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
        """A run went live: its observer.

        `parent`: the starter's carrier (the start record's `tc`); `previous`: the run
        before it (a crash's, a sleep's, a generation's); `replayed`: how many recorded
        events it replayed; `began`: when its replay began (wall clock, ns since the epoch).
        """
