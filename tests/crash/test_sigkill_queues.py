"""A queue's concurrency limit holds across processes, and through a SIGKILL.

Three processes serve one queue (concurrency 2) on one directory; the test SIGKILLs one
while it runs a workflow of the queue. The activities count the live processes' running
marks (queue_app.py): never more than 2, so no slot is counted twice; and every workflow
ends, the killed one resumed by another process, so no slot is leaked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable._storage._queue_files import QueueFiles

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("queue_app.py")
JOBS = 12


def _python(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(APP.parent.parent.parent)}
    return subprocess.Popen(
        [sys.executable, str(APP), *args], env=env, stdout=subprocess.PIPE, text=True
    )


def _wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigkill_releases_slots_and_never_counts_one_twice(tmp_path: Path) -> None:
    directory, markers = tmp_path / "journals", tmp_path / "markers"
    markers.mkdir()
    producer = _python(str(directory), str(markers), "enqueue", str(JOBS))
    assert producer.wait(timeout=20) == 0
    servers = [_python(str(directory), str(markers), "serve") for _ in range(3)]
    try:
        for server in servers:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "serving"

        def running_in_a_server() -> int | None:
            for name in os.listdir(markers):
                pid = name.split("-")[0]
                if pid.isdigit() and int(pid) in {server.pid for server in servers}:
                    return int(pid)
            return None

        _wait_for(lambda: running_in_a_server() is not None, 15)
        victim = next(server for server in servers if server.pid == running_in_a_server())
        victim.send_signal(signal.SIGKILL)
        victim.wait()

        done = markers / "done"
        _wait_for(lambda: done.exists() and len(set(done.read_text().split())) == JOBS, 20)
        assert not (markers / "violation").exists(), (markers / "violation").read_text()
        assert set(done.read_text().split()) == {str(n) for n in range(JOBS)}
        assert victim.returncode == -signal.SIGKILL
        # Every admission was forgotten as its workflow ended: nothing queued, none leaked.
        files = QueueFiles(directory, "kill-test", create=False)
        try:
            _wait_for(lambda: not files.admitted(), 5)
            assert not files.waiting()
        finally:
            files.close()
    finally:
        for process in [producer, *servers]:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
