"""A schedule's definition as plain data: validated once, and its fire-time arithmetic.

Pure: no I/O, no clock of its own, no workflow. Times are epoch seconds (floats); the
schedule's workflow (`_schedule_run`) and the describing side (`_schedules`) both ask here
when a schedule fires, so a replay, another process and `durable schedule show` agree.

Cron expressions are parsed and iterated by cronsim (healthchecks.io's, which follows
Debian cron, DST included); intervals are multiples of `every` since the Unix epoch, so
every process computes the same fire times without a shared anchor. Jitter must be shorter
than the gap between fires (the interval; for cron, the shortest gap, see shortest_gap), so
each fire comes before the next one's nominal time.

Daylight saving time (cronsim's rule, Debian cron's): a fire at a fixed local time that a
spring change skips (02:30 in Europe/Berlin on the last Sunday of March) happens once, at
the first instant after the gap (03:00 CEST); one at a fixed local time that an autumn
change repeats (02:30 on the last Sunday of October) happens once, at the first of the two
(02:30 CEST). Expressions with a wildcard or stepped hour ("30 * * * *") are not special:
they skip the missing hour and fire in both copies of the repeated one, as the clock says.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ._durations import Duration, to_seconds
from ._errors import InvalidDuration, InvalidSchedule

CatchupPolicy = Literal["skip", "latest", "all"]
OverlapPolicy = Literal["skip", "queue_one", "allow_all", "cancel_previous"]

CATCHUP_POLICIES: tuple[str, ...] = get_args(CatchupPolicy)
OVERLAP_POLICIES: tuple[str, ...] = get_args(OverlapPolicy)
MAX_CATCHUP_LIMIT = 1000
MAX_BACKFILL = 1000  # fires one backfill may ask for (a bigger range: several backfills)
MIN_EVERY = 0.001  # the shortest interval: its multiples of epoch seconds stay distinct floats
_SCAN_LIMIT = 10_000  # fires counted forward before counting stops (a long outage)
_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,99}")
_NEVER_AFTER = datetime(2000, 1, 1, tzinfo=UTC)  # (a fixed start: validation is repeatable)
GAP_FIRES = 100  # cron fires after _NEVER_AFTER whose gaps jitter must be shorter than
_DST_FIRES = 100  # and fires around each of the time zone's changes that year (at most)


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule does, as journaled (its start record, and `update` commands).

    Attributes:
        name: the schedule's name; its workflow id is `schedule:<name>`.
        workflow: the name of the workflow each fire starts.
        args: its arguments after the fire time (plain, journaled values).
        cron: a cron expression (5 fields, or 6 with seconds first), or None.
        timezone: the IANA time zone the cron expression reads local time in.
        every: the interval in seconds, or None (exactly one of cron and every is set).
        jitter: each fire is delayed by up to this many seconds (0: none).
        catchup: what to do with fires missed while nothing ran.
        catchup_limit: at most how many missed fires "all" runs (the most recent).
        catchup_window: how late a fire may start and still count as on time.
        overlap: what a fire does while an earlier fire's workflow still runs.
    """

    name: str
    workflow: str
    args: tuple[Any, ...] = ()
    cron: str | None = None
    timezone: str = "UTC"
    every: float | None = None
    jitter: float = 0.0
    catchup: CatchupPolicy = "latest"
    catchup_limit: int = 10
    catchup_window: float = 60.0
    overlap: OverlapPolicy = "skip"

    @property
    def workflow_id(self) -> str:
        """The id of the schedule's own workflow."""
        return schedule_id(self.name)

    def to_plain(self) -> dict[str, Any]:
        """The journaled form (a map of plain values)."""
        plain = asdict(self)
        plain["args"] = list(self.args)
        return plain

    @classmethod
    def from_plain(cls, plain: Any) -> ScheduleSpec:
        """Rebuild (and validate again) a spec from its journaled form.

        Raises:
            InvalidSchedule: it is not a spec, or a value in it is not valid.
        """
        if not isinstance(plain, dict) or not isinstance(plain.get("name"), str):
            raise InvalidSchedule(
                schedule=str(plain.get("name") if isinstance(plain, dict) else "?"),
                field="spec",
                value=plain,
                reason="not a schedule definition",
                hint="send commands through ScheduleHandle or `durable schedule`",
            )
        known = {key: plain[key] for key in cls.__dataclass_fields__ if key in plain}
        known["args"] = tuple(known.get("args") or ())
        return validate(**known)

    def zone(self) -> tzinfo:
        """The time zone fire times are shown (and given to the workflow) in."""
        return _zone(self.timezone, self.name)

    def local(self, when: float) -> datetime:
        """Epoch seconds as an aware datetime in the schedule's time zone."""
        return datetime.fromtimestamp(when, self.zone())

    def next_fire(self, after: float) -> float | None:
        """The first nominal fire time strictly after `after` (None: it never fires again)."""
        if self.every is not None:
            return (math.floor(after / self.every) + 1) * self.every
        assert self.cron is not None
        found = next(CronSim(self.cron, self.local(after)), None)
        return None if found is None else found.timestamp()

    def next_fires(self, after: float, count: int) -> list[float]:
        """The next `count` nominal fire times after `after`."""
        fires: list[float] = []
        at: float | None = after
        while len(fires) < count:
            at = self.next_fire(at) if at is not None else None
            if at is None:
                break
            fires.append(at)
        return fires

    def fires_between(self, after: float, until: float, keep: int) -> tuple[list[float], int]:
        """The nominal fire times in (after, until]: the last `keep` of them, and how many.

        The count stops at 10,000 (a long outage of a frequent schedule): then it is a
        lower bound and the kept ones are still the latest, found by counting backwards
        from `until`.
        """
        kept: list[float] = []
        count = 0
        at = self.next_fire(after)
        while at is not None and at <= until:
            count += 1
            kept.append(at)
            if len(kept) > keep:
                del kept[0]
            if count >= _SCAN_LIMIT:
                return self._latest(after, until, keep), count
            at = self.next_fire(at)
        return kept, count

    def _latest(self, after: float, until: float, keep: int) -> list[float]:
        """The last `keep` fire times in (after, until], counted backwards from `until`."""
        if self.every is not None:
            last = math.floor(until / self.every) * self.every
            fires = [last - index * self.every for index in range(keep)]
            return sorted(when for when in fires if when > after)
        assert self.cron is not None
        found: list[float] = []
        start = self.local(until + 1e-6)  # (reverse: strictly before; `until` may be one)
        for moment in CronSim(self.cron, start, reverse=True):
            when = moment.timestamp()
            if when <= after or len(found) >= keep:
                break
            if when <= until:
                found.append(when)
        return sorted(found)

    def jitter_of(self, nominal: float) -> float:
        """The delay of the fire at `nominal`: the same in every process and every replay.

        A hash of the schedule's name and the fire time, not a random draw, so a fire's
        delay is known before it happens (describe shows it) and never differs.
        """
        if not self.jitter:
            return 0.0
        digest = hashlib.sha256(f"{self.name}@{nominal!r}".encode()).digest()
        return self.jitter * (int.from_bytes(digest[:8], "big") / 2**64)

    def fire_id(self, nominal: float) -> str:
        """The workflow id of the fire at `nominal`: one per schedule and fire time."""
        return fire_id(self.name, nominal)


