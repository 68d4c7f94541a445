"""`durable verify` proves results: a finished journal's replayed result must equal the
recorded one, and the first difference is reported (durable.testing's replay check)."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from durable import Runtime
from durable.testing import replay_directory

from . import app

pytestmark = pytest.mark.anyio


@durable.workflow(name="order")
async def order_new_result(name: str) -> list[str]:
    """The same steps as app.order, but a result computed another way."""
    reserved = await app.reserve(name)
    receipt = await app.charge(name)
    shipped = await app.ship(name, receipt)
    return [reserved, receipt.reference.upper(), shipped]


@durable.workflow(name="summary")
async def summary(name: str) -> dict[str, object]:
    reserved = await app.reserve(name)
    return {"order": name, "lines": [reserved, 1, 2.5]}


@durable.workflow(name="summary")
async def summary_changed(name: str) -> dict[str, object]:
    reserved = await app.reserve(name)
    return {"order": name, "lines": [reserved, 1, 3]}


async def test_a_changed_result_is_a_divergence_with_its_first_difference(
    tmp_path: Path,
) -> None:
    async with Runtime(tmp_path, workflows=[app.order, summary]) as runtime:
        await runtime.run(app.order, "o", id="o1")
        await runtime.run(summary, "s", id="s1")
    same = {r.workflow_id: r for r in await replay_directory(tmp_path, [app.order, summary])}
    assert all(result.ok for result in same.values())
    changed = await replay_directory(tmp_path, [order_new_result, summary_changed])
    verdicts = {result.workflow_id: result for result in changed}
    assert verdicts["o1"].diverged
    assert "result[1]: recorded 'pay-o', replayed 'PAY-O'" in str(verdicts["o1"].error)
    assert verdicts["s1"].diverged
    assert "result['lines'][2]: recorded 2.5, replayed 3" in str(verdicts["s1"].error)
