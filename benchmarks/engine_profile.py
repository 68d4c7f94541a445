"""Profile the engine per step with the disk taken out: cProfile, py-spy, callgrind.

    python -m benchmarks.engine_profile run live|replay|concurrent|sleepers [--steps N]
                                        [--workflows W] [--cprofile F]
    python -m benchmarks.engine_profile instructions live|replay|sleepers [--steps 2000 12000]
    python -m benchmarks.engine_profile instructions concurrent [--workflows 100] [--steps 20]
    python -m benchmarks.engine_profile summarize FILE [--top 15]

`run` does one workload of benchmarks.engine's CPU mode (syncs stubbed: benchmarks/nosync.py)
in this process and prints its process CPU us per step (concurrent: --workflows workflows of
--steps steps each, default 100 x 20; sleepers: --steps sleepers started one after another
and left unloaded, as benchmarks.engine's 100,000-sleepers start does, "per step" meaning per
sleeper); with --cprofile it profiles just the
workload (the main thread: the journal's worker threads are not seen) into F and prints the
top entries by cumulative and by own time. Run it under `py-spy record` for a sampled view.

`instructions` runs `run` under `valgrind --tool=callgrind` at two step counts and prints the
instructions per step: the difference of the two totals over the difference of the counts,
so interpreter start-up, imports and runtime set-up cancel. A replay's journal is written
first, by a process of its own outside valgrind. The callgrind files stay in --out.
For concurrent, it runs three: W x 0 steps, 0 workflows (the warm-up alone) and W x S, and
prints the instructions per start ((W x 0 - none) / W), per step ((W x S - W x 0) / (W x S))
and per step all-in ((W x S - none) / (W x S), what cpu_concurrent measures).
Instruction counts are stable where timings on a shared machine are not: use them to compare
two trees (PYTHONPATH), not as a speed.

`summarize` reads py-spy's collapsed stacks (`py-spy record --format raw -o FILE -- python -m
benchmarks.engine_profile run live`) and prints the top functions by own and by cumulative
samples, and the modules by own samples, as shares of all samples but those of idle threads
waiting (which py-spy does not always tell from running ones).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import durable
from benchmarks.engine import (
    WORKFLOW_STEPS,
    WORKFLOWS,
    _concurrent,
    _live,
    _until_unloaded,
    _write_finished_steps,
    sleeper,
    steps_workflow,
)
from benchmarks.nosync import stubbed_syncs


async def _sleepers(directory: Path, count: int) -> None:
    """Start `count` sleepers one after another and wait until all are unloaded."""
    async with durable.Runtime(directory) as runtime:
        for index in range(count):
            await runtime.start(sleeper, index, id=f"s-{index}")
        await _until_unloaded(runtime)


async def _replay_prepared(directory: Path, steps: int, **options: Any) -> None:
    """Resume the journal _write_finished_steps(directory, steps) left, to the end."""
    async with durable.Runtime(directory, **options) as runtime:
        await runtime.run(steps_workflow, steps, id="replay")


def noop_opentelemetry() -> durable.OpenTelemetry:
    """OpenTelemetry on, with the SDK's providers: every span exported to nowhere at its end
    (a SimpleSpanProcessor), metrics aggregated by a reader nobody reads: what durable costs
    with tracing on, without an exporter's own cost."""
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 (only when asked)
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Nowhere(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Nowhere()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return durable.OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


def run(
    workload: str,
    steps: int,
    directory: Path,
    profile_to: Path | None,
    *,
    opentelemetry: bool = False,
    workflows: int = WORKFLOWS,
) -> float:
    """One workload in `directory`, syncs stubbed; process CPU us per step.

    `opentelemetry`: with tracing and metrics on (noop_opentelemetry), live and replay.
    Concurrent: `workflows` workflows of `steps` steps each.

    A replay resumes a copy of the journal `--prepare-only` left in `directory` (the replay
    finishes the workflow in its journal), or of one written now, in a new directory.
    """
    per_workflow = steps
    if workload == "concurrent":
        steps = workflows * per_workflow
    scratch = directory  # (a replay runs on a copy of its journal, beside `directory`)
    if workload == "replay":
        scratch = Path(tempfile.mkdtemp(prefix="profile-replay-", dir=directory.parent))
    profiler = cProfile.Profile() if profile_to is not None else None
    try:
        with stubbed_syncs():
            if workload == "replay" and (directory / "replay.journal").exists():
                shutil.copy(directory / "replay.journal", scratch)
            elif workload == "replay":
                asyncio.run(_write_finished_steps(scratch, steps))
            started = time.process_time()
            if profiler is not None:
                profiler.enable()
            options: dict[str, Any] = {}
            if opentelemetry:
                options["opentelemetry"] = noop_opentelemetry()
            if workload == "live":
                asyncio.run(_live(directory, steps, time.process_time, **options))
            elif workload == "replay":
                asyncio.run(_replay_prepared(scratch, steps, **options))
            elif workload == "sleepers":
                asyncio.run(_sleepers(directory, steps))
            else:
                asyncio.run(_concurrent(directory, time.process_time, workflows, per_workflow))
            if profiler is not None:
                profiler.disable()
            elapsed = time.process_time() - started
    finally:
        if scratch != directory:
            shutil.rmtree(scratch)
    if profiler is not None and profile_to is not None:
        profiler.dump_stats(profile_to)
        stats = pstats.Stats(str(profile_to))
        for order in ("cumulative", "tottime"):
            print(f"--- {workload}, {steps} steps: top 15 by {order} ---")
            stats.sort_stats(order).print_stats(15)
    return elapsed / max(steps, 1) * 1e6


def _total_instructions(callgrind_file: Path) -> int:
    text = callgrind_file.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no totals in {callgrind_file}")
    return int(match.group(1))


def _counted(
    workload: str, steps: int, out: Path, extra: list[str], label: str, *, opentelemetry: bool
) -> int:
    """The instructions of one `run` of the workload under callgrind."""
    directory = Path(tempfile.mkdtemp(prefix=f"callgrind-{workload}-{label}-"))
    command = [sys.executable, "-m", "benchmarks.engine_profile", "run", workload]
    command += ["--steps", str(steps), "--dir", str(directory), *extra]
    command += ["--opentelemetry"] if opentelemetry else []
    if workload == "replay":  # (the journal, written outside valgrind)
        subprocess.run([*command, "--prepare-only"], check=True)
    target = out / f"callgrind.{workload}.{label}.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={target}", *command],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shutil.rmtree(directory)
    total = _total_instructions(target)
    print(f"{workload} {label:>10}: {total:>15,} instructions ({target})")
    return total


