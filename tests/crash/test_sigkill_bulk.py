"""A bulk cancel or resume SIGKILLed half-way finishes when run again, and does nothing twice.

The kill lands while a batch of cancellations is posted (or resume records written) but not
yet journaled by the bulk (bulk_app pauses there): the retry re-runs those steps, and each
workflow's inbox takes the bulk's request id once (each journal keeps one resume record
with it); the bulk's journal holds one outcome per workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable._catalog import Catalog
from durable._engine import _records as records
from durable._reading import read_workflow
from durable._runtime import Runtime

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("bulk_app.py")
WORKFLOWS = 40


def run_app(directory: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(APP), str(directory), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def bulk_progress(directory: Path, bulk_id: str) -> int:
    """How many workflows the bulk has journaled an outcome for (its published status)."""
    async with Catalog(directory) as catalog:
        try:
            described = await catalog.describe(bulk_id)
        except LookupError:
            return 0
    return int(described.status["done"]) if isinstance(described.status, dict) else 0


async def cancels(directory: Path) -> dict[str, list[str | None]]:
    async with Catalog(directory) as catalog:
        return {
            f"nap-{n:03d}": [
                m.message_id for m in await catalog.inbox(f"nap-{n:03d}") if m.kind == "cancel"
            ]
            for n in range(WORKFLOWS)
        }


def test_a_killed_bulk_cancel_finishes_on_retry_and_never_doubles(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    made = run_app(directory, "make", str(WORKFLOWS))
    _, err = made.communicate(timeout=60)
    assert made.returncode == 0, err
    first = run_app(directory, "cancel", "bulk-kill")
    deadline = time.monotonic() + 60
    while asyncio.run(bulk_progress(directory, "bulk-kill")) < 16:  # (the first batch)
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the bulk made no progress"
        time.sleep(0.01)
    time.sleep(0.1)  # (the second batch's cancellations are posted, not yet journaled)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    before = asyncio.run(cancels(directory))
    posted = {name for name, ids in before.items() if ids}
    assert 16 < len(posted) < WORKFLOWS, len(posted)  # (killed half-way, mid-batch)
    assert asyncio.run(bulk_progress(directory, "bulk-kill")) < len(posted)

    again = run_app(directory, "cancel", "bulk-kill")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    result = json.loads(out)
    assert result["resumed"] is True
    assert result["outcomes"] == {f"nap-{n:03d}": "cancelled" for n in range(WORKFLOWS)}
    after = asyncio.run(cancels(directory))
    assert after == {name: ["bulk:bulk-kill"] for name in after}  # (each exactly once)

    async def act_steps() -> int:
        async with Catalog(directory) as catalog:
            history = await catalog.history("bulk-kill")
        return sum(step.name == "durable.bulk.act" for step in history.steps)

    assert asyncio.run(act_steps()) == WORKFLOWS  # (one journaled outcome per workflow)


async def resume_ids(directory: Path) -> dict[str, list[str | None]]:
    """Each payer's resume records, by request id."""
    async with Runtime(directory) as runtime:
        found = {}
        for number in range(WORKFLOWS):
            journal = await read_workflow(runtime._store, f"pay-{number:03d}")
            found[f"pay-{number:03d}"] = [r.get("id") for r in journal if r["k"] == records.RESUME]
        return found


def test_a_killed_bulk_resume_finishes_on_retry_and_never_resumes_twice(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    made = run_app(directory, "fail", str(WORKFLOWS))
    _, err = made.communicate(timeout=60)
    assert made.returncode == 0, err
    first = run_app(directory, "resume", "bulk-kill")
    deadline = time.monotonic() + 60
    while asyncio.run(bulk_progress(directory, "bulk-kill")) < 16:  # (the first batch)
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the bulk made no progress"
        time.sleep(0.01)
    time.sleep(0.1)  # (the second batch's resume records are written, not yet journaled)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    before = asyncio.run(resume_ids(directory))
    written = {name for name, ids in before.items() if ids}
    assert 16 < len(written) < WORKFLOWS, len(written)  # (killed half-way, mid-batch)
    assert asyncio.run(bulk_progress(directory, "bulk-kill")) < len(written)

    again = run_app(directory, "resume", "bulk-kill")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    result = json.loads(out)
    assert result["resumed"] is True
    assert result["outcomes"] == {f"pay-{n:03d}": "resumed" for n in range(WORKFLOWS)}
    after = asyncio.run(resume_ids(directory))
    assert after == {name: ["bulk:bulk-kill"] for name in after}  # (each exactly once)


async def fork_records(directory: Path) -> dict[str, tuple[list[str], list[int]]]:
    """Each failed workflow's links, and the record count of each fork made from it."""
    async with Runtime(directory) as runtime:
        found = {}
        for number in range(WORKFLOWS):
            name = f"pay-{number:03d}"
            journal = await read_workflow(runtime._store, name)
            links = [r["id"] for r in journal if r["k"] == records.LINK]
            starts = []
            for link in links:
                fork = await read_workflow(runtime._store, link)
                starts.append([r["k"] for r in fork].count(records.START))
            found[name] = (links, starts)
        return found


def test_a_killed_bulk_fork_finishes_on_retry_and_never_forks_twice(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    made = run_app(directory, "fail", str(WORKFLOWS))
    _, err = made.communicate(timeout=60)
    assert made.returncode == 0, err
    first = run_app(directory, "fork", "bulk-fork")
    deadline = time.monotonic() + 60
    while asyncio.run(bulk_progress(directory, "bulk-fork")) < 16:  # (the first batch)
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the bulk made no progress"
        time.sleep(0.01)
    time.sleep(0.1)  # (the second batch's forks are made, not yet journaled by the bulk)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    linked = {name for name, (links, _) in asyncio.run(fork_records(directory)).items() if links}
    assert 16 < len(linked) < WORKFLOWS, len(linked)  # (killed half-way, mid-batch)

    again = run_app(directory, "fork", "bulk-fork")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    result = json.loads(out)
    assert result["resumed"] is True
    assert result["outcomes"] == {
        f"pay-{n:03d}": f"forked as pay-{n:03d}@bulk-fork" for n in range(WORKFLOWS)
    }
    after = asyncio.run(fork_records(directory))
    assert after == {name: ([f"{name}@bulk-fork"], [1]) for name in after}  # (each once)
