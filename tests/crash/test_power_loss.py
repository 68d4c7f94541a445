"""Power loss, enumerated: every state a crash may leave opens and resumes without help.

A real run of two workflows (a retry, a status, a sleep long enough to unload, an event
from the inbox, a gather, and three generations of continue-as-new, sharing syncfs rounds)
is recorded at the file-system level (tests/crash/power_loss.py). For each crash point the
simulator builds the states a power loss may leave; each is laid out in a fresh directory
and resumed. Invariants, per state:

- it opens (no JournalCorrupted: only unsynced bytes differ from what was written);
- every record a sync had covered at the crash is still there (so every result the
  workflow had seen);
- no activity runs again for a step whose result is in the journal as opened;
- the final results are the recorded run's;
- nothing hangs.

The suite runs a slice of the crash points; `pytest tests/crash/test_power_loss.py
--thorough` runs them all (thousands of states) and prints the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import JournalMisplaced, RetryPolicy, StoredRecord, WorkflowFinished
from durable._encoding import decode
from durable._storage._format import seed_of
from durable._storage._frames import encode_frame, encode_frame_v2
from durable._storage._journal_opening import parse
from durable.testing import TestRuntime

from .power_loss import CrashState, FileSystemRecorder, Op, crash_states, model_at, write_state

pytestmark = pytest.mark.anyio

QUICK_CRASH_POINTS = 8


def forged_frames() -> bytes:
    """Bytes that hold valid frames claiming a sync of a terabyte: a sender's payload or a
    result carrying them must not forge structure. (Frames name their file's random id, so
    these hold frames of many ids; tests/storage forges one with the file's very id.)"""
    record = b"\x81\xa1k\xa3end"
    forged = b"".join(
        encode_frame_v2(record, 1 << 40, file_id, seed_of(Path(name)))
        for file_id in range(1, 16)
        for name in ("order.journal", "order.inbox", "billing.journal")
    )
    return b"prefix " + forged + encode_frame(record) + b" suffix"


FORGED = forged_frames()
APPROVAL = {"by": "ops", "note": FORGED}


@dataclass
class Scenario:
    """The workflows, and the log of every activity attempt they make."""

    calls: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    workflows: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        calls = self.calls

        def note() -> durable.ActivityInfo:
            info = durable.activity_info()
            calls.append(
                (info.workflow_id, info.activity_name, info.generation, info.step, info.attempt)
            )
            return info

        @durable.activity(name="charge", retry=RetryPolicy(initial_interval=1.0))
        async def charge(amount: int) -> bytes:
            if note().attempt == 1:
                raise ConnectionError("the card API is down")
            return FORGED + str(amount).encode()

        @durable.activity(name="reserve")
        async def reserve(item: str) -> str:
            note()
            return f"reserved {item}"

        @durable.activity(name="ship")
        async def ship(parts: list[str]) -> str:
            note()
            return "shipped " + ", ".join(parts)

        @durable.workflow(name="order")
        async def order(amount: int) -> dict[str, Any]:
            receipt = await charge(amount)
            durable.set_status({"stage": "charged"})
            await durable.sleep(120)  # over suspend_after: unloaded, then woken
            approval = await durable.wait_for_event("approve")
            parts = list(await asyncio.gather(reserve("book"), reserve("lamp")))
            shipped = await ship(parts)
            return {"receipt": receipt, "approval": approval, "shipped": shipped}

        @durable.activity(name="tick")
        async def tick(month: int) -> int:
            note()
            return month * 10

        @durable.workflow(name="billing")
        async def billing(month: int, total: int) -> int:
            total += await tick(month)
            if month < 3:
                durable.continue_as_new(month + 1, total)
            return total

        self.order, self.billing = order, billing
        self.workflows = [order, billing]

    async def drive(self, directory: Path, *, resume: bool = False) -> dict[str, Any]:
        """Run both workflows to their end in `directory` (start, or resume from a state)."""
        async with TestRuntime(directory, workflows=self.workflows) as runtime:
            order = await runtime.start(self.order, 7, id="order")
            billing = await runtime.start(self.billing, 1, 0, id="billing")
            if not resume:
                await billing.result()
            # A sender told of no success (a crash) sends again, with the same id.
            with contextlib.suppress(WorkflowFinished):
                await runtime.send_event("order", "approve", APPROVAL, event_id="approve-1")
            return {"order": await order.result(), "billing": await billing.result()}


@dataclass(frozen=True)
class Recording:
    ops: list[Op]
    results: dict[str, Any]


_recordings: dict[str, Recording] = {}


async def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    if "run" not in _recordings:
        directory = tmp_path_factory.mktemp("recorded") / "journals"
        scenario = Scenario()
        with FileSystemRecorder(directory.parent / "journals").installed() as recorder:
            results = await scenario.drive(directory)
        _recordings["run"] = Recording(recorder.ops, results)
    return _recordings["run"]


def records_as_opened(data: bytes, path: Path) -> list[StoredRecord]:
    """The records an open finds (another file's bytes at the name: moved aside, none)."""
    try:
        return parse(data, path).records
    except JournalMisplaced:
        return []


def done_steps(data: bytes, path: Path) -> set[tuple[int, int]]:
    """(generation, step) of every activity outcome in a journal's bytes, as opened."""
    records = [
        decode(record.payload, path=path, offset=record.offset)
        for record in records_as_opened(data, path)
    ]
    generation = next((r.get("gen", 0) for r in records if r.get("k") == "start"), 0)
    return {(generation, r["s"]) for r in records if r.get("k") == "done"}


async def check_state(state: CrashState, directory: Path, expected: dict[str, Any]) -> None:
    write_state(state, directory)
    opened = {
        name: records_as_opened(data, directory / name)
        for name, data in state.files.items()
        if name.endswith(".journal")
    }
    for name, durable_bytes in state.durable_prefix.items():
        if not name.endswith((".journal", ".inbox")) or name not in state.files:
            continue
        kept = [r.payload for r in records_as_opened(state.files[name], directory / name)]
        synced = [record.payload for record in parse(durable_bytes, directory / name).records]
        assert kept[: len(synced)] == synced, f"{name}: a record a sync had covered was cut"
    recorded = {
        name.removesuffix(".journal"): done_steps(state.files[name], directory / name)
        for name in opened
    }
    scenario = Scenario()
    async with asyncio.timeout(120):  # (a hang guard: a loaded machine may take 30 s)
        results = await scenario.drive(directory, resume=True)
    assert results == expected
    for workflow_id, _activity, generation, step, _attempt in scenario.calls:
        assert (generation, step) not in recorded.get(workflow_id, set()), (
            f"{workflow_id}: step {step} of generation {generation} ran again although its "
            "result was in the journal"
        )


def crash_points(ops: list[Op], thorough: bool) -> list[int]:
    points = [index for index, op in enumerate(ops) if op.kind != "create"]
    if thorough:
        return points
    chosen = random.Random(15).sample(points, min(QUICK_CRASH_POINTS, len(points)))
    return sorted(chosen)


@pytest.fixture
def thorough(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--thorough"))


async def test_every_power_loss_state_opens_and_resumes(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    thorough: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorded = await recording(tmp_path_factory)
    kinds = {op.kind for op in recorded.ops}
    assert {"write", "sync", "dirsync", "syncall", "link", "replace"} <= kinds, kinds
    points = crash_points(recorded.ops, thorough)
    checked = 0
    for point in points:
        for index, state in enumerate(crash_states(recorded.ops, point)):
            try:
                await check_state(state, tmp_path / f"{point}-{index}", recorded.results)
            except BaseException as error:
                raise AssertionError(f"state {state.label}: {error!r}") from error
            checked += 1
    with capsys.disabled():
        print(
            f"\npower loss: {len(recorded.ops)} file-system operations recorded, "
            f"{len(points)} crash points, {checked} states opened and resumed"
        )
    assert checked >= len(points)


def test_the_simulator_builds_what_a_power_loss_may_leave() -> None:
    ops = [
        Op("create", 0, name="x.journal"),
        Op("dirsync"),
        Op("write", 0, offset=0, data=b"A" * 10),
        Op("sync", 0),
        Op("write", 0, offset=10, data=b"B" * 10),
    ]
    states = crash_states(ops, 4)
    left = {state.files["x.journal"] for state in states}
    assert {
        b"A" * 10,  # the unsynced write lost
        b"A" * 10 + b"B" * 10,  # kept
        b"A" * 10 + b"B",  # torn
        b"A" * 10 + bytes(10),  # its size reached the disk, its data did not
    } <= left
    assert all(data.startswith(b"A" * 10) for data in left), "synced bytes never change"
    assert all(state.durable_prefix["x.journal"] == b"A" * 10 for state in states)
    # Before the directory fsync, the file itself may be missing.
    assert any("x.journal" not in state.files for state in crash_states(ops, 0))


def test_a_file_created_at_a_reused_inode_starts_empty(tmp_path: Path) -> None:
    """The kernel may give a new file the number of an inode just freed (ext4 often does):
    the recorder must not model it as holding the dead file's bytes. (A run whose
    order.inbox got the inode of billing's replaced first generation made every state
    after its creation a JournalMisplaced inbox: the flaky failure of the --thorough run.)"""
    directory = tmp_path / "journals"
    directory.mkdir()
    kernel_inodes = []
    with FileSystemRecorder(directory).installed() as recorder:
        for index in range(50):  # (the kernel's reuse is likely, not certain, in one round)
            old = os.open(directory / f"old-{index}.journal", os.O_RDWR | os.O_CREAT, 0o600)
            os.write(old, b"the old file's bytes")
            os.fdatasync(old)
            kernel_inodes.append(os.fstat(old).st_ino)
            os.close(old)
            os.unlink(directory / f"old-{index}.journal")
            new = os.open(directory / f"new-{index}.inbox", os.O_RDWR | os.O_CREAT, 0o600)
            os.write(new, b"new")
            kernel_inodes.append(os.fstat(new).st_ino)
            os.close(new)
    creates = [op for op in recorder.ops if op.kind == "create"]
    assert len(creates) == 100
    assert len({op.inode for op in creates}) == 100, (
        f"{100 - len(set(kernel_inodes))} inode numbers reused by the kernel"
    )
    model = model_at(recorder.ops, len(recorder.ops) - 1)
    for index in range(50):
        assert bytes(model.inodes[model.entries[f"new-{index}.inbox"]].content) == b"new"
    # And a model given one number twice (as the recorder gave before) starts it afresh.
    ops = [
        Op("create", 0, name="a.journal"),
        Op("write", 0, offset=0, data=b"A" * 10),
        Op("sync", 0),
        Op("unlink", name="a.journal"),
        Op("create", 0, name="b.inbox"),
        Op("write", 0, offset=0, data=b"B"),
    ]
    assert bytes(model_at(ops, len(ops) - 1).inodes[0].content) == b"B"


@pytest.mark.parametrize(
    "written", [b"", b"x" * 100, b"x" * 100_000], ids=["header", "small", "large"]
)
async def test_a_journal_whose_writer_died_before_its_first_sync_keeps_its_entry(
    tmp_path: Path, written: bytes
) -> None:
    """The first sync of a new journal makes its directory entry durable too (new_entry).

    A writer killed before that sync leaves a file whose entry the disk may not have: the
    next open (inline for a small file, in a worker thread for a large one) must make it
    durable before its handle acknowledges anything, or a power loss takes the whole file
    with the records it acknowledged (an at_most_once intent among them).
    """
    directory = tmp_path / "journals"
    directory.mkdir()
    with FileSystemRecorder(directory).installed() as recorder:
        async with durable.JournalDirectory(directory) as first:
            journal = await first.open("wf")
            if written:
                journal.write(written)
            await journal.abandon()  # (killed: no sync, no close)
        async with durable.JournalDirectory(directory) as second:
            journal = await second.open("wf")
            await journal.append(b"acknowledged")
            ops = list(recorder.ops)
            await journal.close()
    for state in crash_states(ops, len(ops) - 1):
        assert "wf.journal" in state.files, f"{state.label}: the journal is gone"
        records = parse(state.files["wf.journal"], directory / "wf.journal").records
        assert b"acknowledged" in [record.payload for record in records], state.label
