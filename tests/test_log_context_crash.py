"""durable.logger across a SIGKILL: the resumed process replays the workflow's code, and
what it logged before the crash is not logged again (lines counted in a log file)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from durable._engine import _records as records
from durable._storage._directory import JournalDirectory

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import asyncio, json, logging, sys
    import durable

    directory, log_file, mode = sys.argv[1:4]

    class Json(logging.Formatter):
        def format(self, record):
            return json.dumps({
                "message": record.getMessage(),
                "workflow_id": getattr(record, "workflow_id", None),
                "step": getattr(record, "step", None),
                "attempt": getattr(record, "attempt", None),
                "process": mode,
            })

    handler = logging.FileHandler(log_file)
    handler.addFilter(durable.LogContext())
    handler.setFormatter(Json())
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)

    @durable.activity
    def step(n: int) -> int:  # sync: its records come from a worker thread
        logging.getLogger("shop").info("step %d runs", n)
        if n == 2 and mode == "start":
            print("blocked", flush=True)
            import time; time.sleep(3600)  # killed here
        return n

    @durable.workflow
    async def flow() -> int:
        total = 0
        for n in range(4):
            durable.logger.info("asking for step %d", n)
            total += await step(n)
        durable.logger.info("done: %d", total)
        return total

    async def main():
        async with durable.Runtime(directory, workflows=[flow]) as runtime:
            if mode == "start":
                await runtime.run(flow, id="logged")
            else:
                [handle] = await runtime.recover()
                print("result", await handle.result(), flush=True)

    asyncio.run(main())
    """
)


def step_under_way(directory: Path, step: int) -> bool:
    """Whether the journal holds step `step`'s attempt (its `sched` record)."""

    async def read() -> list[records.Record]:
        store = JournalDirectory(directory)
        try:
            return records.read_journal(await store.read("logged"), path="logged")
        finally:
            await store.close()

    return any(r["k"] == records.SCHEDULED and r["s"] == step for r in asyncio.run(read()))


def test_workflow_code_logs_once_across_a_crash_and_activities_carry_their_step(
    tmp_path: Path,
) -> None:
    app, log_file, directory = tmp_path / "app.py", tmp_path / "log.jsonl", tmp_path / "j"
    app.write_text(APP)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(app), str(directory), str(log_file)]
    with subprocess.Popen([*command, "start"], stdout=subprocess.PIPE, text=True, env=env) as first:
        try:
            assert first.stdout is not None
            assert first.stdout.readline().strip() == "blocked"
            deadline = time.monotonic() + 30  # its attempt is journaled (1 ms into it)
            while not step_under_way(directory, 2):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
    resumed = subprocess.run(
        [*command, "resume"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "result 6"
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    asked = [line["message"] for line in lines if line["message"].startswith("asking")]
    assert asked == [f"asking for step {n}" for n in range(4)]  # each once, not replayed
    assert [line["process"] for line in lines if line["message"].startswith("asking")] == [
        "start",
        "start",
        "start",
        "resume",
    ]
    runs = [
        (line["message"], line["step"], line["attempt"])
        for line in lines
        if "runs" in line["message"]
    ]
    # Step 2 ran in both processes (killed in the first); 0 and 1 only before the crash.
    assert runs == [
        ("step 0 runs", 0, 1),
        ("step 1 runs", 1, 1),
        ("step 2 runs", 2, 1),
        ("step 2 runs", 2, 1),
        ("step 3 runs", 3, 1),
    ]
    assert {line["workflow_id"] for line in lines} == {"logged"}
    assert sum(line["message"] == "done: 6" for line in lines) == 1
