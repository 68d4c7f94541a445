"""The stall watchdog: workflow code that blocks the host thread is reported, once, where it is."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

import durable
from durable import JournalDirectory
from durable._encoding import encode
from durable._engine import _records as records
from durable._engine._replay import digest_of
from durable.testing import TestRuntime

pytestmark = pytest.mark.anyio


def line_of(marker: str) -> int:
    """The line of this file that ends with `marker` (where the stall is)."""
    lines = Path(__file__).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.endswith(marker))


@durable.activity
async def step(index: int) -> int:
    return index


@durable.workflow
async def sleeps_in_workflow_code() -> str:
    await step(1)
    time.sleep(0.5)  # blocks: the stall
    await step(2)
    return "done"


def spin(seconds: float) -> int:
    end, turns = time.monotonic() + seconds, 0
    while time.monotonic() < end:  # spins: the stall
        turns += 1
    return turns


@durable.workflow
async def computes_in_workflow_code() -> int:
    await step(1)
    return spin(0.5)


@durable.workflow
async def fast() -> int:
    total = 0
    for index in range(50):
        total += await step(index)
    return total


def stalls(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "durable" and "blocked the event loop" in record.getMessage()
    ]


async def test_a_blocking_call_is_reported_once_with_the_workflow_and_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable")
    async with durable.Runtime(tmp_path, warn_blocked_after=0.2) as runtime:
        assert await runtime.run(sleeps_in_workflow_code, id="blocker") == "done"
    (report,) = stalls(caplog)  # once, though the watchdog looked several times
    assert report.levelno == logging.WARNING
    message = report.getMessage()
    assert "'blocker'" in message
    assert f"{__file__}:{line_of('# blocks: the stall')} in sleeps_in_workflow_code()" in message
    assert "time.sleep(0.5)" in message  # the stack, with its source lines
    assert "workflow code must not block" in message
    assert "replaying" not in message


async def test_a_computation_is_reported_at_the_innermost_line_of_workflow_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable")
    async with TestRuntime(tmp_path, warn_blocked_after=0.2) as runtime:
        assert await runtime.run(computes_in_workflow_code, id="spinner") > 0
    (report,) = stalls(caplog)
    message = report.getMessage()
    assert f"{__file__}:{line_of('# spins: the stall')} in spin()" in message
    assert "return spin(0.5)" in message  # the caller, in the stack


async def test_fast_workflow_code_is_not_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable")
    async with durable.Runtime(tmp_path, warn_blocked_after=0.2) as runtime:
        for index in range(5):
            await runtime.run(fast, id=f"fast-{index}")
        time.sleep(0.3)  # (the host thread is busy here, but in no workflow step)
    assert stalls(caplog) == []


async def test_none_turns_the_watchdog_off_and_close_stops_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable")

    def watchers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "durable stall watch"]

    before = len(watchers())
    async with durable.Runtime(tmp_path, warn_blocked_after=None) as runtime:
        assert await runtime.run(sleeps_in_workflow_code, id="unwatched") == "done"
        assert len(watchers()) == before
    assert stalls(caplog) == []
    async with durable.Runtime(tmp_path / "watched") as runtime:  # (default: 2 s)
        await runtime.run(fast, id="f")
        assert len(watchers()) == before + 1
    assert len(watchers()) == before


def test_a_bad_threshold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(durable.InvalidDuration, match="warn_blocked_after"):
        durable.Runtime(tmp_path, warn_blocked_after="a while")


@durable.workflow(name="steps")
async def steps(count: int) -> int:
    total = 0
    for index in range(count):
        total += await step(index)
    return total


async def write_done_steps(directory: Path, workflow_id: str, count: int) -> None:
    """A journal as steps(count) leaves it before its end: `count` recorded steps."""
    async with JournalDirectory(directory) as store:
        journal = await store.open(workflow_id)
        now = time.time()
        journal.write(encode(records.start("steps", workflow_id, [count], now, 1)))
        for index in range(count):
            digest = digest_of(encode([[index], {}]))
            journal.write(encode(records.done(index, step.name, digest, 1, now=now, result=index)))
        await journal.close()


async def test_a_long_replay_is_reported_as_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A sequential replay takes its recorded outcomes without a suspension: one long step.
    caplog.set_level(logging.WARNING, logger="durable")
    count = 30_000
    await write_done_steps(tmp_path, "long", count)
    async with durable.Runtime(tmp_path, warn_blocked_after=0.05) as runtime:
        assert await runtime.run(steps, count, id="long") == sum(range(count))
    reports = [record.getMessage() for record in stalls(caplog)]
    assert reports
    assert all("'long'" in report and "while replaying its journal" in report for report in reports)
