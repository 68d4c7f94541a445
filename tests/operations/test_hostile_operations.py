"""Resume, restart and fork as a hostile operator (or a second one at the same time) uses them.

Two resumes at once write one record; ids that could name a file elsewhere, an id another
run has, overrides of steps that are not activities or come after the live part, values
the journal cannot hold: each a clear durable error, with nothing written anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import durable
from durable import Runtime
from durable._engine import _records as records
from durable._reading import read_workflow

from . import app

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh() -> None:
    app.BROKEN.clear()
    app.CALLS.clear()


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (and its parent's listing), byte for byte."""
    files = {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }
    files["(parent)"] = "\n".join(sorted(p.name for p in directory.parent.iterdir())).encode()
    return files


async def failed_order(directory: Path, workflow_id: str = "o1") -> None:
    app.BROKEN.add("charge")
    async with Runtime(directory, workflows=[app.order]) as runtime:
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(app.order, "o", id=workflow_id)
    app.BROKEN.clear()


async def test_two_resumes_at_once_write_one_record(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    await failed_order(directory)
    first, second = Runtime(directory, workflows=[app.order]), Runtime(directory)
    async with first, second:  # (two runtimes: as two processes, each with its own lock)
        # With one request id (an operator's retry beside the first): both follow the run.
        handles = await asyncio.gather(
            first.resume("o1", request_id="r"), second.resume("o1", request_id="r")
        )
        for handle in handles:
            assert await handle.result() == ["reserved o", "pay-o", "shipped o after pay-o"]
        journal = await read_workflow(first._store, "o1")
    assert [record["k"] for record in journal].count(records.RESUME) == 1
    assert app.CALLS.count("ship") == 1


async def test_two_resumes_without_a_request_id_never_resume_twice(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    await failed_order(directory)
    first, second = Runtime(directory, workflows=[app.order]), Runtime(directory)
    async with first, second:
        outcomes = await asyncio.gather(
            first.resume("o1"), second.resume("o1"), return_exceptions=True
        )
        for outcome in outcomes:  # (the second finds it resumed, or completed since)
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, durable.ActionRefused), outcome
                assert outcome.state == "completed"
            else:
                assert (await outcome.result())[1] == "pay-o"
        assert not all(isinstance(outcome, BaseException) for outcome in outcomes)
        journal = await read_workflow(first._store, "o1")
    assert [record["k"] for record in journal].count(records.RESUME) == 1
    assert app.CALLS.count("ship") == 1


HOSTILE_IDS = [
    *("../outside", "a/b", "..", ".hidden", "nul\x00byte", "x" * 5000),
    *("\uff4f1", "o1\n", "\u202eevil", ""),  # (a full-width o; a right-to-left mark)
]


@pytest.mark.parametrize("new_id", HOSTILE_IDS)
async def test_hostile_new_ids_are_refused_and_nothing_is_written(
    tmp_path: Path, new_id: str
) -> None:
    directory = tmp_path / "journals"
    await failed_order(directory)
    before = snapshot(directory)
    async with Runtime(directory, workflows=[app.order]) as runtime:
        acts: list[Callable[[], Awaitable[object]]] = [
            lambda: runtime.fork("o1", from_failure=True, new_id=new_id, start=False),
            lambda: runtime.restart("o1", new_id=new_id, start=False),
        ]
        for act in acts:
            with pytest.raises(durable.InvalidWorkflowId):
                await act()
    assert snapshot(directory) == before


async def test_a_new_id_that_names_an_unrelated_run_is_refused_and_left_alone(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journals"
    await failed_order(directory)
    async with Runtime(directory, workflows=[app.order]) as runtime:
        await runtime.run(app.order, "other", id="bystander")
        before = snapshot(directory)
        acts: list[Callable[[], Awaitable[object]]] = [
            lambda: runtime.fork("o1", from_failure=True, new_id="bystander", start=False),
            lambda: runtime.restart("o1", new_id="bystander", start=False),
        ]
        for act in acts:
            with pytest.raises(durable.ActionRefused, match=r"'bystander'.*workflow 'order'"):
                await act()
        assert snapshot(directory) == before


async def test_overrides_that_cannot_be_recorded_there_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    async with Runtime(directory, workflows=[app.order, app.waits]) as runtime:
        await runtime.run(app.order, "o", id="done")
        waiting = await runtime.start(app.waits, "w", id="waited")
        while (await runtime.describe("waited")).state is not durable.WorkflowState.WAITING:
            await asyncio.sleep(0.01)
        await runtime.send_event("waited", "approved", "yes")
        await waiting.result()
        before = snapshot(directory)
        refusals: list[tuple[str, int, dict[int, object], str]] = [
            # (step 1 of "waits" is its wait for an event: no activity result to replace)
            ("waited", 2, {1: "x"}, "no outcome of an activity"),
            # (step 2 comes after the live part: the fork runs it, nothing to replace)
            ("done", 1, {2: "shipped"}, "not before the step the fork runs live from"),
            ("done", 2, {0: b"bytes"}, "returns str"),
            ("done", 2, {0: 1j}, "does not encode"),
            ("done", 2, {1: {"amount": "x", "reference": "r"}}, "returns Receipt"),
        ]
        for source, at_step, override, says in refusals:
            with pytest.raises(durable.InvalidOverride, match=says):
                await runtime.fork(source, at_step=at_step, override=override, start=False)
        with pytest.raises(durable.RecordTooLarge):  # (past the record limit: not written)
            await runtime.fork("done", at_step=1, override={0: "x" * (65 << 20)}, start=False)
        after = snapshot(directory)
        assert {k for k in after if after[k] != before.get(k)} == set()
        assert after == before


def tear(path: Path, size_before: int) -> None:
    """Cut what was appended after `size_before` bytes to its first few: a power loss
    part-way through writing it (its frame is torn; the sync mark after it is gone)."""
    data = path.read_bytes()
    assert len(data) > size_before + 6
    path.write_bytes(data[: size_before + 6])


async def test_a_torn_resume_record_is_as_if_never_written_and_resume_again_works(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journals"
    await failed_order(directory)
    size = (directory / "o1.journal").stat().st_size
    async with Runtime(directory) as operator:
        await operator.resume("o1", start=False, request_id="r")
    tear(directory / "o1.journal", size)
    async with Runtime(directory, workflows=[app.order]) as runtime:
        assert (await runtime.describe("o1")).state is durable.WorkflowState.FAILED
        handle = await runtime.resume("o1", request_id="r")  # (its retry: written again)
        assert (await handle.result())[1] == "pay-o"
        journal = await read_workflow(runtime._store, "o1")
    assert [record["k"] for record in journal].count(records.RESUME) == 1


async def test_a_torn_link_record_is_finished_by_the_forks_retry(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    await failed_order(directory)
    size = (directory / "o1.journal").stat().st_size
    async with Runtime(directory, workflows=[app.order]) as runtime:
        await runtime.fork("o1", from_failure=True, new_id="f", start=False)
        fork_bytes = (directory / "f.journal").read_bytes()
        tear(directory / "o1.journal", size)  # (the link, the source's last record)
        source = await read_workflow(runtime._store, "o1")
        assert records.LINK not in [record["k"] for record in source]
        again = await runtime.fork("o1", from_failure=True, new_id="f")
        assert (await again.result())[1] == "pay-o"
        source = await read_workflow(runtime._store, "o1")
        fork = await read_workflow(runtime._store, "f")
    assert [record["k"] for record in source].count(records.LINK) == 1
    assert [record["k"] for record in fork].count(records.START) == 1
    assert (directory / "f.journal").read_bytes().startswith(fork_bytes)


async def test_who_and_why_that_are_not_text_are_refused_not_journaled(tmp_path: Path) -> None:
    """(A journal record with them would be unreadable: every later read refused it.)"""
    directory = tmp_path / "journals"
    await failed_order(directory)
    before = snapshot(directory)
    async with Runtime(directory) as runtime:
        bad: list[tuple[Callable[[], Awaitable[object]], str]] = [
            (lambda: runtime.resume("o1", request_id=5), "request_id must be text"),  # type: ignore[arg-type]
            (lambda: runtime.resume("o1", by=123), "by must be text"),  # type: ignore[arg-type]
            (lambda: runtime.restart("o1", reason=["x"]), "reason must be text"),  # type: ignore[arg-type]
            (lambda: runtime.fork("o1", at_step=0, by=b"me"), "by must be text"),  # type: ignore[arg-type]
        ]
        for act, says in bad:
            with pytest.raises(TypeError, match=says):
                await act()
        with pytest.raises(durable.InvalidBulkOptions, match="by must be text"):
            await runtime.bulk("resume", durable.WorkflowFilter(state="failed"), by=1)  # type: ignore[arg-type]
        assert (await runtime.describe("o1")).state is durable.WorkflowState.FAILED
    assert snapshot(directory) == before
