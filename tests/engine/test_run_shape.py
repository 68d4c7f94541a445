"""WorkflowRun keeps few enough attributes for CPython 3.11 to read them fast on every step."""

from __future__ import annotations

import dis
import io
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._engine import _workflow_run

pytestmark = pytest.mark.anyio

# Past 29 instance attributes, CPython 3.11 no longer keeps an instance's values inline: every
# `self.x` of the run's hot path is then read through a dict (LOAD_ATTR_WITH_HINT, not
# LOAD_ATTR_INSTANCE_VALUE), some 4% more instructions a step (benchmarks.engine_profile).
# New state goes into one of the run's parts (its `_steps`, `_life`, `_observing`...).
INLINE_LIMIT = 29


def test_an_instance_past_the_limit_is_read_through_its_dict() -> None:
    def made(count: int) -> Any:
        body = "".join(f"        self.a{n} = {n}\n" for n in range(count))
        source = (
            f"class C:\n    def __init__(self):\n{body}    def f(self):\n        return self.a0\n"
        )
        namespace: dict[str, Any] = {}
        exec(source, namespace)  # (a class of `count` attributes)
        instance = namespace["C"]()
        for _ in range(20):  # (specialized after a few calls)
            instance.f()
        shown = io.StringIO()
        dis.dis(instance.f, adaptive=True, file=shown)
        return "LOAD_ATTR_INSTANCE_VALUE" in shown.getvalue()

    assert made(INLINE_LIMIT)
    assert not made(INLINE_LIMIT + 1)


async def test_a_run_stays_within_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[int] = []
    original = _workflow_run.WorkflowRun.__init__

    def counting(self: _workflow_run.WorkflowRun, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        counted.append(len(vars(self)))

    monkeypatch.setattr(_workflow_run.WorkflowRun, "__init__", counting)

    @durable.workflow(name="shape")
    async def shape() -> int:
        return 1

    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(shape, id="s") == 1
    assert counted
    assert max(counted) <= INLINE_LIMIT, counted


async def test_a_run_that_draws_random_numbers_stays_within_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[_workflow_run.WorkflowRun] = []
    original = _workflow_run.WorkflowRun.__init__

    def kept(self: _workflow_run.WorkflowRun, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        runs.append(self)

    monkeypatch.setattr(_workflow_run.WorkflowRun, "__init__", kept)

    @durable.workflow(name="shape_random")
    async def draws() -> float:
        return durable.random()  # (its generator is made now, in the attribute of its seed)

    async with durable.Runtime(tmp_path) as runtime:
        drawn = await runtime.run(draws, id="r")
    assert 0 <= drawn < 1
    assert [len(vars(run)) <= INLINE_LIMIT for run in runs] == [True]
