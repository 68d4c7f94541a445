"""Call sites: each step's records say where the workflow's code asked for it (_sites)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._engine import _records as records
from durable._engine._history import history
from durable._storage._directory import JournalDirectory

pytestmark = pytest.mark.anyio


async def journal_of(directory: Path, workflow_id: str) -> list[dict[str, Any]]:
    store = JournalDirectory(directory)
    try:
        return records.read_journal(await store.read(workflow_id), path=workflow_id)
    finally:
        await store.close()


def line_of(function: Any, text: str) -> int:
    """The line number of the first line of `function`'s source holding `text`."""
    lines, first = inspect.getsourcelines(function)
    return first + next(index for index, line in enumerate(lines) if text in line)


@durable.activity
async def double(x: int) -> int:
    return x * 2


@durable.workflow
async def child_flow(x: int) -> int:
    return x + 1


@durable.workflow
async def many_sites(n: int) -> int:
    total = 0
    for i in range(n):
        total += await double(i)  # one site, n steps
    await asyncio.sleep(0.001)  # a timer asyncio asks for
    await asyncio.gather(double(7), durable.sleep(0.001))  # a timer in a task of gather
    durable.set_status("half")
    total += await durable.run_child(child_flow, total)
    with contextlib.suppress(durable.EventTimeout):
        await durable.wait_for_event("never", timeout=0.001)
    return total


async def test_each_step_names_its_call_site_once_per_site(tmp_path: Path) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(many_sites, 3, id="m") == 13
    journal = await journal_of(tmp_path, "m")
    named = [record for record in journal if "wp" in record]
    # Every site named exactly once, on the records of the step that first asked from it.
    assert (
        len({(r["wp"], r["wl"]) for r in named}) == len(named) == 6
    )  # (gather: one line, two steps)
    steps = history("m", journal).steps
    where = {step.step: (step.kind, step.site["line"] if step.site else None) for step in steps}
    loop_line = line_of(many_sites, "await double(i)")
    gather_line = line_of(many_sites, "asyncio.gather")
    assert where[0] == where[1] == where[2] == ("activity", loop_line)
    assert where[3] == ("timer", line_of(many_sites, "asyncio.sleep(0.001)"))
    assert {where[4], where[5]} == {("activity", gather_line), ("timer", gather_line)}
    assert where[6] == ("status", line_of(many_sites, "set_status"))
    assert where[7] == ("child", line_of(many_sites, "run_child"))
    assert where[8] == ("wait", line_of(many_sites, "wait_for_event"))
    assert 9 not in where  # (the wait's timeout timer: shown as part of the wait, not a step)
    for step in steps:
        assert step.site is not None
        assert step.site["file"] == __file__
        assert step.site["function"] == "many_sites"
    # A later step from a site carries its number alone: 3 bytes, no path.
    later = [r for r in journal if r.get("s") in (1, 2)]
    assert all("wp" not in record and record["w"] == 0 for record in later)


async def test_a_resumed_run_uses_the_numbers_its_journal_names(tmp_path: Path) -> None:
    release = asyncio.Event()

    @durable.activity(name="blocked")
    async def blocked() -> None:
        await release.wait()

    @durable.workflow(name="resumed")
    async def resumed() -> int:
        for i in range(2):
            await double(i)
            if i == 0:
                await blocked()
        return 0

    async with durable.Runtime(tmp_path, stop_grace=0) as runtime:
        await runtime.start(resumed, id="r")
        async with asyncio.timeout(10):
            while not any(r.get("s") == 1 for r in await journal_of(tmp_path, "r")):
                await asyncio.sleep(0.01)
    release.set()  # (the next runtime runs it again: in doubt, not recorded)
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(resumed, id="r") == 0
    journal = await journal_of(tmp_path, "r")
    assert [r["w"] for r in journal if r.get("s") == 2] == [0]  # (the loop's, named in run 1)
    assert sum("wp" in r for r in journal) == 2  # the loop's line and the blocked call's


@durable.workflow
async def drops_a_timer() -> str:
    for i in range(2):
        try:
            async with asyncio.timeout(5 if i == 0 else 0.001):  # i = 0: let go of unwritten
                if i:
                    await asyncio.sleep(1)
        except TimeoutError:
            pass
    return "done"


async def test_a_site_whose_first_step_left_no_record_is_named_by_the_next(
    tmp_path: Path,
) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(drops_a_timer, id="d") == "done"
    steps = history("d", await journal_of(tmp_path, "d")).steps
    assert [step.step for step in steps] == [1, 2]  # (step 0 left no record)
    assert all(step.site is not None for step in steps), steps


async def test_a_journal_without_call_sites_still_reads(tmp_path: Path) -> None:
    start = records.start("old", "old", [], 1.8e9, 7)
    done = records.done(0, "step", "ab", 1, now=1.8e9, result=1)
    built = history("old", [dict(start), dict(done)])
    assert built.steps[0].site is None


async def twice_from(x: int) -> int:
    return await double(x)  # one site, called from two frames of this helper


async def once_from(x: int) -> int:
    return await double(x)  # another function: same offsets, another site


@durable.workflow
async def helpers() -> int:
    total = await twice_from(1) + await twice_from(2)
    total += await once_from(3)
    total += await twice_from(4)
    return total


async def test_a_site_is_its_code_and_place_whatever_frame_runs_it(tmp_path: Path) -> None:
    async with durable.Runtime(tmp_path) as runtime:
        assert await runtime.run(helpers, id="h") == 20
    steps = history("h", await journal_of(tmp_path, "h")).steps
    found = [(step.site["function"], step.site["line"]) for step in steps if step.site]
    twice, once = line_of(twice_from, "await double"), line_of(once_from, "await double")
    assert found == [
        ("twice_from", twice),
        ("twice_from", twice),
        ("once_from", once),
        ("twice_from", twice),
    ]
