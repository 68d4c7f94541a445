"""One activity call: a timed-out attempt, a result that cannot be journaled, cancel reasons."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import durable
from durable import RetryPolicy, Runtime

pytestmark = pytest.mark.anyio

ONCE = RetryPolicy(maximum_attempts=1)


async def test_a_timed_out_attempt_is_the_public_activity_timeout(journal_dir: Path) -> None:
    @durable.activity(timeout=0.05, retry=ONCE)
    async def slow() -> None:
        await asyncio.sleep(10)

    @durable.workflow
    async def flow() -> str:
        try:
            await slow()
        except durable.ActivityError as error:
            return f"{error.error_type}: {error.message}"
        return "finished"

    async with Runtime(journal_dir) as runtime:
        said = await runtime.run(flow, id="too-slow")
    assert said.startswith("durable.ActivityTimeout: ")
    assert "'" + slow.name + "'" in said
    assert "0.05 s" in said
    assert issubclass(durable.ActivityTimeout, TimeoutError)
    assert issubclass(durable.ActivityTimeout, durable.DurableError)


async def test_non_retryable_errors_can_name_the_public_activity_timeout(
    journal_dir: Path,
) -> None:
    attempts: list[int] = []

    @durable.activity(
        timeout=0.05,
        retry=RetryPolicy(maximum_attempts=5, non_retryable_errors=[durable.ActivityTimeout]),
    )
    async def slow() -> None:
        attempts.append(1)
        await asyncio.sleep(10)

    @durable.workflow
    async def flow() -> int:
        try:
            await slow()
        except durable.ActivityError as error:
            return error.attempts
        return 0

    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(flow, id="no-retry-on-timeout") == 1
    assert attempts == [1]


class Receipt:  # (no journal form)
    pass


async def test_a_result_that_cannot_be_journaled_says_the_activity_ran(journal_dir: Path) -> None:
    effects: list[str] = []

    @durable.activity
    async def charge() -> Receipt:
        effects.append("charged")
        return Receipt()

    @durable.workflow
    async def flow() -> str:
        try:
            await charge()
        except durable.ActivityError as error:
            return f"{error.error_type} after {error.attempts}: {error.message}"
        return "stored"

    async with Runtime(journal_dir) as runtime:
        said = await runtime.run(flow, id="unstorable")
    assert effects == ["charged"]  # ran once: not retried
    assert said.startswith("durable.SerializationError after 1: ")
    for fact in ("Receipt", charge.name, "step 0", "'unstorable'", "side effects happened"):
        assert fact in said, fact


async def test_cancel_keeps_an_empty_reason(journal_dir: Path) -> None:
    started = asyncio.Event()

    @durable.activity
    async def wait_forever() -> None:
        started.set()
        await asyncio.sleep(60)

    @durable.workflow
    async def flow() -> None:
        await wait_forever()

    async with Runtime(journal_dir, stop_grace=0) as runtime:
        handle = await runtime.start(flow, id="quiet-cancel")
        await started.wait()
        await runtime.cancel("quiet-cancel", "")
        with pytest.raises(durable.WorkflowCancelled) as cancelled:
            await handle.result()
    assert cancelled.value.reason == ""
    assert "no reason given" in str(cancelled.value)
