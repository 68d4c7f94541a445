"""A writer SIGKILLed at a moment hypothesis picks never loses a record it reported durable."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable import JournalDirectory

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from durable import JournalDirectory

    async def writer(store, name):
        journal = await store.open(name)   # recovers; resume after the last durable step
        start = len(journal.records)
        for step in range(start, start + 100_000):
            await journal.append(f"{name}:{step}".encode())
            print(name, step, flush=True)   # reported only once durable

    async def main():
        directory, count = sys.argv[1], int(sys.argv[2])
        store = JournalDirectory(directory)
        await asyncio.gather(*(writer(store, f"w{i}") for i in range(count)))

    asyncio.run(main())
    """
)


def record_ack(acked: dict[str, int], line: str) -> None:
    """Note one acknowledgement; a line the kill cut short acknowledges nothing."""
    if line.endswith("\n"):
        name, step = line.split()
        acked[name] = int(step)


def run_and_kill(directory: Path, writers: int, acks_before_kill: int) -> dict[str, int]:
    """Start the writer, SIGKILL it after `acks_before_kill` acknowledgements (or 5 s)."""
    acked: dict[str, int] = {}
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(writers)],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        deadline = time.monotonic() + 5
        seen = 0
        while seen < acks_before_kill and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                line = process.stdout.readline()
                if not line:
                    break
                record_ack(acked, line)
                seen += 1
        os.kill(process.pid, signal.SIGKILL)
        # Lines already in the pipe were reported durable before the kill: count them too.
        for line in process.stdout:
            record_ack(acked, line)
        process.wait()
    return acked


async def read_all(directory: Path) -> dict[str, list[bytes]]:
    async with JournalDirectory(directory) as store:
        result = {}
        for name in await store.list():
            journal = await store.open(name)  # recovers, as a restarted runner would
            result[name] = [record.payload for record in journal.records]
            await journal.close()
        return result


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    writers=st.sampled_from([1, 4]),
    kills=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=3),
)
def test_sigkill_never_loses_an_acknowledged_record(
    tmp_path_factory: pytest.TempPathFactory, writers: int, kills: list[int]
) -> None:
    directory = tmp_path_factory.mktemp("sigkill")
    acknowledged: dict[str, int] = {}
    for acks_before_kill in kills:
        acknowledged.update(run_and_kill(directory, writers, acks_before_kill))
        contents = asyncio.run(read_all(directory))
        for name, last in acknowledged.items():
            steps = [int(payload.split(b":")[1]) for payload in contents[name]]
            assert len(steps) > last, f"{name}: step {last} was acknowledged, then lost"
            assert steps == list(range(len(steps))), f"{name}: records lost or reordered"
