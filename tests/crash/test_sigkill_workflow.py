"""The order workflow SIGKILLed at moments hypothesis picks, restarted until it finishes.

Checks what DESIGN.md promises: the result equals an uninterrupted run's; no step runs
again once the workflow moved past it (its result was journaled); a step re-runs only when
a kill caught it in flight, and then with the same idempotency key; the journal always opens.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable import JournalDirectory
from durable._storage._format import HEADER_SIZE

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("order_app.py")
STEPS = ["charge_payment", "update_inventory", "create_shipment", "send_email"]
EXPECTED = "track_pay_o-1:42:o-1"


def run_once(directory: Path, ledger: Path, kill_after: float | None) -> str | None:
    """Run the app; SIGKILL it after `kill_after` seconds. Its RESULT line, if it got there."""
    with subprocess.Popen(
        [sys.executable, str(APP), str(directory), str(ledger), "o-1"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        if kill_after is not None:
            try:
                process.wait(kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
    if process.returncode == -signal.SIGKILL:
        return None
    assert process.returncode == 0, f"the app failed: {output}"
    return output.split("RESULT ", 1)[1].strip()


def check_ledger(lines: list[list[str]], processes: int) -> None:
    check_order(lines, processes, STEPS)


def check_order(lines: list[list[str]], processes: int, steps: list[str]) -> None:
    """Each step ran with one key, at most once per process, never after the next began."""
    starts = [
        (index, step, key) for index, (event, step, key, _) in enumerate(lines) if event == "start"
    ]
    for position, step in enumerate(steps):
        runs = [(index, key) for index, name, key in starts if name == step]
        assert runs, f"{step} never ran"
        assert len({key for _, key in runs}) == 1, f"{step} ran with different keys: {runs}"
        assert len(runs) <= processes, f"{step} ran {len(runs)} times in {processes} runs"
        if position + 1 < len(steps):
            moved_on = min(index for index, name, _ in starts if name == steps[position + 1])
            late = [index for index, _ in runs if index > moved_on]
            assert not late, f"{step} ran again after the workflow had moved past it"


async def journal_opens(directory: Path) -> int:
    async with JournalDirectory(directory) as store:
        journal = await store.open("o-1")
        count = len(journal.records)
        await journal.close()
    return count


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kills=st.lists(st.floats(min_value=0.05, max_value=0.9), min_size=1, max_size=4))
def test_killed_and_restarted_the_order_workflow_finishes_charging_once(
    tmp_path_factory: pytest.TempPathFactory, kills: list[float]
) -> None:
    root = tmp_path_factory.mktemp("crash")
    directory, ledger = root / "journals", root / "ledger.txt"
    result, processes = None, 0
    for kill_after in [*kills, None]:
        processes += 1
        result = run_once(directory, ledger, kill_after)
        journal = directory / "o-1.journal"
        if journal.exists():
            size = journal.stat().st_size
            records = asyncio.run(journal_opens(directory))
            # (killed between the file's creation, its header, and its start record's
            # write: a journal never written, which opens empty; anything more reads)
            assert records > 0 or size <= HEADER_SIZE, f"{size} bytes read as no record"
        if result is not None:
            break
    assert result == EXPECTED
    lines = [line.split() for line in ledger.read_text().splitlines()]
    check_ledger(lines, processes)
    # Once finished, running again replays the recorded result and runs nothing.
    before = ledger.read_text()
    assert run_once(directory, ledger, None) == EXPECTED
    assert ledger.read_text() == before


def test_an_uninterrupted_run_gives_the_expected_result(tmp_path: Path) -> None:
    started = time.monotonic()
    assert run_once(tmp_path / "journals", tmp_path / "ledger.txt", None) == EXPECTED
    assert time.monotonic() - started < 30