def is_schedule_name(name: str) -> bool:
    """Whether a schedule may have this name (what validate() accepts)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def schedule_id(name: str) -> str:
    """The workflow id of schedule `name`'s own workflow."""
    return f"schedule:{name}"


def fire_id(name: str, nominal: float) -> str:
    """`<name>@<fire time in UTC>`, e.g. `billing@2026-03-01T01:00:00Z`."""
    moment = datetime.fromtimestamp(nominal, UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return f"{name}@{moment.strftime(pattern)}"


def validate(
    *,
    name: str,
    workflow: str,
    args: tuple[Any, ...] = (),
    cron: str | None = None,
    timezone: str = "UTC",
    every: Duration | None = None,
    jitter: Duration = 0,
    catchup: str = "latest",
    catchup_limit: int = 10,
    catchup_window: Duration = "1 min",
    overlap: str = "skip",
) -> ScheduleSpec:
    """Check every option of a schedule, in one place; the spec (InvalidSchedule if not).

    Called when a Schedule is declared and when a journaled spec is read back, so a
    spec that reaches the schedule's workflow is always one it can run.
    """
    label = name if isinstance(name, str) else repr(name)
    if not is_schedule_name(name):
        raise InvalidSchedule(
            schedule=label,
            field="name",
            value=name,
            reason="a schedule name is 1-100 letters, digits, '.', '_' or '-', not starting "
            "with '.'",
            hint="choose such a name (it names the schedule's journal and its fires' ids)",
        )

    def bad(field: str, value: object, reason: str, hint: str) -> InvalidSchedule:
        return InvalidSchedule(schedule=name, field=field, value=value, reason=reason, hint=hint)

    if (cron is None) == (every is None):
        raise bad(
            "cron" if cron is None else "every",
            cron if every is None else every,
            "give exactly one of cron and every",
            "e.g. cron='0 2 1 * *' (with timezone=...) or every='1 hour'",
        )
    if not isinstance(timezone, str):
        raise bad("timezone", timezone, "not a string", "give an IANA name like 'Europe/Berlin'")
    _zone(timezone, name)
    seconds: float | None = None
    if every is not None:
        seconds = _seconds(every, "every", name)
        if seconds <= 0:
            raise bad("every", every, "the interval must be positive", "e.g. every='15 min'")
        if seconds < MIN_EVERY:  # (fire times and their ids would not tell fires apart)
            raise bad(
                "every",
                every,
                f"the interval is shorter than {MIN_EVERY * 1000:g} ms",
                "e.g. every='1 s'",
            )
    if cron is not None:
        _check_cron(cron, timezone, name)
    jitter_seconds = _seconds(jitter, "jitter", name)
    if seconds is not None and jitter_seconds >= seconds:
        raise bad(
            "jitter", jitter, f"it is not shorter than the interval ({seconds:g} s)", "lower it"
        )
    if cron is not None and jitter_seconds > 0:
        gap = shortest_gap(cron, timezone)
        if gap is not None and jitter_seconds >= gap:
            raise bad(
                "jitter",
                jitter,
                f"it is not shorter than the shortest gap between two fires of {cron!r} "
                f"({gap:g} s)",
                "lower it below that gap, so that each fire comes before the next one's time",
            )
    if catchup not in CATCHUP_POLICIES:
        raise bad("catchup", catchup, f"one of {', '.join(CATCHUP_POLICIES)}", "pick one")
    if overlap not in OVERLAP_POLICIES:
        raise bad("overlap", overlap, f"one of {', '.join(OVERLAP_POLICIES)}", "pick one")
    if (
        not isinstance(catchup_limit, int)
        or isinstance(catchup_limit, bool)
        or not 1 <= catchup_limit <= MAX_CATCHUP_LIMIT
    ):
        raise bad(
            "catchup_limit",
            catchup_limit,
            f"an int from 1 to {MAX_CATCHUP_LIMIT}",
            "a bigger gap is for backfill()",
        )
    window = _seconds(catchup_window, "catchup_window", name)
    if not isinstance(workflow, str) or not workflow:
        raise bad("workflow", workflow, "not a workflow name", "give a @durable.workflow")
    if not isinstance(args, tuple | list):
        raise bad("args", args, "not a tuple", "give the workflow's arguments as a tuple")
    return ScheduleSpec(
        name=name,
        workflow=workflow,
        args=tuple(args),
        cron=cron,
        timezone=timezone,
        every=seconds,
        jitter=jitter_seconds,
        catchup=catchup,  # type: ignore[arg-type]
        catchup_limit=catchup_limit,
        catchup_window=window,
        overlap=overlap,  # type: ignore[arg-type]
    )


@functools.lru_cache(maxsize=256)
def shortest_gap(cron: str, timezone: str) -> float | None:
    """The shortest time between two consecutive fires of a valid cron expression (seconds).

    Over GAP_FIRES fires from a fixed instant (2000-01-01; within 10 years), and over the
    fires within a day of each of the time zone's changes in 2000 (a daylight saving change
    can bring two fires closer: 01:00 and 03:00 are one hour apart the night 02:00 is
    skipped). Fixed instants, not now: a journaled spec validates the same on every replay.
    None: the expression fires fewer than twice there. (Cached: describing a schedule
    validates its spec again.)
    """
    zone = _zone(timezone, "?")
    windows = [(_NEVER_AFTER, _NEVER_AFTER + _HORIZON, GAP_FIRES)]
    windows += [(change - _DAY, change + _DAY, _DST_FIRES) for change in _changes(timezone, 2000)]
    gap: float | None = None
    for start, until, most in windows:
        previous: float | None = None
        for count, moment in enumerate(CronSim(cron, start.astimezone(zone))):
            if count >= most or moment > until:
                break
            when = moment.timestamp()
            if previous is not None and (gap is None or when - previous < gap):
                gap = when - previous
            previous = when
    return gap


_DAY = timedelta(days=1)
_HORIZON = timedelta(days=3660)  # (fires further apart than 10 years: any jitter fits)


@functools.lru_cache(maxsize=64)
def _changes(timezone: str, year: int) -> list[datetime]:
    """The instants (to the hour, UTC) where the zone's UTC offset changes in `year`."""
    zone = _zone(timezone, "?")
    changes: list[datetime] = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    offset = day.astimezone(zone).utcoffset()
    while day.year == year:  # (a day at a time, then the hour within the day)
        following = day + _DAY
        if following.astimezone(zone).utcoffset() != offset:
            hour = day
            while hour.astimezone(zone).utcoffset() == offset:
                hour += timedelta(hours=1)
            changes.append(hour)
            offset = hour.astimezone(zone).utcoffset()
        day = following
    return changes


def _seconds(value: Duration, field: str, name: str) -> float:
    try:
        return to_seconds(value, what=field)
    except InvalidDuration as error:
        raise InvalidSchedule(
            schedule=name,
            field=field,
            value=value,
            reason=str(error),
            hint="give seconds, a timedelta or a string such as '15 min' (not negative)",
        ) from None


def _zone(key: str, name: str) -> tzinfo:
    if key == "UTC":
        return UTC
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidSchedule(
            schedule=name,
            field="timezone",
            value=key,
            reason=f"unknown time zone ({type(error).__name__})",
            hint="give an IANA name such as 'Europe/Berlin' or 'UTC' (pip install tzdata "
            "where the system has no time zone database)",
        ) from None


def _check_cron(cron: object, timezone: str, name: str) -> None:
    hint = (
        "use five fields, minute hour day-of-month month day-of-week (or six, seconds "
        "first), e.g. '0 2 1 * *' for 02:00 on the 1st"
    )
    if not isinstance(cron, str):
        raise InvalidSchedule(
            schedule=name, field="cron", value=cron, reason="not a string", hint=hint
        )
    try:
        first = next(CronSim(cron, _NEVER_AFTER.astimezone(_zone(timezone, name))), None)
    except (CronSimError, ValueError, KeyError, IndexError) as error:
        raise InvalidSchedule(
            schedule=name, field="cron", value=cron, reason=str(error) or "unreadable", hint=hint
        ) from None
    if first is None:
        raise InvalidSchedule(
            schedule=name,
            field="cron",
            value=cron,
            reason="it never fires (no match within 50 years)",
            hint="check the day-of-month and month fields",
        )
