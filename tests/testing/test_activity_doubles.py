"""mock_activity, failing() and count_calls: fakes under the real retry policy, counted."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from durable import RetryPolicy, Runtime
from durable.testing import TestRuntime, failing

pytestmark = pytest.mark.anyio

REAL_CHARGES: list[int] = []


@durable.activity(retry=RetryPolicy(maximum_attempts=3, initial_interval="10 min"))
async def charge_payment(amount: int) -> str:
    REAL_CHARGES.append(amount)
    return f"real-{amount}"


@durable.activity
def reserve_stock(item: str) -> str:  # a sync activity: runs in a worker thread
    return f"reserved {item}"


@durable.workflow
async def checkout(amount: int) -> list[str]:
    try:
        payment = await charge_payment(amount)
    except durable.ActivityError as error:
        return [f"payment failed: {error.error_type}"]
    return [payment, await reserve_stock("book")]


@pytest.fixture(autouse=True)
def _clear() -> None:
    REAL_CHARGES.clear()


async def test_a_mock_replaces_the_activity_and_the_journal_keeps_its_name(
    tmp_path: Path,
) -> None:
    async def fake_charge(amount: int) -> str:
        return f"fake-{amount}"

    async with TestRuntime(tmp_path) as runtime:
        with runtime.mock_activity(charge_payment, fake_charge):
            assert await runtime.run(checkout, 5, id="c") == ["fake-5", "reserved book"]
        assert await runtime.run(checkout, 6, id="d") == ["real-6", "reserved book"]
    assert REAL_CHARGES == [6]
    async with Runtime(tmp_path) as real:  # the journal replays without the mock
        assert await real.run(checkout, 5, id="c") == ["fake-5", "reserved book"]
    assert REAL_CHARGES == [6]


async def test_a_fake_failing_twice_is_retried_by_the_real_policy(tmp_path: Path) -> None:
    flaky = failing(2, ConnectionError("card network down"), then="ch_1")
    async with TestRuntime(tmp_path) as runtime:
        with runtime.mock_activity(charge_payment, flaky):
            assert await runtime.run(checkout, 5, id="c") == ["ch_1", "reserved book"]
    assert flaky.calls == 3


async def test_a_fake_failing_more_than_the_policy_allows_fails_the_call(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path) as runtime:
        with runtime.mock_activity(charge_payment, failing(3, ConnectionError)):
            result = await runtime.run(checkout, 5, id="c")
    assert result == ["payment failed: ConnectionError"]


async def test_mocks_by_name_and_sync_fakes(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path) as runtime:
        with runtime.mock_activity("reserve_stock", lambda item: f"fake {item}"):
            assert await runtime.run(checkout, 5, id="c") == ["real-5", "fake book"]


async def test_count_calls_sees_every_attempt_with_its_key(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path) as runtime:
        with (
            runtime.count_calls(charge_payment) as charges,
            runtime.mock_activity(charge_payment, failing(1, then="ok")),
        ):
            await runtime.run(checkout, 5, id="c")
        await runtime.run(checkout, 7, id="d")  # not counted: its block ended
    assert charges.count == 2
    assert charges.completed == 1
    assert charges.by_key() == {"c/0": 2}
    assert charges.by_key(returned_only=True) == {"c/0": 1}
    assert [call.attempt for call in charges.calls] == [1, 2]
    assert isinstance(charges.calls[0].error, ConnectionError)
    assert charges.calls[1].args == (5,)


async def test_counting_a_sync_activity(tmp_path: Path) -> None:
    async with TestRuntime(tmp_path) as runtime:
        stock = runtime.count_calls(reserve_stock)
        await runtime.run(checkout, 5, id="c")
        await runtime.run(checkout, 5, id="c")  # finished: replayed, not run
    assert stock.by_key() == {"c/1": 1}


def test_failing_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="how many calls fail"):
        failing(-1)
