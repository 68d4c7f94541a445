"""Random workflows of gather / wait / wait_for / timeout / tasks / sleeps replay identically.

Each generated program runs once; then, for every record boundary of its journal (a kill
at that point), a copy truncated there is resumed. Every decision the code made while the
truncated journal was replayed must equal the first run's, the resumed run must finish,
and no activity whose outcome survived the truncation may run again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import durable
from durable import JournalDirectory, Runtime
from durable._encoding import decode
from durable._engine._context import current_run

pytestmark = [pytest.mark.slow]

# A program is a nested list: ["act", label, ms] | ["sleep", ms] | ["gather", [..]] |
# ["race", [..]] | ["wait_for", op, ms] | ["timeout", op, ms] | ["task", op, op]
leaf = st.one_of(
    st.tuples(st.just("act"), st.integers(0, 99), st.integers(0, 25)).map(list),
    st.tuples(st.just("sleep"), st.integers(0, 25)).map(list),
)


def extend(children: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    many = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        many.map(lambda ops: ["gather", ops]),
        many.map(lambda ops: ["race", ops]),
        st.tuples(st.just("wait_for"), children, st.integers(0, 25)).map(list),
        st.tuples(st.just("timeout"), children, st.integers(0, 25)).map(list),
        st.tuples(st.just("task"), children, children).map(list),
    )


programs = st.lists(st.recursive(leaf, extend, max_leaves=6), min_size=1, max_size=3)

executions: Counter[int] = Counter()  # activity step -> runs, reset per resume


@durable.activity
async def act(label: int, ms: int) -> int:
    info = durable.activity_info()
    executions[info.step] += 1
    await asyncio.sleep(ms / 1000)
    return label


def note(trace: list[list[Any]], *entry: Any) -> None:
    run = current_run()
    assert run is not None
    trace.append([run.delivered, *entry])


async def interpret(op: list[Any], trace: list[list[Any]]) -> Any:
    kind = op[0]
    if kind == "act":
        result = await act(op[1], op[2])
        note(trace, "act", result)
        return result
    if kind == "sleep":
        await asyncio.sleep(op[1] / 1000)
        note(trace, "slept", op[1])
        return None
    if kind == "gather":
        results = await asyncio.gather(*(interpret(child, trace) for child in op[1]))
        note(trace, "gathered", results)
        return results
    if kind == "race":
        tasks = [asyncio.create_task(interpret(child, trace)) for child in op[1]]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        note(trace, "race won by", sorted(tasks.index(task) for task in done))
        return None
    if kind == "wait_for":
        waited: Any
        try:
            waited = await asyncio.wait_for(interpret(op[1], trace), op[2] / 1000)
        except TimeoutError:
            waited = "timed out"
        note(trace, "wait_for", waited)
        return waited
    if kind == "timeout":
        outcome = "in time"
        try:
            async with asyncio.timeout(op[2] / 1000):
                await interpret(op[1], trace)
        except TimeoutError:
            outcome = "timed out"
        note(trace, "timeout", outcome)
        return outcome
    assert kind == "task"
    task = asyncio.create_task(interpret(op[1], trace))
    other = await interpret(op[2], trace)
    first = await task
    note(trace, "task", first, other)
    return [first, other]


@durable.workflow(name="generated")
async def generated(program: list[Any]) -> list[list[Any]]:
    trace: list[list[Any]] = []
    for op in program:
        await interpret(op, trace)
    note(trace, "random", durable.random())
    return trace


async def record_boundaries(path: Path) -> list[tuple[int, int, set[int]]]:
    """After each record: (end offset, outcomes delivered so far, activity steps done)."""
    async with JournalDirectory(path.parent) as store:
        stored = await store.read(path.stem)
    ends = [record.offset for record in stored[1:]] + [path.stat().st_size]
    boundaries, delivered, done = [], 0, set()
    for record, end in zip(stored, ends, strict=True):
        decoded = decode(record.payload, path=path, offset=record.offset)
        if decoded["k"] in ("done", "fired"):
            delivered += 1
        if decoded["k"] == "done":
            done.add(decoded["s"])
        boundaries.append((end, delivered, set(done)))
    return boundaries


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(program=programs)
def test_replay_after_a_kill_at_every_boundary_makes_the_same_decisions(
    tmp_path_factory: pytest.TempPathFactory, program: list[Any]
) -> None:
    asyncio.run(check_program(tmp_path_factory.mktemp("replay"), program))


async def check_program(root: Path, program: list[Any]) -> None:
    async with Runtime(root / "first") as runtime:
        first = await runtime.run(generated, program, id="p")
    journal = root / "first" / "p.journal"
    data = journal.read_bytes()
    for index, (end, delivered, done) in enumerate(await record_boundaries(journal)):
        resumed_dir = root / f"cut-{index}"
        resumed_dir.mkdir(mode=0o700)
        (resumed_dir / "p.journal").write_bytes(data[:end])
        (resumed_dir / "p.journal").chmod(0o600)
        executions.clear()
        async with Runtime(resumed_dir) as runtime:
            resumed = await runtime.run(generated, program, id="p")
        replayed = [entry for entry in first if entry[0] <= delivered]
        assert [entry for entry in resumed if entry[0] <= delivered] == replayed, (
            f"decisions diverged after a kill at record {index}"
        )
        rerun = {step for step in done if executions[step]}
        assert not rerun, f"steps {rerun} ran again although their outcome was journaled"
