"""durable/_schedule_spec.py: validation in one place, fire times, DST, jitter, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import durable
from durable._schedule_spec import ScheduleSpec, fire_id, shortest_gap, validate

BERLIN = ZoneInfo("Europe/Berlin")


@durable.workflow
async def job(fire: datetime) -> None:
    pass


def spec(**options: Any) -> ScheduleSpec:
    options.setdefault("name", "s")
    options.setdefault("workflow", "job")
    return validate(**options)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp()


def local(spec_: ScheduleSpec, fires: list[float]) -> list[str]:
    return [spec_.local(when).isoformat() for when in fires]


# -- bad input: one exception type, naming the schedule and what to do ---------------------


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"cron": "61 * * * *"}, "cron", "Bad minute"),
        ({"cron": "0 2 * *"}, "cron", "five fields"),
        ({"cron": "* * */20 * 1L"}, "cron", "never fires"),
        ({"cron": "0 0 30 2 *"}, "cron", "day-of-month"),  # (February 30th)
        ({"cron": 5}, "cron", "not a string"),
        ({"cron": "0 2 * * *", "timezone": "Europe/Atlantis"}, "timezone", "unknown time zone"),
        ({"cron": "0 2 * * *", "timezone": "../etc/passwd"}, "timezone", "unknown time zone"),
        ({"every": -5}, "every", "not negative"),
        ({"every": 0}, "every", "must be positive"),
        ({"every": 1e-9}, "every", "shorter than 1 ms"),  # (fires at one float, one id)
        ({"every": "soon"}, "every", "15 min"),
        ({}, "cron", "exactly one of cron and every"),
        ({"cron": "* * * * *", "every": 60}, "every", "exactly one of cron and every"),
        ({"every": 60, "jitter": -1}, "jitter", "not negative"),
        ({"every": 60, "jitter": 60}, "jitter", "shorter than the interval"),
        ({"cron": "*/5 * * * *", "jitter": "5 min"}, "jitter", "shortest gap between two fires"),
        ({"cron": "0 9,17 * * 1-5", "jitter": "8 h"}, "jitter", "(28800 s)"),  # (not the 16 h)
        ({"every": 60, "catchup": "some"}, "catchup", "skip, latest, all"),
        ({"every": 60, "overlap": "queue"}, "overlap", "queue_one"),
        ({"every": 60, "catchup_limit": 0}, "catchup_limit", "from 1 to 1000"),
        ({"every": 60, "catchup_limit": True}, "catchup_limit", "from 1 to 1000"),
        ({"every": 60, "catchup_window": -1}, "catchup_window", "not negative"),
        ({"every": 60, "name": "a/b"}, "name", "1-100 letters"),
        ({"every": 60, "name": ""}, "name", "1-100 letters"),
    ],
)
def test_bad_options_are_one_clear_error(options: dict[str, Any], field: str, words: str) -> None:
    options.setdefault("name", "nightly")
    with pytest.raises(durable.InvalidSchedule) as raised:
        durable.Schedule(workflow=job, **options)
    error = raised.value
    assert isinstance(error, durable.DurableError)
    assert isinstance(error, ValueError)
    assert error.field == field
    assert words in str(error)
    assert repr(options["name"]) in str(error)
    assert "Nothing was started" in str(error)


def test_a_schedule_needs_a_durable_workflow() -> None:
    async def plain(fire: datetime) -> None:
        pass

    with pytest.raises(durable.WorkflowDefinitionError, match=r"@durable\.workflow"):
        durable.Schedule("s", plain, every=60)  # type: ignore[arg-type]


def test_a_journaled_spec_is_validated_again() -> None:
    good = spec(every=60).to_plain()
    assert ScheduleSpec.from_plain(good) == spec(every=60)
    with pytest.raises(durable.InvalidSchedule):
        ScheduleSpec.from_plain({**good, "every": -1})
    with pytest.raises(durable.InvalidSchedule, match="not a schedule definition"):
        ScheduleSpec.from_plain(["not", "a", "map"])


# -- fire times ----------------------------------------------------------------------------


def test_monthly_at_two_in_berlin() -> None:
    monthly = spec(cron="0 2 1 * *", timezone="Europe/Berlin")
    fires = monthly.next_fires(berlin(2026, 1, 15), 4)
    assert local(monthly, fires) == [
        "2026-02-01T02:00:00+01:00",
        "2026-03-01T02:00:00+01:00",
        "2026-04-01T02:00:00+02:00",  # (summer time: 00:00 UTC)
        "2026-05-01T02:00:00+02:00",
    ]


def test_spring_forward_a_missing_local_time_fires_once_right_after_the_gap() -> None:
    # 2026-03-29: Berlin's clocks jump from 02:00 to 03:00; 02:30 does not exist that day.
    daily = spec(cron="30 2 * * *", timezone="Europe/Berlin")
    fires = daily.next_fires(berlin(2026, 3, 28, 12), 3)
    assert local(daily, fires) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    hourly = spec(cron="30 * * * *", timezone="Europe/Berlin")  # a wildcard hour: no 02:30
    fires = hourly.next_fires(berlin(2026, 3, 29, 1), 2)
    assert local(hourly, fires) == ["2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"]


def test_fall_back_a_repeated_local_time_fires_once_the_first_time() -> None:
    # 2026-10-25: Berlin's clocks go back from 03:00 to 02:00; 02:30 happens twice.
    daily = spec(cron="30 2 * * *", timezone="Europe/Berlin")
    fires = daily.next_fires(berlin(2026, 10, 24, 12), 2)
    assert local(daily, fires) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    hourly = spec(cron="30 * * * *", timezone="Europe/Berlin")  # a wildcard hour: both
    fires = hourly.next_fires(berlin(2026, 10, 25, 1, 45), 3)
    assert [datetime.fromtimestamp(when, UTC).hour for when in fires] == [0, 1, 2]
    assert local(hourly, fires)[:2] == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]


def test_intervals_are_multiples_since_the_epoch() -> None:
    hourly = spec(every="1 hour")
    start = datetime(2026, 1, 1, 10, 20, tzinfo=UTC).timestamp()
    fires = hourly.next_fires(start, 2)
    assert [datetime.fromtimestamp(w, UTC).strftime("%H:%M") for w in fires] == ["11:00", "12:00"]
    assert hourly.next_fire(fires[0]) == fires[1]  # strictly after


def test_fires_between_keeps_the_latest_and_counts_them_all() -> None:
    minutely = spec(every=60)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    kept, count = minutely.fires_between(start, start + 600, 3)
    assert count == 10
    assert kept == [start + 480, start + 540, start + 600]
    year = 365 * 86400  # a year's outage of a minutely schedule: counted up to the cap
    kept, count = minutely.fires_between(start, start + year, 3)
    assert count == 10_000
    assert kept == [start + year - 120, start + year - 60, start + year]
    nightly = spec(cron="0 2 * * *", timezone="Europe/Berlin")
    kept, _ = nightly.fires_between(start, start + year, 2)
    assert local(nightly, kept) == ["2026-12-30T02:00:00+01:00", "2026-12-31T02:00:00+01:00"]
    kept, count = spec(cron="* * * * *").fires_between(start, start + year, 2)
    assert (count, kept) == (10_000, [start + year - 60, start + year])


def test_cron_jitter_must_be_shorter_than_the_shortest_gap() -> None:
    """Over the next fires from a fixed instant, and around the time zone's changes: 01:00
    and 03:00 are two hours apart, but one the night the clocks skip 02:00."""
    assert shortest_gap("0 2 1 * *", "UTC") == 28 * 86400  # (February)
    assert spec(cron="0 2 1 * *", jitter="27 days").jitter == 27 * 86400
    assert shortest_gap("0 1,3 * * *", "UTC") == 2 * 3600
    assert shortest_gap("0 1,3 * * *", "Europe/Berlin") == 3600
    spec(cron="0 1,3 * * *", jitter="59 min", timezone="Europe/Berlin")
    with pytest.raises(durable.InvalidSchedule) as raised:
        spec(cron="0 1,3 * * *", jitter="90 min", timezone="Europe/Berlin")
    assert (raised.value.field, raised.value.schedule) == ("jitter", "s")
    assert "(3600 s)" in str(raised.value)
    assert shortest_gap("0 0 29 2 *", "UTC") == (4 * 365 + 1) * 86400  # (leap days)
    assert shortest_gap("0 0 1 1 *", "UTC") == 365 * 86400
    # A journaled spec is validated again when read back, the same whenever that is.
    jittery = spec(cron="*/10 * * * *", jitter="9 min")
    assert ScheduleSpec.from_plain(jittery.to_plain()) == jittery


def test_jitter_is_deterministic_bounded_and_differs_per_fire() -> None:
    jittery = spec(every="1 hour", jitter="10 min")
    fires = jittery.next_fires(0, 50)
    delays = [jittery.jitter_of(when) for when in fires]
    assert all(0 <= delay < 600 for delay in delays)
    assert len(set(delays)) == 50
    assert delays == [spec(every="1 hour", jitter="10 min").jitter_of(w) for w in fires]
    assert spec(every="1 hour").jitter_of(fires[0]) == 0


def test_fire_ids_name_the_schedule_and_the_utc_fire_time() -> None:
    when = datetime(2026, 3, 1, 2, tzinfo=BERLIN).timestamp()
    assert fire_id("billing", when) == "billing@2026-03-01T01:00:00Z"
    assert fire_id("b", when + 0.25) == "b@2026-03-01T01:00:00.250000Z"
    autumn = spec(cron="30 * * * *", timezone="Europe/Berlin")
    first, second = autumn.next_fires(berlin(2026, 10, 25, 2, 15), 2)
    assert autumn.fire_id(first) != autumn.fire_id(second)  # (the two 02:30s: UTC differs)
    assert second - first == timedelta(hours=1).total_seconds()


def test_dst_in_new_york_follows_the_same_rules() -> None:
    """America/New_York changes at 02:00 local: 02:30 is missing on 2026-03-08 (fires at
    03:00 EDT), and 01:30 happens twice on 2026-11-01 (fires once, the first, EDT)."""
    new_york = ZoneInfo("America/New_York")

    def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
        return datetime(year, month, day, hour, minute, tzinfo=new_york).timestamp()

    spring = spec(cron="30 2 * * *", timezone="America/New_York")
    assert local(spring, spring.next_fires(at(2026, 3, 7, 12), 2)) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    autumn = spec(cron="30 1 * * *", timezone="America/New_York")
    assert local(autumn, autumn.next_fires(at(2026, 10, 31, 12), 2)) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]
    hourly = spec(cron="30 * * * *", timezone="America/New_York")
    assert local(hourly, hourly.next_fires(at(2026, 11, 1, 0, 45), 2)) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
    ]
