"""@activity: a call whose arguments do not bind fails at the call, as Python would; an
activity's failure ends the workflow's traceback on a line that says so; pydantic models."""

from __future__ import annotations

import asyncio
import traceback
from pathlib import Path

import pydantic
import pytest

import durable
from durable import Runtime
from durable._catalog import Catalog

pytestmark = pytest.mark.anyio


async def test_a_call_that_does_not_bind_raises_type_error_at_once_and_journals_nothing(
    journal_dir: Path,
) -> None:
    calls: list[int] = []

    @durable.activity
    async def charge(amount: int, *, currency: str = "EUR") -> int:
        calls.append(amount)
        return amount

    @durable.workflow
    async def flow() -> str:
        try:
            await charge(1, 2)  # type: ignore[call-arg,arg-type]  # (the typo under test)
        except TypeError as error:
            return str(error)
        return "bound"

    async with Runtime(journal_dir) as runtime:
        message = await runtime.run(flow, id="typo")
        history = await runtime.describe("typo")
    assert "takes 1 positional argument but 2 were given" in message
    for fact in ("'typo'", "charge", "nothing was journaled"):
        assert fact in message, fact
    assert calls == []  # never ran, so never retried
    assert history.steps == 0


async def test_calls_that_bind_run_with_defaults_keywords_and_variadics(journal_dir: Path) -> None:
    @durable.activity
    def mixed(a: int, /, b: int = 2, *rest: int, c: int, **extra: int) -> int:
        return a + b + sum(rest) + c + sum(extra.values())

    @durable.workflow
    async def flow() -> int:
        return await mixed(1, c=3) + await mixed(1, 2, 4, 5, c=3, d=6)

    async with Runtime(journal_dir) as runtime:
        assert await runtime.run(flow, id="binds") == 6 + 21


async def test_a_positional_only_parameter_passed_by_keyword_does_not_bind(
    journal_dir: Path,
) -> None:
    @durable.activity
    async def only(a: int, /) -> int:
        return a

    @durable.workflow
    async def flow() -> int:
        return await only(a=1)  # type: ignore[call-arg]

    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowFailed) as failed:
            await runtime.run(flow, id="positional-only")
    assert isinstance(failed.value.__cause__, TypeError)


def last_frame_line(formatted: str) -> str:
    """The source line of a formatted traceback's last frame (what a reader sees last)."""
    lines = formatted.splitlines()
    last = max(index for index, line in enumerate(lines) if line.lstrip().startswith("File "))
    return lines[last + 1].strip()


ONCE = durable.RetryPolicy(maximum_attempts=1)


class Quote(pydantic.BaseModel):
    amount: float
    currency: str


async def until_waiting(runtime: Runtime, workflow_id: str) -> None:
    while (described := await runtime.describe(workflow_id)).ended is None:
        if described.state is durable.WorkflowState.WAITING:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{workflow_id} ended: {described.error}")


@durable.activity(retry=ONCE)
async def decline(card: str) -> str:
    raise ValueError(f"card {card} declined")


@durable.workflow
async def pay(card: str) -> str:
    return await decline(card)


@durable.workflow
async def pay_after_approval(card: str) -> str:
    try:
        return await decline(card)
    except durable.ActivityError:
        await durable.wait_for_event("retry-later")  # (a resume replays the failure above)
        raise


async def test_an_activity_failure_ends_the_traceback_on_a_line_that_says_so(
    journal_dir: Path,
) -> None:
    """Not on an internal `# type: ignore` line: run()'s cause and the journaled traceback."""
    async with Runtime(journal_dir) as runtime:
        with pytest.raises(durable.WorkflowFailed) as caught:
            await runtime.run(pay, "4242", id="pay")
    cause = caught.value.__cause__
    assert isinstance(cause, durable.ActivityError)
    live = "".join(traceback.format_exception(cause))
    async with Catalog(journal_dir) as catalog:
        journaled = (await catalog.history("pay")).error
    assert journaled is not None
    for formatted in (live, journaled["tb"]):
        line = last_frame_line(formatted)
        assert "type: ignore" not in line
        assert line.startswith("result: R = await outcome  # its result; or ActivityError")


async def test_a_replayed_activity_failure_ends_the_traceback_on_a_line_that_says_so(
    journal_dir: Path,
) -> None:
    async with Runtime(journal_dir) as runtime:
        await runtime.start(pay_after_approval, "4242", id="later")
        await until_waiting(runtime, "later")
    async with Runtime(journal_dir) as runtime:  # (replays the failure, from the journal)
        await runtime.send_event("later", "retry-later")
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(pay_after_approval, "4242", id="later")
    async with Catalog(journal_dir) as catalog:
        journaled = (await catalog.history("later")).error
    assert journaled is not None
    line = last_frame_line(journaled["tb"])
    assert "type: ignore" not in line
    assert line.startswith("raise outcome.error  # the activity failed for good: ActivityError")


async def test_pydantic_models_as_arguments_and_results_come_back_as_models(
    journal_dir: Path,
) -> None:
    """A model in, a model out of an activity: rebuilt from the journal on replay too."""
    calls: list[Quote] = []

    @durable.activity
    async def convert(quote: Quote, rate: float) -> Quote:
        calls.append(quote)
        return Quote(amount=quote.amount * rate, currency="USD")

    @durable.workflow
    async def priced(quote: Quote) -> str:
        converted = await convert(quote, 2.0)
        assert isinstance(converted, Quote)
        await durable.wait_for_event("go")  # (the second runtime replays the result)
        return f"{type(converted).__name__} {converted.amount} {converted.currency}"

    async with Runtime(journal_dir) as runtime:
        await runtime.start(priced, Quote(amount=10, currency="EUR"), id="quote")
        await until_waiting(runtime, "quote")
    async with Runtime(journal_dir) as runtime:
        await runtime.send_event("quote", "go")
        shipped = await runtime.run(priced, Quote(amount=10, currency="EUR"), id="quote")
    assert shipped == "Quote 20.0 USD"
    assert [type(quote) for quote in calls] == [Quote]  # (ran once, given a model)
