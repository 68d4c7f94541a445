"""The bookkeeping of a workflow's steps: commands in flight and how outcomes reach the code.

Small objects the driver (`_workflow_run`) creates for every step, kept apart from it so
each module has one job; no logic of replay here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from ._observer import StepScope
from ._specs import ActivitySpec


class Command:
    """A step the code asked for and whose outcome is not delivered yet."""

    __slots__ = (
        "arguments",
        "call",
        "child",
        "digest",
        "event",
        "fire_at",
        "future",
        "handle",
        "host",
        "scope",
        "site",
        "spec",
        "step",
    )

    def __init__(
        self,
        step: int,
        future: asyncio.Future[Any] | None,  # activities, children, event waits
        handle: asyncio.TimerHandle | None,  # timers
        *,
        spec: ActivitySpec | None = None,
        arguments: bytes = b"",  # encoded [args, kwargs]: the activity runs on a copy
        call: tuple[tuple[Any, ...], dict[str, Any]] | None = None,  # or on these (immutable)
        digest: str = "",
        event: str | None = None,  # an event wait: the event's name
        child: ChildCall | None = None,
    ) -> None:
        self.step = step
        self.future = future
        self.handle = handle
        self.spec = spec
        self.arguments = arguments
        self.call = call
        self.fire_at = float("inf")  # timers: when the host timer fires (epoch seconds)
        self.digest = digest
        self.event = event
        self.child = child
        self.host: asyncio.Task[None] | asyncio.Handle | InlineStart | None = None
        self.site: dict[str, Any] | None = None  # its call site's keys (`w`...: _sites)
        self.scope: StepScope | None = None  # the observer's, for a step started live


class ChildCall:
    """A child workflow a step runs: what to start (opaque to the engine) and its id.

    `detached`: the child outlives its parent (not cancelled when the parent ends).
    `call_site`: where the code called run_child (for ChildIdInUse).
    """

    __slots__ = ("arguments", "call_site", "detached", "target", "trace", "workflow_id")

    def __init__(
        self,
        target: Any,
        workflow_id: str,
        arguments: list[Any],
        *,
        detached: bool = False,
        call_site: str = "",
    ) -> None:
        self.target = target
        self.workflow_id = workflow_id
        self.arguments = arguments
        self.detached = detached
        self.call_site = call_site
        self.trace: dict[str, str] | None = None  # its start record's `tc`: the step's context


class ContinueAsNew(BaseException):
    """Raised by durable.continue_as_new(): ends this generation, starts the next one.

    A BaseException, so `except Exception` in workflow code does not swallow it.
    """

    def __init__(self, arguments: list[Any]) -> None:
        super().__init__("continue_as_new")
        self.arguments = arguments


class CommandFuture(asyncio.Future[Any]):
    """An activity's outcome as workflow code awaits it; cancelling it stops the activity.

    Overriding cancel() (which Task.cancel, wait_for and timeouts all call on the future a
    task waits for) spares a done-callback, and its loop iteration, on every step.
    """

    __slots__ = ("_on_cancel", "_step")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, step: int, on_cancel: Callable[[int], None]
    ) -> None:
        asyncio.Future.__init__(self, loop=loop)  # (not super(): no proxy made per step)
        self._step = step
        self._on_cancel = on_cancel

    def cancel(self, msg: Any = None) -> bool:
        if not super().cancel(msg=msg):
            return False
        self._on_cancel(self._step)
        return True


class RecordedOutcome:
    """An activity's recorded outcome, handed to workflow code without a suspension."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class InlineStart:
    """An activity to run in the draining task once its drain ends (see _run_and_post)."""

    __slots__ = ("cancelled", "coroutine", "step")

    def __init__(
        self, step: int, coroutine: Coroutine[Any, Any, tuple[bytes, dict[str, Any] | None]]
    ) -> None:
        self.step = step
        self.coroutine = coroutine
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.coroutine.close()
