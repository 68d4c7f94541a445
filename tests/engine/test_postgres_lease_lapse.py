"""An activity attempt in flight when its runner's PostgreSQL lease may lapse is cancelled
then, by the runner's own clock: another process that takes the workflow over (it can only
once the lease lapsed in the database, no sooner than this runner's own reckoning) never
runs the step while the first attempt still runs. The soak's "two runs at once"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

import durable
from durable import PostgresStore, Runtime
from durable._storage._postgres_journal import PostgresJournal
from tests.crash.soak import LAPSE

pytestmark = pytest.mark.anyio

# (attempt, event, monotonic time) of the activity below, as the outside world saw it
seen: list[tuple[int, str, float]] = []
release = asyncio.Event()


@durable.activity(name="lapse-slow-step")
async def slow_step() -> str:
    """Runs until released (the test's "long" side effect)."""
    attempt = durable.activity_info().attempt
    seen.append((attempt, "start", time.monotonic()))
    outcome = "cancel"
    try:
        await release.wait()
        outcome = "ok"
        return f"done by attempt {attempt}"
    finally:
        seen.append((attempt, outcome, time.monotonic()))


@durable.workflow(name="lapse-flow")
async def lapse_flow() -> str:
    return await slow_step()


async def test_an_attempt_in_flight_is_cancelled_when_its_lease_may_have_lapsed(
    postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen.clear()
    release.clear()
    caplog.set_level(logging.INFO, logger="durable")
    cut_off = PostgresStore(postgres_dsn, lease=0.6)
    async with (
        Runtime(store=cut_off, workflows=[lapse_flow], suspend_after=None) as first,
        Runtime(store=PostgresStore(postgres_dsn, lease=30), workflows=[lapse_flow]) as other,
    ):
        handle = await first.start(lapse_flow, id="lapse-1")
        async with asyncio.timeout(10):
            while not seen:
                await asyncio.sleep(0.01)
        assert cut_off._heartbeat is not None
        cut_off._heartbeat.cancel()  # (nothing renews its lease: cut off from the database)
        (journal,) = cut_off.open_journals()
        serving = asyncio.ensure_future(other.serve(poll_interval=0.05))
        try:
            async with asyncio.timeout(20):
                while len([s for s in seen if s[1] == "start"]) < 2:
                    await asyncio.sleep(0.01)
            # The first attempt ended (cancelled) once its lease may have lapsed, before
            # the process that took the workflow over started the step again (the same
            # attempt: it was in doubt).
            assert [event for _, event, _ in seen] == ["start", "cancel", "start"], seen
            lapses_at = journal.held_until  # (last renewed by a commit: the attempt's intent)
            assert seen[1][2] >= lapses_at, (seen, lapses_at)
            release.set()
            assert await asyncio.wait_for(handle.result(), 10) == "done by attempt 1"
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    # Said, with the time of the lapse, as the soak reads it from a serving process's log.
    as_soak_app_logs = logging.Formatter("%(asctime)s %(process)d %(message)s")
    said = [LAPSE.match(as_soak_app_logs.format(record)) for record in caplog.records]
    (lapse,) = [found for found in said if found is not None]
    assert (lapse["workflow"], lapse["attempt"]) == ("lapse-1", "1")
    assert abs(float(lapse["at"]) - (time.time() - (time.monotonic() - lapses_at))) < 0.01


charged: list[str] = []


@durable.activity(name="lapse-charge", at_most_once=True)
async def charge() -> str:
    charged.append("charged")
    return "charged"


@durable.workflow(name="lapse-guarded")
async def guarded() -> str:
    try:
        return await charge()
    except durable.InDoubtError:
        return "in doubt"


async def test_an_at_most_once_attempt_whose_intent_committed_past_the_lease_never_starts(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intent's commit waited (a slow database) past the lease: committed (nobody had
    claimed the workflow yet), but another process may have by now, so the attempt does not
    start; taken again, the workflow finds the call in doubt."""
    charged.clear()
    store = PostgresStore(postgres_dsn, lease=0.5)
    real = store.committer._commit_on
    slowed: list[int] = []

    async def slow_intent(
        connection: object, batch: dict[PostgresJournal, list[tuple[int, bytes]]]
    ) -> list[PostgresJournal]:
        payloads = [payload for records in batch.values() for _, payload in records]
        if not slowed and any(b"lapse-charge" in payload for payload in payloads):
            slowed.append(1)
            await asyncio.sleep(0.7)  # (past the lease: nothing renews it meanwhile)
        return await real(connection, batch)

    async with Runtime(store=store, workflows=[guarded]) as runtime:
        await store.connect()
        assert store._heartbeat is not None
        store._heartbeat.cancel()
        monkeypatch.setattr(store.committer, "_commit_on", slow_intent)
        assert await asyncio.wait_for(runtime.run(guarded, id="guarded-1"), 20) == "in doubt"
    assert slowed == [1]
    assert charged == []