def instructions(
    workload: str, counts: list[int], out: Path, *, opentelemetry: bool = False
) -> float:
    """Instructions per step: the difference of two callgrind runs over their steps."""
    out.mkdir(parents=True, exist_ok=True)
    totals = [
        _counted(workload, steps, out, [], f"{steps:,}", opentelemetry=opentelemetry)
        for steps in counts
    ]
    per_step = (totals[-1] - totals[0]) / (counts[-1] - counts[0])
    print(f"{workload}: {per_step:,.0f} instructions per step")
    return per_step


def concurrent_instructions(workflows: int, steps: int, out: Path) -> dict[str, float]:
    """Instructions per start, per step and per step all-in of `workflows` x `steps`."""
    out.mkdir(parents=True, exist_ok=True)

    def counted(count: int, each: int) -> int:
        extra = ["--workflows", str(count)]
        return _counted("concurrent", each, out, extra, f"{count}x{each}", opentelemetry=False)

    none, starts, full = counted(0, steps), counted(workflows, 0), counted(workflows, steps)
    figures = {
        "per start": (starts - none) / workflows,
        "per step": (full - starts) / (workflows * steps),
        "per step all-in": (full - none) / (workflows * steps),
    }
    for name, value in figures.items():
        print(f"concurrent {workflows}x{steps}: {value:,.0f} instructions {name}")
    return figures


