"""Unloaded sleepers as rows (no task each), and recover() parking them without a replay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

import durable
import durable._workflow_tasks as workflow_tasks
from durable import Runtime, WorkflowCancelled
from durable._encoding import decode, encode
from durable._engine import _records as records
from durable._engine._workflow_run import WorkflowRun
from durable._errors import JournalCorrupted
from durable._sleepers import Parked, Sleepers, parked_at
from durable._storage._directory import JournalDirectory
from durable._storage._frames import StoredRecord
from durable.testing import TestRuntime
from durable.testing._virtual_time import VirtualClock

pytestmark = pytest.mark.anyio


@durable.activity
async def step(value: int) -> int:
    return value


@durable.workflow(name="rows-napper")
async def napper(index: int, seconds: float) -> int:
    await step(index)
    await durable.sleep(seconds)
    return index


@durable.workflow(name="rows-told")
async def told() -> Any:
    said = await durable.wait_for_event("say")
    await durable.sleep(3600)
    return said


@durable.workflow(name="rows-waiter")
async def waiter() -> Any:
    return await durable.wait_for_event("go")


def _workflow_tasks_of(runtime: Runtime) -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("durable w")]


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


class _Counting(WorkflowRun):
    """A WorkflowRun that counts its constructions (each one replays its journal)."""

    made: ClassVar[list[str]] = []

    def __init__(self, **kwargs: Any) -> None:
        _Counting.made.append(kwargs["workflow_id"])
        super().__init__(**kwargs)


@pytest.fixture
def runs_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    _Counting.made = []
    monkeypatch.setattr(workflow_tasks, "WorkflowRun", _Counting)
    return _Counting.made


# -- a parked sleeper holds no task -----------------------------------------------------------


async def test_parked_sleepers_hold_no_task_and_wake_on_mail_and_cancel(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir, suspend_after=0) as runtime:
        handles = [await runtime.start(waiter, id=f"w{index}") for index in range(20)]
        await _until(lambda: len(runtime._mail.sleeping) == 20 and not runtime._runs)
        assert _workflow_tasks_of(runtime) == [], "a parked sleeper is a row, not a task"
        assert len(runtime._running) == 20  # (each still runs here: its handle waits)

        # mail wakes one (a task again, then its end); a cancel ends another
        assert await runtime.send_event("w3", "go", "three")
        await runtime.cancel("w4", "no longer")
        async with asyncio.timeout(10):
            assert await handles[3].result() == "three"
            with pytest.raises(WorkflowCancelled):
                await handles[4].result()
        # a second handle of a parked one waits for the same outcome
        other = await runtime.handle("w5")
        waiting = asyncio.ensure_future(other.result())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert await runtime.send_event("w5", "go", 5)
        async with asyncio.timeout(10):
            assert await waiting == 5
            assert await handles[5].result() == 5
        assert len(runtime._mail.sleeping) == 17


async def test_a_parked_sleeper_wakes_on_time_in_virtual_time(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path, suspend_after=60) as runtime:
        handles = [
            await runtime.start(napper, index, 3600 * (index + 1), id=f"n{index}")
            for index in range(3)
        ]
        await runtime.idle()
        assert len(runtime._mail.sleeping) == 3
        assert _workflow_tasks_of(runtime) == []
        await runtime.advance("90 minutes")
        assert handles[0].done()
        assert not handles[1].done()
        assert await handles[0].result() == 0
        assert len(runtime._mail.sleeping) == 2
        assert [await handle.result() for handle in handles[1:]] == [1, 2]  # (auto-skip)


async def test_close_lets_go_of_every_parked_journal(journal_dir: Path) -> None:
    async with Runtime(journal_dir, suspend_after=0) as runtime:
        for index in range(5):
            await runtime.start(napper, index, 3600, id=f"c{index}")
        await _until(lambda: len(runtime._mail.sleeping) == 5 and not runtime._runs)
    async with Runtime(journal_dir, workflows=[napper], suspend_after=0) as again:
        handles = await again.recover()  # (one still held would be skipped)
        assert sorted(handle.id for handle in handles) == [f"c{index}" for index in range(5)]


# -- recover() parks an unloaded sleeper without a replay --------------------------------------


async def test_recover_parks_sleepers_without_a_replay_and_wakes_each_on_time(
    journal_dir: Path, runs_made: list[str]
) -> None:
    async with Runtime(journal_dir, suspend_after=0) as runtime:
        for index in range(6):
            await runtime.start(napper, index, 1.0 + 0.1 * index, id=f"r{index}")
        await _until(lambda: len(runtime._mail.sleeping) == 6 and not runtime._runs)
    runs_made.clear()
    async with Runtime(journal_dir, workflows=[napper], suspend_after=0) as again:
        began = time.time()
        handles = await again.recover()
        assert len(handles) == 6
        assert runs_made == [], "a parked journal is parked again, not replayed"
        assert len(again._mail.sleeping) == 6
        assert _workflow_tasks_of(again) == []
        async with asyncio.timeout(15):
            results = [await handle.result() for handle in handles]
    assert sorted(results) == list(range(6))
    assert sorted(runs_made) == [f"r{index}" for index in range(6)]  # (each at its wake-up)
    assert time.time() - began < 10


async def test_recover_replays_a_journal_with_records_after_its_park_record(
    journal_dir: Path, runs_made: list[str]
) -> None:
    async with Runtime(journal_dir, suspend_after=0) as runtime:
        await runtime.start(napper, 1, 3600, id="parked")
        await runtime.start(napper, 2, 3600, id="touched")
        await _until(lambda: len(runtime._mail.sleeping) == 2 and not runtime._runs)
    store = JournalDirectory(journal_dir)
    journal = await store.open("touched")  # (something after its park record: a `run`)
    await journal.append(encode(records.run({"traceparent": "00-x"}, time.time())))
    await journal.close()
    runs_made.clear()
    async with Runtime(journal_dir, workflows=[napper], suspend_after=0) as again:
        handles = await again.recover()
        assert sorted(handle.id for handle in handles) == ["parked", "touched"]
        await _until(lambda: len(again._mail.sleeping) == 2 and not again._runs)
        assert runs_made == ["touched"], "only the one whose park record is not last replays"


async def test_recover_wakes_a_parked_sleeper_with_mail_waiting(journal_dir: Path) -> None:
    async with Runtime(journal_dir, suspend_after=0) as runtime:
        await runtime.start(waiter, id="mailed")
        await _until(lambda: "mailed" in runtime._mail.sleeping)
    async with Runtime(journal_dir, workflows=[waiter], suspend_after=0) as sender:
        assert await sender.send_event("mailed", "go", "while nobody ran it")
    async with Runtime(journal_dir, workflows=[waiter], suspend_after=0) as again:
        (handle,) = await again.recover()
        async with asyncio.timeout(10):
            assert await handle.result() == "while nobody ran it"


async def test_recover_parks_a_sleeper_whose_inbox_holds_only_mail_it_took(
    journal_dir: Path, runs_made: list[str]
) -> None:
    async with Runtime(journal_dir, suspend_after=0) as runtime:
        await runtime.start(told, id="told")
        assert await runtime.send_event("told", "say", "hi")
        await _until(lambda: "told" in runtime._mail.sleeping and runs_made == ["told"] * 2)
    runs_made.clear()
    async with Runtime(journal_dir, workflows=[told], suspend_after=0) as again:
        assert [handle.id for handle in await again.recover()] == ["told"]
        await asyncio.sleep(0.1)
        assert runs_made == [], "its one message was taken before it slept: no replay"
        assert await again.send_event("told", "other", 1)  # (new mail: it is loaded)
        await _until(lambda: runs_made == ["told"] and "told" in again._mail.sleeping)


# -- the park record, and reading it -----------------------------------------------------------


def _stored(*payloads: Any) -> list[StoredRecord]:
    return [StoredRecord(index, encode(payload)) for index, payload in enumerate(payloads)]


START = records.start("w", "w", [], 1_000.0, 7)
TIMER = records.timer(1, 5_000.0)


def test_parked_at_trusts_only_a_last_park_record() -> None:
    park = records.park(5_000.0, 3, 1_001.0)
    assert parked_at(_stored(START, TIMER, park), path="w") == (5_000.0, 3, None)
    child = records.start("c", "c", [], 1_000.0, 7, parent="p")
    assert parked_at(_stored(child, park), path="c") == (5_000.0, 3, "p")
    assert parked_at(_stored(START, TIMER), path="w") is None  # (older, or it was lost)
    later = records.fired(1, 5_000.0)
    assert parked_at(_stored(START, TIMER, park, later), path="w") is None
    deadline = records.start("w", "w", [], 1_000.0, 7, dl=9_000.0)
    assert parked_at(_stored(deadline, TIMER, park), path="w") is None  # (its timer: a load)
    broken = {"k": "park", "at": "soon", "qn": 0, "t": 1.0}
    assert parked_at(_stored(START, broken), path="w") is None
    forever = records.park(float("inf"), 0, 1_001.0)
    assert parked_at(_stored(START, forever), path="w") == (float("inf"), 0, None)


def test_a_malformed_park_record_is_refused_by_the_schema() -> None:
    for bad in ({"k": "park", "qn": 0, "t": 1.0}, {"k": "park", "at": 1.0, "qn": -1, "t": 1.0}):
        with pytest.raises(JournalCorrupted):
            records.check_record(bad, path="w", offset=0, index=3)
    good = decode(encode(records.park(2.0, 0, 1.0)), path="w", offset=0)
    assert records.check_record(good, path="w", offset=0, index=3) == good


# -- the rows' one timer -----------------------------------------------------------------------


class _Outcome:
    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id


async def test_sleepers_keep_one_timer_for_the_earliest_row() -> None:
    clock = VirtualClock(0.0)
    sleepers = Sleepers(clock)
    woken: list[str] = []
    sleepers.awaken = lambda row: woken.append(row.outcome.workflow_id)

    def row(name: str, at: float) -> Parked:
        return Parked(_Outcome(name), at, journal=None, grant=None, parent=None)  # type: ignore[arg-type]

    for name, at in [("c", 30.0), ("a", 10.0), ("b", 20.0), ("d", float("inf")), ("e", 10.0)]:
        assert sleepers.park(row(name, at))
    assert len([timer for timer in clock._timers if not timer.cancelled()]) == 1
    assert clock.next_due() == 10.0
    assert clock.fire_next()
    assert sorted(woken) == ["a", "e"]
    sleepers.notify("c")  # (mail: woken before its time; its heap entry goes stale)
    assert woken[-1] == "c"
    assert clock.fire_next()
    assert woken[-1] == "b"
    assert not clock.fire_next()  # (c's stale entry arms nothing; d waits for mail only)
    assert "d" in sleepers
    assert len(sleepers) == 1
    sleepers.expect("f")
    sleepers.notify("f")  # (mail while it is being unloaded: it does not park)
    assert sleepers.park(row("f", 50.0)) is False
    assert sleepers.take("d") is not None
    assert len(sleepers) == 0
