"""A runner killed anywhere between an event's post and its own suspension strands nothing.

The runner of a workflow that waits for an event suspends (unloads) at once; a sender posts
the event at a moment hypothesis picks, and the runner is SIGKILLed at another. Whatever the
order of the post, the runner's `note()` of its due time and the kill, a serving process
takes the workflow over once the lease lapses and runs it to its end with that event
(before, a post that raced the suspension could be left behind due = 'infinity' for ever).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from durable import PostgresStore, Runtime

from .pg_waiter_app import waiter

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("pg_waiter_app.py")


async def post_and_serve(
    dsn: str, workflow_id: str, runner: subprocess.Popen[str], kill_after: float
) -> str:
    async with Runtime(
        store=PostgresStore(dsn), workflows=[waiter], event_poll_interval=0.05
    ) as runtime:
        await runtime.send_event(workflow_id, "go", "yes")
        await asyncio.sleep(kill_after)
        runner.kill()
        runner.wait()
        serving = asyncio.ensure_future(runtime.serve(poll_interval=0.1))
        try:  # (serve() alone must find it: a handle would take it over by itself)
            async with asyncio.timeout(20):
                while (await runtime.describe(workflow_id)).ended is None:
                    await asyncio.sleep(0.05)
            return str(await (await runtime.handle(workflow_id)).result())
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(post_after=st.floats(0.0, 0.1), kill_after=st.floats(0.0, 0.1))
def test_a_runner_killed_between_post_and_suspension_strands_nothing(
    postgres_dsn: str, post_after: float, kill_after: float
) -> None:
    workflow_id = f"w-{uuid.uuid4().hex[:8]}"
    runner = subprocess.Popen(
        [sys.executable, str(APP), postgres_dsn, workflow_id], stdout=subprocess.PIPE, text=True
    )
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline().strip() == "started"
        time.sleep(post_after)
        result = asyncio.run(post_and_serve(postgres_dsn, workflow_id, runner, kill_after))
    finally:
        runner.kill()
        runner.wait()
        if runner.stdout is not None:
            runner.stdout.close()
    # (the runner may have finished it before it was killed: the same outcome either way)
    assert result == "shipped (yes)"