def _function_of(frame: str) -> str:
    """'name (path:line)' -> 'name (path)': samples of one function at any line together."""
    name, _, place = frame.rpartition(" (")
    return f"{name} ({place.rsplit(':', 1)[0]})" if name else frame


# Where an idle thread waits (a pool's worker, the stall watchdog's timed wait): py-spy samples
# these as running, so they are left out.
_WAITS = {"Condition.wait (threading.py)", "EpollSelector.select (selectors.py)"}


def summarize(collapsed: Path, top: int) -> None:
    """Top functions (own, cumulative) and modules (own) of py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    total = waiting = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        functions = [_function_of(frame) for frame in stack.split(";")] if stack else ["(none)"]
        if functions[-1] in _WAITS:  # (idle threads py-spy counts as active)
            waiting += count
            continue
        total += count
        own[functions[-1]] += count
        modules[functions[-1].rpartition(" (")[2].rstrip(")")] += count
        for function in set(functions):
            cumulative[function] += count
    print(f"({waiting:,} samples of threads waiting left out: {', '.join(sorted(_WAITS))})")
    for title, counter in (
        ("own", own),
        ("cumulative", cumulative),
        ("own, by module", modules),
    ):
        print(f"--- {collapsed.name}: top {top} by {title} ({total:,} samples) ---")
        for name, count in counter.most_common(top):
            print(f"{count / total:>7.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="one workload in this process")
    one.add_argument("workload", choices=["live", "replay", "concurrent", "sleepers"])
    one.add_argument("--steps", type=int, default=None, help="default 10,000; concurrent: 20")
    one.add_argument("--workflows", type=int, default=WORKFLOWS, help="concurrent only")
    one.add_argument("--dir", type=Path, default=None, help="default: a new temporary one")
    one.add_argument("--cprofile", type=Path, default=None, help="write a cProfile file here")
    one.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    one.add_argument(
        "--opentelemetry", action="store_true", help="tracing and metrics on, exported nowhere"
    )
    counting = commands.add_parser("instructions", help="callgrind at two step counts")
    counting.add_argument("workload", choices=["live", "replay", "concurrent", "sleepers"])
    counting.add_argument(
        "--steps", type=int, nargs="+", default=None, help="two counts (concurrent: one, each)"
    )
    counting.add_argument("--workflows", type=int, default=WORKFLOWS, help="concurrent only")
    counting.add_argument("--out", type=Path, default=Path("/tmp/profiles"))
    counting.add_argument(
        "--opentelemetry", action="store_true", help="tracing and metrics on, exported nowhere"
    )
    summarizing = commands.add_parser("summarize", help="py-spy's collapsed stacks")
    summarizing.add_argument("file", type=Path)
    summarizing.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if args.command == "summarize":
        summarize(args.file, args.top)
        return
    if args.command == "instructions":
        if args.workload == "concurrent":
            each = args.steps[0] if args.steps else WORKFLOW_STEPS
            concurrent_instructions(args.workflows, each, args.out)
            return
        counts = args.steps or [2_000, 12_000]
        if len(counts) != 2:
            parser.error("--steps takes two counts for live, replay and sleepers")
        instructions(args.workload, counts, args.out, opentelemetry=args.opentelemetry)
        return
    if args.steps is None:
        args.steps = WORKFLOW_STEPS if args.workload == "concurrent" else 10_000
    directory = args.dir or Path(tempfile.mkdtemp(prefix=f"profile-{args.workload}-"))
    if args.prepare_only:
        with stubbed_syncs():
            asyncio.run(_write_finished_steps(directory, args.steps))
        return
    try:
        per_step = run(
            args.workload,
            args.steps,
            directory,
            args.cprofile,
            opentelemetry=args.opentelemetry,
            workflows=args.workflows,
        )
    finally:
        if args.dir is None:
            shutil.rmtree(directory)
    print(f"{args.workload}: {per_step:.2f} us of process CPU per step (pid {os.getpid()})")


if __name__ == "__main__":
    main()
