"""OpenTelemetry's edges: the application's providers left alone, a broken processor, a
cancellation's and another runtime's trace context, TestRuntime."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import durable
from durable.testing import TestRuntime
from tests.test_otel import Telemetry, parent_of, span_id

pytestmark = pytest.mark.anyio


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@durable.activity(retry=durable.RetryPolicy(initial_interval=0.01, maximum_attempts=2))
async def wobbly(n: int) -> int:
    if durable.activity_info().attempt == 1:
        raise TimeoutError("upstream slow")
    return n


@durable.workflow
async def sleepy(n: int) -> int:
    await durable.sleep("1 hour")  # (virtual time in TestRuntime)
    return await wobbly(n)


@durable.workflow
async def waits_for_go() -> str:
    return str(await durable.wait_for_event("go"))


async def test_test_runtime_takes_the_applications_providers(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    async with TestRuntime(tmp_path, opentelemetry=telemetry.option) as runtime:
        assert await runtime.run(sleepy, 4, id="t") == 4
    slept, run = telemetry.named("workflow sleepy")  # (unloaded while it slept: two runs)
    assert [link.context.span_id for link in run.links] == [span_id(slept)]
    first, second = telemetry.named("activity wobbly")
    assert [parent_of(first), parent_of(second)] == [span_id(run)] * 2
    assert first.attributes is not None
    assert first.attributes["durable.attempt"] == 1
    assert first.attributes["error.type"] == "TimeoutError"
    assert telemetry.named("timer")


async def test_the_global_providers_are_never_replaced(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    from opentelemetry import metrics  # noqa: PLC0415

    tracers, meters = trace.get_tracer_provider(), metrics.get_meter_provider()
    for option in (True, telemetry.option):
        async with durable.Runtime(tmp_path, opentelemetry=option) as runtime:
            await runtime.run(returns_at_once, id=f"g{option is True}")
    assert trace.get_tracer_provider() is tracers
    assert metrics.get_meter_provider() is meters
    assert telemetry.named("workflow returns_at_once")  # (the given provider was used)


@durable.workflow
async def returns_at_once() -> str:
    return "done"


class Exploding(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise RuntimeError("the collector is down")


class ExplodingProcessor(SpanProcessor):
    def on_start(self, span: Span, parent_context: object = None) -> None:
        raise RuntimeError("a buggy processor (start)")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("a buggy processor (end)")


async def test_a_broken_exporter_or_processor_never_breaks_a_workflow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, telemetry: Telemetry
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Exploding()))
    provider.add_span_processor(ExplodingProcessor())
    option = durable.OpenTelemetry(tracer_provider=provider)
    async with durable.Runtime(tmp_path, opentelemetry=option) as runtime:
        with telemetry.tracer.start_as_current_span("caller"):  # (the app's, working)
            handle = await runtime.start(waits_for_go, id="b")
        async with asyncio.timeout(10):
            while (await runtime.describe("b")).state is not durable.WorkflowState.WAITING:
                await asyncio.sleep(0.01)
        await runtime.send_event("b", "go", "went")
        assert await handle.result() == "went"
        assert await runtime.run(sleepy_now, 3, id="c") == 3  # (an activity's attempts too)
    assert "OpenTelemetry" in caplog.text  # said, once, not raised


@durable.workflow
async def sleepy_now(n: int) -> int:
    return await wobbly(n)


async def test_a_cancellation_joins_the_trace_of_whoever_cancelled(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as runtime:
        handle = await runtime.start(waits_for_go, id="x")
        async with asyncio.timeout(10):
            while (await runtime.describe("x")).state is not durable.WorkflowState.WAITING:
                await asyncio.sleep(0.01)
        with telemetry.tracer.start_as_current_span("DELETE /x") as canceller:
            await runtime.cancel("x", "the customer changed their mind")
        with pytest.raises(durable.WorkflowCancelled):
            await handle.result()
    *_, run = telemetry.named("workflow waits_for_go")
    [cancel] = telemetry.named("cancel")
    assert parent_of(cancel) == canceller.get_span_context().span_id
    assert [link.context.span_id for link in cancel.links] == [span_id(run)]
    assert cancel.attributes is not None
    assert cancel.attributes["durable.cancel.reason"] == "the customer changed their mind"


async def test_an_event_sent_by_another_runtime_joins_the_senders_trace(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as runtime:
        handle = await runtime.start(waits_for_go, id="e")
        async with asyncio.timeout(10):
            while (await runtime.describe("e")).state is not durable.WorkflowState.WAITING:
                await asyncio.sleep(0.01)
        async with durable.Runtime(tmp_path, opentelemetry=telemetry.option) as other:
            with telemetry.tracer.start_as_current_span("POST /go") as sender:
                await other.send_event("e", "go", "from afar")
        assert await handle.result() == "from afar"
    [event] = telemetry.named("event go")
    assert parent_of(event) == sender.get_span_context().span_id
    # Its first step, asked for before the run went live, has spans too: the wait of the
    # run that was unloaded, and the resumed one's, which the event ended.
    unloaded, waiting = telemetry.named("wait_for_event go")
    assert unloaded.attributes is not None
    assert unloaded.attributes["durable.outcome"] == "stopped"
    assert [link.context.span_id for link in waiting.links] == [sender.get_span_context().span_id]
