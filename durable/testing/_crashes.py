"""Crash injection: a runtime that dies, as a SIGKILL would, at a chosen journal record.

The test runtime counts every record it writes. At the crash point it kills every loaded run
at once (their host work is cancelled, their workflow code stops where it is, no further
record is written) and then resumes each from its journal, as a restarted process would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import SimulatedCrash
from .._storage._frames import StoredRecord
from .._storage._interface import Journal, JournalStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from hypothesis.strategies import SearchStrategy


@dataclass(frozen=True)
class CrashPoint:
    """Where a test runtime dies: counted in the records it writes from the start.

    Attributes:
        after_record: how many records reach the journal before the crash (0: none).
        late: False: die right after that record is written, before any more code runs.
            True: die just before the next record is written, so the code that produced
            it has run (an activity's side effect, say) but its record is lost: the
            in-doubt case an idempotency key is for.
    """

    after_record: int
    late: bool = False

    def __post_init__(self) -> None:
        if self.after_record < 0:
            raise ValueError(f"after_record is a count of records, not {self.after_record}")

    def __str__(self) -> str:
        if self.late or self.after_record == 0:
            return f"after record {self.after_record}, with record {self.after_record + 1} lost"
        return f"right after record {self.after_record}"


def every_crash_point(records: int) -> list[CrashPoint]:
    """Every distinct crash point of a run that writes `records` records, in order."""
    points = [CrashPoint(0, late=True)]
    for count in range(1, records + 1):
        points.append(CrashPoint(count))
        if count < records:
            points.append(CrashPoint(count, late=True))
    return points


def crash_points(max_record: int = 40) -> SearchStrategy[CrashPoint]:
    """A hypothesis strategy of crash points (for @given); needs hypothesis installed.

    Args:
        max_record: the largest record count to crash after; points beyond the records a
            run writes do not crash it (the run simply completes).
    """
    from hypothesis import strategies  # noqa: PLC0415 (an optional dependency: tests only)

    return strategies.builds(
        CrashPoint,
        after_record=strategies.integers(min_value=0, max_value=max_record),
        late=strategies.booleans(),
    )


class CrashInjector:
    """Counts the records a runtime writes and kills it at the crash point, once."""

    def __init__(self, point: CrashPoint, kill: Callable[[SimulatedCrash], None]) -> None:
        self.point = point
        self.written = 0
        self.crash: SimulatedCrash | None = None  # set once it fired
        self._kill = kill

    @property
    def armed(self) -> bool:
        return self.crash is None

    def before_record(self) -> None:
        """A record is about to be written; die instead if the crash point says so."""
        if self.crash is not None:
            raise SimulatedCrash(str(self.point))  # a dead process writes nothing more
        point = self.point
        if self.written == point.after_record and (point.late or point.after_record == 0):
            self._fire()

    def after_record(self) -> None:
        """A record was written; die now if it was the last one before the crash."""
        self.written += 1
        point = self.point
        if not point.late and self.written == point.after_record:
            self._fire()

    # -- the runtime's journal seam (RuntimeSeams.journals) ---------------------------------

    def opened(self, journal: Journal) -> Journal:
        """Count the records of a journal opened before the crash (a dead process opens none)."""
        return CountedJournal(journal, self) if self.armed else journal

    async def rotate(self, store: JournalStore, journal: Journal, first_payload: bytes) -> Journal:
        """The next generation's journal; its first record counts like any other."""
        if not isinstance(journal, CountedJournal):
            return await store.rotate(journal, first_payload)
        self.before_record()
        rotated = await store.rotate(journal.inner, first_payload)
        try:
            self.after_record()
        except SimulatedCrash:
            await rotated.close()
            raise
        return CountedJournal(rotated, self)

    def _fire(self) -> None:
        self.crash = SimulatedCrash(str(self.point))
        self._kill(self.crash)
        raise SimulatedCrash(str(self.point))


class CountedJournal:
    """A journal whose every record passes the crash injector first."""

    def __init__(self, inner: Journal, injector: CrashInjector) -> None:
        self.inner = inner
        self._injector = injector

    @property
    def records(self) -> list[StoredRecord]:
        return self.inner.records

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def held_until(self) -> float | None:
        return self.inner.held_until

    def write(self, payload: bytes) -> None:
        self._injector.before_record()
        self.inner.write(payload)
        self._injector.after_record()

    async def append(self, payload: bytes) -> None:
        self.write(payload)  # (dies here, if it must, before waiting for the sync)
        await self.inner.flush()

    async def flush(self) -> None:
        if self._injector.crash is not None:
            raise SimulatedCrash(str(self._injector.point))
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()  # (what was written before the crash is on disk)

    async def suspend(self) -> None:
        if self._injector.crash is not None:
            raise SimulatedCrash(str(self._injector.point))
        await self.inner.suspend()

    async def resume(self) -> None:
        await self.inner.resume()

    async def note(
        self, *, finished: bool = False, wake_at: float | None = None, inbox_next: int | None = None
    ) -> None:
        await self.inner.note(finished=finished, wake_at=wake_at, inbox_next=inbox_next)

    def check_held(self) -> None:
        self.inner.check_held()
