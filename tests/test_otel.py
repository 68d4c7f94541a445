"""OpenTelemetry (durable/_otel.py, _telemetry.py): spans, their tree, metrics, the extra."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import durable
from durable._engine import _records as records
from durable._storage._directory import JournalDirectory

pytestmark = pytest.mark.anyio

FAST = durable.RetryPolicy(initial_interval=0.01, maximum_attempts=3)


class Telemetry:
    """An application's providers: spans kept in memory, metrics read on demand."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.option = durable.OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )
        self.tracer = self.tracer_provider.get_tracer("app")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        if data is None:  # (nothing recorded yet)
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = [
                        (dict(point.attributes or {}), getattr(point, "value", None))
                        if hasattr(point, "value")
                        else (dict(point.attributes or {}), point.count)
                        for point in metric.data.data_points
                    ]
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    found = Telemetry()
    yield found
    found.tracer_provider.shutdown()
    found.meter_provider.shutdown()


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


seen_in_activities: dict[str, int] = {}  # activity -> the span current while it ran


@durable.activity(retry=FAST)
async def flaky_charge(order: str) -> str:
    seen_in_activities["charge"] = trace.get_current_span().get_span_context().span_id
    if "retried" not in seen_in_activities:
        seen_in_activities["retried"] = 1
        raise ConnectionError("payment API timed out")
    return f"paid {order}"


@durable.activity
def reserve(order: str) -> int:  # sync: runs in a worker thread, inside its attempt's span
    seen_in_activities["reserve"] = trace.get_current_span().get_span_context().span_id
    return 3


@durable.workflow
async def ship(order: str) -> str:
    return f"shipped {order}"


@durable.workflow
async def order_flow(order: str) -> str:
    paid = await flaky_charge(order)
    await reserve(order)
    await durable.sleep(0.01)
    shipped = await durable.run_child(ship, order)
    approval = await durable.wait_for_event("approved")
    return f"{paid}, {shipped}, {approval}"


