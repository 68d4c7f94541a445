"""@activity: a call whose arguments do not bind fails at the call, as Python would."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from durable import Runtime

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
