"""RuntimeSeams: what durable.testing swaps in a Runtime, passed in, never overridden.

A Runtime takes them as its private `_seams` argument; the defaults are production's: the
system clock, journals as the store opens them, activities as declared, no restarts.
`TestRuntime` passes a virtual clock, its activity doubles, a crash injector's counting
journals, the in-process restart after a simulated crash and its own handle type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ._engine._clock import SYSTEM_CLOCK, Clock
from ._engine._specs import ActivitySpec
from ._storage._interface import Journal, JournalStore


class JournalSeam(Protocol):
    """Every journal a runtime opens or rotates to passes through here."""

    def opened(self, journal: Journal) -> Journal:
        """The journal the runtime uses for one the store just opened."""
        ...

    async def rotate(self, store: JournalStore, journal: Journal, first_payload: bytes) -> Journal:
        """The next generation's journal (`journal` is one `opened` returned)."""
        ...


class AsOpened:
    """Production's journals: as the store opens and rotates them."""

    def opened(self, journal: Journal) -> Journal:
        return journal

    async def rotate(self, store: JournalStore, journal: Journal, first_payload: bytes) -> Journal:
        return await store.rotate(journal, first_payload)


AS_OPENED = AsOpened()


def never_restarts(error: BaseException) -> bool:
    """Production: a run that raised does not resume from its journal in the same task."""
    return False


@dataclass(frozen=True)
class RuntimeSeams:
    """What a Runtime takes from outside instead of deciding itself (defaults: production).

    clock: timers and timestamps. substitute: what runs for an activity (None: the
    declared function). journals: wraps each journal opened or rotated to. restarts_after:
    whether a run that raised this resumes from its journal now. handle: makes the handles
    the runtime returns, from an id and its task (None: a plain WorkflowHandle).
    """

    clock: Clock = SYSTEM_CLOCK
    substitute: Callable[[ActivitySpec], ActivitySpec] | None = None
    journals: JournalSeam = AS_OPENED
    restarts_after: Callable[[BaseException], bool] = never_restarts
    handle: Callable[[str, asyncio.Future[Any] | None], object] | None = None


PRODUCTION = RuntimeSeams()
