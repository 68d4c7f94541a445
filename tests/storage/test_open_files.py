"""Sleepers keep their journal's descriptor (and lock): many of them need many descriptors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import asyncio, resource, sys
import durable

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

@durable.workflow(name="sleeper")
async def sleeper(n: int) -> int:
    await durable.sleep(3600)
    return n

async def main() -> None:
    async with durable.Runtime(sys.argv[1], suspend_after=0) as runtime:
        for n in range(600):
            await runtime.start(sleeper, n, id=f"s{n}")
        while len(runtime._mail.sleeping) < 600:
            await asyncio.sleep(0.02)
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        print("sleeping", len(runtime._mail.sleeping), limit)

asyncio.run(main())
"""


def run_script(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` in a process of its own (its limits are its own), on a directory."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "journals")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_more_sleepers_than_the_soft_open_file_limit(tmp_path: Path) -> None:
    """A process started with a soft limit of 256 descriptors holds 600 sleepers: the
    runtime raised the soft limit to the hard one."""
    done = run_script(SCRIPT, tmp_path)
    count, limit = done.stdout.split()[1:]
    assert count == "600"
    assert int(limit) > 600


HARD_LIMIT_SCRIPT = """
import asyncio, resource, sys
import durable

resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

@durable.workflow(name="sleeper")
async def sleeper(n: int) -> int:
    await durable.sleep(3600)
    return n

async def main() -> None:
    async with durable.Runtime(sys.argv[1], suspend_after=0) as runtime:
        try:
            for n in range(100):
                await runtime.start(sleeper, n, id=f"s{n}")
        except durable.TooManyOpenJournals as error:
            print("refused", error)

asyncio.run(main())
"""


def test_past_the_hard_limit_a_start_says_why(tmp_path: Path) -> None:
    """Past the hard limit a start is refused with a durable error that says what to do
    (it was a bare OSError EMFILE)."""
    done = run_script(HARD_LIMIT_SCRIPT, tmp_path)
    assert done.stdout.startswith("refused cannot open journal"), done.stdout
    assert "too many open files" in done.stdout
    assert "ulimit -Hn" in done.stdout
