"""Streams across a SIGKILL, in four processes: a writer killed mid-activity, a third
process resuming it, and two readers in processes of their own that follow the stream
from before the kill to the end: no value twice, none lost, the rerun marked restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import asyncio, json, sys
    import durable

    directory, mode = sys.argv[1:3]
    TOKENS = durable.Stream("tokens", str)

    @durable.activity
    async def speak() -> str:
        for word in ("one", "two", "three", "four"):
            TOKENS.append(word)
            if word == "three" and mode == "write":
                print("blocked", flush=True)
                await asyncio.sleep(3600)  # killed here
        return "said"

    @durable.workflow
    async def chat() -> str:
        TOKENS.append("<start>")
        said = await speak()
        TOKENS.append("<end>")
        return said

    async def main():
        async with durable.Runtime(directory, workflows=[chat]) as runtime:
            if mode == "write":
                await runtime.run(chat, id="chat")
            elif mode == "resume":
                [handle] = await runtime.recover()
                print("result", await handle.result(), flush=True)
            else:  # a reader: every item as a JSON line, until the run ends
                out = open(sys.argv[3], "a")
                print("reading", flush=True)
                while True:
                    try:
                        async for item in runtime.read_stream("chat", TOKENS, poll_interval=0.01):
                            out.write(json.dumps([item.offset, item.value, item.attempt,
                                                  item.restarted]) + "\\n")
                            out.flush()
                        break
                    except durable.WorkflowNotFound:
                        await asyncio.sleep(0.01)  # (started before the workflow was)

    asyncio.run(main())
    """
)


def test_two_readers_elsewhere_see_every_value_once_across_a_kill_and_a_resume(
    tmp_path: Path,
) -> None:
    app, directory = tmp_path / "app.py", tmp_path / "j"
    app.write_text(APP)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    outs = [tmp_path / "reader-1.jsonl", tmp_path / "reader-2.jsonl"]
    readers = [
        subprocess.Popen(
            [sys.executable, str(app), str(directory), "read", str(out)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for out in outs
    ]
    try:
        for reader in readers:  # (both wait for a workflow that does not exist yet)
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "reading"
        with subprocess.Popen(
            [sys.executable, str(app), str(directory), "write"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        ) as writer:
            try:
                assert writer.stdout is not None
                assert writer.stdout.readline().strip() == "blocked"
                deadline = time.monotonic() + 30  # the readers got the values so far
                while not all(
                    out.exists() and len(out.read_text().splitlines()) >= 4 for out in outs
                ):
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            finally:
                writer.send_signal(signal.SIGKILL)
                writer.wait(timeout=30)
        resumed = subprocess.run(
            [sys.executable, str(app), str(directory), "resume"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.strip() == "result said"
        for reader in readers:
            assert reader.wait(timeout=30) == 0
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
            if reader.stdout is not None:
                reader.stdout.close()
    expected = [
        [0, "<start>", None, False],
        [1, "one", 1, False],
        [2, "two", 1, False],
        [3, "three", 1, False],
        [4, "one", 1, True],  # the attempt ran again in the resuming process
        [5, "two", 1, False],
        [6, "three", 1, False],
        [7, "four", 1, False],
        [8, "<end>", None, False],
    ]
    for out in outs:
        assert [json.loads(line) for line in out.read_text().splitlines()] == expected
