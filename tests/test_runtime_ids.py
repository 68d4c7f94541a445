"""An id means one workflow run: run()/start() with other arguments is refused, not joined."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

import durable
from durable import Runtime
from durable.testing import TestRuntime

pytestmark = pytest.mark.anyio


@dataclass
class Order:
    sku: str
    quantity: int


@durable.activity
async def price(order: Order) -> int:
    return order.quantity * 3


@durable.workflow
async def checkout(order: Order, tags: set[str], at: datetime) -> int:
    return await price(order) + len(tags)


AT = datetime(2026, 1, 2, tzinfo=UTC)


async def test_other_arguments_for_a_finished_id_raise_naming_both(journal_dir: Path) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(checkout, Order("tea", 2), {"a"}, AT, id="order-1") == 7
        with pytest.raises(durable.WorkflowIdInUse) as refused:
            await runtime.run(checkout, Order("coffee", 5), {"a"}, AT, id="order-1")
    error = refused.value
    assert error.workflow_id == "order-1"
    assert "tea" in error.recorded
    assert "coffee" in error.given
    assert "'order-1'" in str(error)
    assert "attach=True" in str(error)


async def test_the_same_arguments_resume_and_attach_takes_the_recorded_ones(
    journal_dir: Path,
) -> None:
    tags = {f"tag-{n}" for n in range(40)}  # (a set: equal, whatever its iteration order)
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(checkout, Order("tea", 2), tags, AT, id="order-2") == 46
    async with Runtime(journal_dir) as runtime:
        again: set[str] = set()
        for tag in sorted(tags, reverse=True):  # (another insertion order)
            again.add(tag)
        assert await runtime.run(checkout, Order("tea", 2), again, AT, id="order-2") == 46
        attached = await runtime.run(checkout, Order("x", 9), set(), AT, id="order-2", attach=True)
        assert attached == 46  # the recorded run's result


async def test_an_unfinished_run_is_refused_too_and_nothing_is_written(journal_dir: Path) -> None:
    gate = asyncio.Event()

    @durable.activity
    async def hold(n: int) -> int:
        await gate.wait()
        return n

    @durable.workflow
    async def held(n: int) -> int:
        return await hold(n)

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        await runtime.start(held, 1, id="held")
        await runtime.close()
    async with Runtime(journal_dir) as runtime:
        before = (journal_dir / "held.journal").read_bytes()
        with pytest.raises(durable.WorkflowIdInUse):
            await runtime.start(held, 2, id="held")
        assert (journal_dir / "held.journal").read_bytes() == before
        gate.set()
        assert await runtime.run(held, 1, id="held") == 1  # and the lock was let go


async def test_another_workflow_name_still_raises_workflow_definition_error(
    journal_dir: Path,
) -> None:
    @durable.workflow
    async def other(order: Order, tags: set[str], at: datetime) -> int:
        return 0

    async with Runtime(journal_dir) as runtime:
        await runtime.run(checkout, Order("tea", 2), set(), AT, id="order-3")
        with pytest.raises(durable.WorkflowDefinitionError):
            await runtime.run(other, Order("tea", 2), set(), AT, id="order-3", attach=True)


@durable.workflow
async def counter(period: int) -> int:
    if period < 3:
        durable.continue_as_new(period + 1)
    return period


async def test_a_run_past_continue_as_new_is_resumed_with_the_first_arguments(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(counter, 0, id="periods") == 3
        # its journal's start record holds the continued arguments (3): not refused
        assert await runtime.run(counter, 0, id="periods") == 3


async def test_the_testing_runtime_checks_and_attaches_too(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path) as runtime:
        assert await runtime.run(checkout, Order("tea", 1), set(), AT, id="t") == 3
        with pytest.raises(durable.WorkflowIdInUse):
            await runtime.run(checkout, Order("tea", 9), set(), AT, id="t")
        assert await runtime.run(checkout, Order("tea", 9), set(), AT, id="t", attach=True) == 3


async def test_a_failed_run_nobody_awaits_is_logged_once_not_printed_by_asyncio(
    journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @durable.activity(retry=durable.RetryPolicy(maximum_attempts=1))
    async def boom() -> None:
        raise ValueError("no stock")

    @durable.workflow
    async def doomed() -> None:
        await boom()

    caplog.set_level("INFO")
    async with Runtime(journal_dir) as runtime:
        handle = await runtime.start(doomed, id="unawaited")
        while not handle.done():
            await asyncio.sleep(0.01)
        del handle
    gc.collect()
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    ended = [r for r in caplog.records if r.name == "durable" and "unawaited" in r.getMessage()]
    assert len(ended) == 1
    assert "no stock" in ended[0].getMessage()