async def test_a_workflows_spans_form_one_tree_under_its_caller(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    seen_in_activities.clear()
    async with durable.Runtime(
        tmp_path, opentelemetry=telemetry.option, suspend_after=None
    ) as runtime:
        with telemetry.tracer.start_as_current_span("POST /orders") as caller:
            handle = await runtime.start(order_flow, "o-1", id="o-1")
        async with asyncio.timeout(10):  # (its wait begins, then the event comes)
            while (await runtime.describe("o-1")).state is not durable.WorkflowState.WAITING:
                await asyncio.sleep(0.01)
        with telemetry.tracer.start_as_current_span("POST /approve") as sender:
            await runtime.send_event("o-1", "approved", "yes")
        assert await handle.result() == "paid o-1, shipped o-1, yes"
    [run] = telemetry.named("workflow order_flow")
    assert parent_of(run) == caller.get_span_context().span_id  # the caller's span
    assert trace_id(run) == caller.get_span_context().trace_id
    assert run.attributes is not None
    assert run.attributes["durable.workflow.id"] == "o-1"
    assert run.attributes["durable.outcome"] == "completed"
    first, second = telemetry.named("activity flaky_charge")
    assert [parent_of(first), parent_of(second)] == [span_id(run)] * 2
    assert first.attributes is not None
    assert second.attributes is not None
    assert (first.attributes["durable.attempt"], first.attributes["durable.outcome"]) == (
        1,
        "retrying",
    )
    assert first.attributes["error.type"] == "ConnectionError"
    assert (second.attributes["durable.attempt"], second.attributes["durable.outcome"]) == (
        2,
        "completed",
    )
    assert first.attributes["durable.step"] == 0
    # The activity ran inside its attempt's span: what it calls joins the trace.
    assert seen_in_activities["charge"] == span_id(second)
    [reserving] = telemetry.named("activity reserve")
    assert seen_in_activities["reserve"] == span_id(reserving)  # (in a worker thread too)
    [timer] = telemetry.named("timer")
    [child_step] = telemetry.named("child ship")
    [child_run] = telemetry.named("workflow ship")
    [waiting] = telemetry.named("wait_for_event approved")
    assert {parent_of(timer), parent_of(child_step), parent_of(waiting)} == {span_id(run)}
    assert parent_of(child_run) == span_id(child_step)  # the child's run: under its step
    assert timer.attributes is not None
    assert timer.attributes["durable.outcome"] == "fired"
    assert waiting.attributes is not None
    assert waiting.attributes["durable.outcome"] == "received"
    assert [link.context.span_id for link in waiting.links] == [sender.get_span_context().span_id]
    [event] = telemetry.named("event approved")
    assert parent_of(event) == sender.get_span_context().span_id  # the sender's span
    assert [link.context.span_id for link in event.links] == [span_id(run)]
    sent = {span_id(event), sender.get_span_context().span_id}  # (the sender's trace)
    assert {trace_id(span) for span in telemetry.spans() if span_id(span) not in sent} == {
        caller.get_span_context().trace_id
    }


async def test_metrics_count_steps_retries_failures_syncs_and_running_workflows(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    seen_in_activities.clear()

    @durable.activity(name="refuse", retry=durable.RetryPolicy(maximum_attempts=1))
    async def refuse() -> None:
        raise ValueError("no")

    @durable.workflow(name="failing")
    async def failing() -> None:
        await refuse()

    async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as runtime:
        handle = await runtime.start(order_flow, "o-2", id="o-2")
        await runtime.send_event("o-2", "approved", "ok")
        await handle.result()
        with pytest.raises(durable.WorkflowFailed):
            await runtime.run(failing, id="f")
    found = telemetry.metrics()
    steps = {(a["durable.step.kind"], a["durable.outcome"]): n for a, n in found["durable.steps"]}
    assert steps[("activity", "completed")] == 2  # charge (once: its retry is an attempt), reserve
    assert steps[("timer", "fired")] == 1
    assert steps[("child", "completed")] == 1
    assert steps[("activity", "failed")] == 1
    assert [n for _, n in found["durable.activity.retries"]] == [1]
    failures = {a["durable.failure.of"]: n for a, n in found["durable.failures"]}
    assert failures == {"activity": 1, "workflow": 1}
    assert sum(n for _, n in found["durable.journal.sync.duration"]) >= 4
    assert sum(n for _, n in found["durable.journal.sync.batch"]) >= 4
    assert all(n == 0 for _, n in found["durable.workflows.running"])
    assert sum(n for _, n in found["durable.step.duration"]) == sum(steps.values())


async def test_replay_emits_no_span_and_a_resumed_run_links_to_the_one_before(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    release = asyncio.Event()

    @durable.activity(name="first")
    async def first() -> int:
        return 1

    @durable.activity(name="held")
    async def held() -> int:
        await release.wait()
        return 2

    @durable.workflow(name="two_steps")
    async def two_steps() -> int:
        return await first() + await held()

    with telemetry.tracer.start_as_current_span("caller") as caller:
        async with durable.Runtime(tmp_path, opentelemetry=telemetry.option, stop_grace=0) as rt:
            await rt.start(two_steps, id="t")
            async with asyncio.timeout(10):
                while not telemetry.named("activity first"):
                    await asyncio.sleep(0.01)
    [stopped] = telemetry.named("workflow two_steps")
    assert stopped.attributes is not None
    assert stopped.attributes["durable.outcome"] == "stopped"
    release.set()
    telemetry.exporter.clear()
    async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as runtime:
        assert await runtime.run(two_steps, id="t") == 3  # (another caller: the start's holds)
        assert await runtime.run(two_steps, id="t") == 3  # finished: replayed, no run at all
    [resumed] = telemetry.named("workflow two_steps")
    assert parent_of(resumed) == caller.get_span_context().span_id  # journaled with the start
    assert [link.context.span_id for link in resumed.links] == [span_id(stopped)]
    assert resumed.attributes is not None
    assert resumed.attributes["durable.replayed"] == 1
    assert telemetry.named("activity first") == []  # replayed: not a new span
    assert [parent_of(span) for span in telemetry.named("activity held")] == [span_id(resumed)]


async def test_off_by_default_nothing_is_journaled_for_tracing(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    with telemetry.tracer.start_as_current_span("caller"):
        async with durable.Runtime(tmp_path) as runtime:
            assert await runtime.run(ship, "x", id="off") == "shipped x"
        async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as runtime:
            assert await runtime.run(ship, "y", id="on") == "shipped y"
    store = JournalDirectory(tmp_path)
    try:
        off = records.read_journal(await store.read("off"), path="off")
        on = records.read_journal(await store.read("on"), path="on")
    finally:
        await store.close()
    assert "tc" not in off[0]
    assert records.RUN not in {record["k"] for record in off}
    assert on[0]["tc"]["traceparent"].startswith("00-")
    assert [record["k"] for record in on].count(records.RUN) == 1


async def test_a_runtime_without_a_span_to_follow_starts_a_trace_of_its_own(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as runtime:
        assert await runtime.run(ship, "z", id="z") == "shipped z"
    [run] = telemetry.named("workflow ship")
    assert run.parent is None


def test_asking_for_opentelemetry_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # (import fails, as if missing)
    monkeypatch.delitem(sys.modules, "durable._otel", raising=False)
    with pytest.raises(durable.ExtraNotInstalled, match=r"pip install 'aiodurable\[otel\]'"):
        durable.Runtime("unused", opentelemetry=True)
    with pytest.raises(TypeError, match=r"durable\.OpenTelemetry"):
        durable.Runtime("unused", opentelemetry="yes")  # type: ignore[arg-type]


def test_durable_runs_unchanged_without_opentelemetry(tmp_path: Path) -> None:
    script = f"""
import asyncio, sys
sys.modules["opentelemetry"] = None  # not installed
import durable

@durable.workflow
async def hello(name: str) -> str:
    return "hello " + name

async def main() -> None:
    async with durable.Runtime({str(tmp_path)!r}) as runtime:
        print(await runtime.run(hello, "you", id="h"))

asyncio.run(main())
assert "durable._otel" not in sys.modules
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello you"


async def waiting_for_event(runtime: durable.Runtime, workflow_id: str) -> bool:
    try:
        described = await runtime.describe(workflow_id)
    except durable.WorkflowNotFound:  # (admitted, its journal not created yet)
        return False
    return described.state is durable.WorkflowState.WAITING


async def test_a_queued_workflows_wait_is_a_span_between_its_enqueuer_and_its_run(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    @durable.workflow(name="gated")
    async def gated(name: str) -> str:
        return str(await durable.wait_for_event("go")) + name

    queue = durable.Queue("exports", concurrency=1)
    async with durable.Runtime(
        tmp_path, opentelemetry=telemetry.option, queues=[queue], workflows=[gated]
    ) as runtime:
        with telemetry.tracer.start_as_current_span("POST /exports") as caller:
            first = await runtime.enqueue(queue, gated, "1", id="q-1")
            second = await runtime.enqueue(queue, gated, "2", id="q-2")
        async with asyncio.timeout(10):  # (q-1 holds the one slot: q-2 waits in the queue)
            while ("exports", 1) not in {
                (a["durable.queue"], n)
                for a, n in telemetry.metrics().get("durable.workflows.queued", [])
            }:
                await asyncio.sleep(0.01)
            while not telemetry.named("workflow gated"):  # (q-1 unloaded: it waits)
                await asyncio.sleep(0.01)
        for handle in (first, second):
            async with asyncio.timeout(10):
                while not await waiting_for_event(runtime, handle.id):
                    await asyncio.sleep(0.01)
            await runtime.send_event(handle.id, "go", "go ")
            assert await handle.result() == f"go {handle.id[-1]}"
    waits = telemetry.named("queue exports")
    assert len(waits) == 2
    assert {parent_of(wait) for wait in waits} == {caller.get_span_context().span_id}
    runs = telemetry.named("workflow gated")
    assert {parent_of(run) for run in runs} == {span_id(wait) for wait in waits}
    assert all(wait.start_time is not None for wait in waits)


@durable.workflow
async def countdown(n: int) -> int:
    await durable.sleep(0.001)
    if n:
        durable.continue_as_new(n - 1)
    return n


async def test_each_generation_is_a_run_under_the_starter_linked_to_the_last(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as runtime:
        with telemetry.tracer.start_as_current_span("POST /countdown") as caller:
            assert await runtime.run(countdown, 2, id="c") == 0
    runs = telemetry.named("workflow countdown")
    assert [run.attributes["durable.workflow.generation"] for run in runs] == [0, 1, 2]  # type: ignore[index]
    assert {parent_of(run) for run in runs} == {caller.get_span_context().span_id}
    assert [[link.context.span_id for link in run.links] for run in runs] == [
        [],
        [span_id(runs[0])],
        [span_id(runs[1])],
    ]
    assert [run.attributes["durable.outcome"] for run in runs] == [  # type: ignore[index]
        "continued",
        "continued",
        "completed",
    ]


@pytest.mark.slow
async def test_on_postgresql_commits_are_the_journal_syncs(
    postgres_dsn: str, telemetry: Telemetry
) -> None:
    async with durable.Runtime(
        store=durable.PostgresStore(postgres_dsn), opentelemetry=telemetry.option
    ) as runtime:
        with telemetry.tracer.start_as_current_span("POST /orders") as caller:
            assert await runtime.run(ship, "p-1", id="p-1") == "shipped p-1"
    [run] = telemetry.named("workflow ship")
    assert parent_of(run) == caller.get_span_context().span_id
    found = telemetry.metrics()
    assert sum(n for _, n in found["durable.journal.sync.duration"]) >= 1  # (one a commit)
    assert sum(n for _, n in found["durable.journal.sync.batch"]) >= 1
