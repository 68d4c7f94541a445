"""OpenTelemetry across a crash: a process SIGKILLed mid-workflow, another one resuming it.

Both processes use the application's global TracerProvider (`opentelemetry=True`) and
export their spans to one file; the test reads the tree they make together.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import asyncio, json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    import durable

    directory, spans_file, mode = sys.argv[1:4]

    class FileExporter(SpanExporter):
        def export(self, spans):
            with open(spans_file, "a") as out:
                for span in spans:
                    out.write(json.dumps({
                        "name": span.name,
                        "trace": span.context.trace_id,
                        "id": span.context.span_id,
                        "parent": span.parent.span_id if span.parent else None,
                        "links": [link.context.span_id for link in span.links],
                        "attributes": dict(span.attributes),
                        "process": mode,
                    }) + "\\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)  # the application's; durable only looks it up

    @durable.activity
    async def step(n: int) -> int:
        if n == 2 and mode == "start":
            print("blocked", flush=True)
            await asyncio.sleep(3600)  # killed here
        return n

    @durable.workflow
    async def flow() -> int:
        total = 0
        for n in range(4):
            total += await step(n)
        return total

    async def main():
        async with durable.Runtime(directory, workflows=[flow], opentelemetry=True) as runtime:
            if mode == "start":
                with trace.get_tracer("app").start_as_current_span("POST /flows"):
                    handle = await runtime.start(flow, id="crashy")
                await handle.result()
            else:
                [handle] = await runtime.recover()
                print("result", await handle.result(), flush=True)

    asyncio.run(main())
    """
)


def spans_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_resumed_workflow_stays_in_its_callers_trace_and_replays_no_span(
    tmp_path: Path,
) -> None:
    app, spans_file, directory = tmp_path / "app.py", tmp_path / "spans.jsonl", tmp_path / "j"
    app.write_text(APP)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(app), str(directory), str(spans_file)]
    with subprocess.Popen([*command, "start"], stdout=subprocess.PIPE, text=True, env=env) as first:
        try:
            assert first.stdout is not None
            assert first.stdout.readline().strip() == "blocked"  # step 2 runs: kill it there
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
    resumed = subprocess.run(
        [*command, "resume"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "result 6"

    spans = spans_of(spans_file)
    [caller] = [s for s in spans if s["name"] == "POST /flows"]
    killed = [s for s in spans if s["process"] == "start" and s["name"] == "activity step"]
    # Steps 0 and 1 ended before the kill; the killed run's own span never ended.
    assert [s["attributes"]["durable.step"] for s in killed] == [0, 1]
    [killed_run_id] = {s["parent"] for s in killed}
    assert not any(s["id"] == killed_run_id for s in spans)
    [run] = [s for s in spans if s["name"] == "workflow flow"]  # (the resumed run's)
    assert run["process"] == "resume"
    assert run["parent"] == caller["id"]  # journaled with the start, across the crash
    assert run["trace"] == caller["trace"]
    assert run["links"] == [killed_run_id]  # the run it resumes (its `run` record)
    assert run["attributes"]["durable.replayed"] == 2
    again = [s for s in spans if s["process"] == "resume" and s["name"] == "activity step"]
    assert [s["attributes"]["durable.step"] for s in again] == [2, 3]  # 0 and 1: replayed
    assert {s["parent"] for s in again} == {run["id"]}
    assert {s["trace"] for s in spans} == {caller["trace"]}
