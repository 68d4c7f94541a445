"""A durable.Limit holds across processes sharing a directory, and through a SIGKILL.

One process's two activity calls hold both slots of a Limit(concurrency=2); two more
processes start workflows calling activities under the same Limit; the test SIGKILLs the
first mid-activity. The activities count the live processes' running marks (limit_app.py):
never more than 2; and the other processes' work all finishes, reaching 2 at once, so the
killed process's slots came back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("limit_app.py")
CALLS = 6


def _python(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(APP.parent.parent.parent)}
    return subprocess.Popen([sys.executable, str(APP), *args], env=env)


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _marks_of(markers: Path, pid: int) -> int:
    return sum(1 for name in os.listdir(markers) if name.startswith(f"{pid}-"))


def test_a_limit_holds_across_processes_and_a_sigkill_frees_its_slots(tmp_path: Path) -> None:
    directory, markers = tmp_path / "journals", tmp_path / "markers"
    markers.mkdir()
    holder = _python(str(directory), str(markers), "hold", "2")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        _wait_for(lambda: _marks_of(markers, holder.pid) == 2, 15)  # (both slots held)
        workers = [_python(str(directory), str(markers), "work", str(CALLS)) for _ in range(2)]
        holder.send_signal(signal.SIGKILL)  # (mid-activity: its two calls hold the slots)
        assert holder.wait(timeout=10) == -signal.SIGKILL
        for worker in workers:
            assert worker.wait(timeout=20) == 0
        assert not (markers / "violation").exists(), (markers / "violation").read_text()
        peaks = [int((markers / f"peak-{worker.pid}").read_text()) for worker in workers]
        assert max(peaks) == 2  # (both slots came back: the limit, not a leak, bounds it)
        assert _marks_of(markers, workers[0].pid) == _marks_of(markers, workers[1].pid) == 0
    finally:
        for process in [holder, *workers]:
            if process.poll() is None:
                process.kill()
                process.wait()
