"""`durable verify` proves results: a finished journal's replayed result must equal the
recorded one, and the first difference is reported (durable.testing's replay check)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydantic
import pytest

import durable
from durable import Runtime
from durable.testing import replay_directory
from durable.testing._fork_check import fork_check_directory

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


@dataclass
class Point:
    x: float
    y: float


class Scores(pydantic.BaseModel):
    name: str
    score: float
    tags: list[str]


@durable.activity
async def measure(broken: bool) -> float:
    return float("nan") if broken else 0.1 + 0.2


@durable.workflow(name="shapes")
async def shapes(broken: bool) -> dict[str, object]:
    value = await measure(broken)
    return {
        "value": value,
        "far": float("inf"),
        "zero": -0.0,
        "raw": bytes(range(256)),
        "point": Point(value, 1.5),
        "scores": Scores(name="n", score=value, tags=["a"]),
    }


@durable.workflow(name="shapes")
async def shapes_one_byte_off(broken: bool) -> dict[str, object]:
    value = await measure(broken)
    return {
        "value": value,
        "far": float("inf"),
        "zero": -0.0,
        "raw": bytes(range(255)) + b"x",
        "point": Point(value, 1.5),
        "scores": Scores(name="n", score=value, tags=["a"]),
    }


async def test_nan_floats_dataclasses_models_and_bytes_prove_equal(tmp_path: Path) -> None:
    async with Runtime(tmp_path, workflows=[shapes]) as runtime:
        await runtime.run(shapes, True, id="nan")  # (NaN != NaN, and yet the same result)
        await runtime.run(shapes, False, id="sum")
    for result in await replay_directory(tmp_path, [shapes]):
        assert result.ok, result.error
    for checked in await fork_check_directory(tmp_path, [shapes]):
        assert checked.ok, checked.divergences
    changed = {r.workflow_id: r for r in await replay_directory(tmp_path, [shapes_one_byte_off])}
    # (long bytes: where they first differ, not two prefixes cut alike)
    assert "result['raw']: first differs at index 255 (of 256 recorded, 256 replayed)" in str(
        changed["nan"].error
    )
    (forked, _) = await fork_check_directory(tmp_path, [shapes_one_byte_off])
    assert "recorded the workflow's result" in str(forked.divergences[0])


async def test_resumed_forked_and_restarted_journals_verify(tmp_path: Path) -> None:
    app.BROKEN.add("charge")
    async with Runtime(tmp_path, workflows=[app.order]) as runtime:
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(app.order, "o", id="o1")
        app.BROKEN.clear()
        fork = await runtime.fork(
            "o1", from_failure=True, override={1: {"amount": 7, "reference": "r"}}
        )
        assert (await fork.result())[1] == "r"
        await (await runtime.restart("o1")).result()
        await (await runtime.resume("o1")).result()  # (after the links: resume, then end)
    verdicts = {r.workflow_id: r for r in await replay_directory(tmp_path, [app.order])}
    assert set(verdicts) == {"o1", "o1-fork-failure-override-1", "o1-restart"}
    for result in verdicts.values():
        assert result.ok, result.error
    for checked in await fork_check_directory(tmp_path, [app.order]):
        assert checked.ok, checked.divergences
