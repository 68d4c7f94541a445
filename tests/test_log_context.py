"""Logging that fits (_log_context, _engine/_log_fields): fields on records, quiet replay."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import _runtime
from durable._encoding import encode
from durable._engine import _inbox_cursor
from durable._engine._log_fields import ContextAdapter
from durable._storage._directory import JournalDirectory

pytestmark = pytest.mark.anyio

FIELDS = ("workflow_id", "workflow_name", "activity", "step", "attempt")


class JsonLines(logging.Formatter):
    """What a JSON formatter does: every attribute a record has beyond the standard ones."""

    STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in self.STANDARD}
        return json.dumps({"logger": record.name, "message": record.getMessage(), **extra})


class Captured:
    """A handler with durable.LogContext, on the root logger, writing JSON lines."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(durable.LogContext())
        self.handler.setFormatter(JsonLines())

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def messages(self) -> list[str]:
        return [line["message"] for line in self.lines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    found = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(found.handler)
    root.setLevel(logging.INFO)
    yield found
    root.removeHandler(found.handler)
    root.setLevel(level)


shop = logging.getLogger("shop")


@durable.activity(retry=durable.RetryPolicy(initial_interval=0.01, maximum_attempts=2))
async def charge(order: str) -> str:
    shop.info("charging %s", order)  # an application logger, no adapter: the filter adds
    if durable.activity_info().attempt == 1:
        raise ConnectionError("try again")
    return "paid"


@durable.activity
def pack(order: str) -> None:  # sync, in a worker thread
    shop.info("packing %s", order)


@durable.workflow
async def logged(order: str) -> str:
    durable.logger.info("taking order %s", order)
    paid = await charge(order)
    await pack(order)
    durable.logger.info("order %s %s", order, paid)
    return paid


async def test_records_carry_the_workflow_step_and_attempt_for_a_json_formatter(
    tmp_path: Path, captured: Captured
) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(logged, "o-1", id="o-1") == "paid"
    lines = {(line["message"], line.get("attempt")): line for line in captured.lines()}
    taking = lines[("taking order o-1", None)]
    assert taking["logger"] == "durable.workflow"
    assert (taking["workflow_id"], taking["workflow_name"]) == ("o-1", "logged")
    assert "step" not in taking  # (workflow code: between steps)
    first, second = lines[("charging o-1", 1)], lines[("charging o-1", 2)]
    assert {k: first[k] for k in FIELDS} == {
        "workflow_id": "o-1",
        "workflow_name": "logged",
        "activity": "charge",
        "step": 0,
        "attempt": 1,
    }
    assert (second["step"], second["attempt"]) == (0, 2)
    packing = lines[("packing o-1", 1)]
    assert (packing["activity"], packing["step"], packing["workflow_id"]) == ("pack", 1, "o-1")
    assert lines[("order o-1 paid", None)]["workflow_id"] == "o-1"


async def test_a_record_outside_workflows_is_left_as_it_is(captured: Captured) -> None:
    shop.info("no workflow here")
    durable.logger.info("nor here")
    assert all(not set(FIELDS) & set(line) for line in captured.lines())
    assert captured.messages() == ["no workflow here", "nor here"]


async def test_workflow_code_does_not_log_again_while_it_replays(
    tmp_path: Path, captured: Captured
) -> None:
    release = asyncio.Event()

    @durable.activity(name="held")
    async def held() -> str:
        await release.wait()
        return "released"

    @durable.workflow(name="twice")
    async def twice() -> str:
        durable.logger.info("started")
        first = await charge("t")
        durable.logger.info("charged: %s", first)
        second = await held()
        durable.logger.info("held: %s", second)
        return second

    async with durable.Runtime(tmp_path, stop_grace=0) as runtime:
        await runtime.start(twice, id="t")
        async with asyncio.timeout(10):
            # (until the journal holds step 1's attempt: stopped before its record, the
            # stretch before it would be code past the journal's last step, logged again)
            while "held" not in ((await runtime.describe("t")).current or ""):
                await asyncio.sleep(0.01)
    release.set()
    assert [m for m in captured.messages() if not m.startswith("charging")] == [
        "started",
        "charged: paid",
    ]
    captured.stream.truncate(0)
    captured.stream.seek(0)
    async with durable.Runtime(tmp_path) as runtime:  # resumes: replays "started" and the charge
        assert await runtime.run(twice, id="t") == "released"
    # "charged" came after step 0's outcome, the last one recorded, but before step 1 was
    # asked for, which the journal holds (its attempt was under way): it ran then, and is
    # not logged again. Only code past the journal's last step would log again.
    assert captured.messages() == ["held: released"]


async def test_durables_own_records_carry_the_workflow_they_are_about(
    tmp_path: Path, captured: Captured
) -> None:
    assert isinstance(_runtime.logger, ContextAdapter)
    assert isinstance(_inbox_cursor.logger, ContextAdapter)

    @durable.workflow(name="listener")
    async def listener() -> Any:
        return await durable.wait_for_event("item")

    async with durable.Runtime(tmp_path) as runtime:
        handle = await runtime.start(listener, id="l")
        async with JournalDirectory(tmp_path) as planting:  # past every check a sender makes
            await planting.post("l", b"\xc1")
            await planting.post("l", encode({"k": "event", "n": "item", "p": 7, "t": 1.8e9}))
        await runtime.send_event("l", "nudge")  # (wakes the run: it reads its inbox now)
        assert await handle.result() == 7
    [skipped] = [line for line in captured.lines() if line["logger"] == "durable"]
    assert "inbox message 0 skipped, not delivered" in skipped["message"]
    assert (skipped["workflow_id"], skipped["workflow_name"]) == ("l", "listener")


def test_a_workflow_logger_wraps_any_logger() -> None:
    wrapped = durable.WorkflowLogger(logging.getLogger("shop.orders"))
    assert wrapped.logger.name == "shop.orders"
    assert durable.logger.logger.name == "durable.workflow"
