"""Workflow engine throughput against the raw disk, and the engine's own CPU, in one run.

    python -m benchmarks.engine [--runs 5] [--steps 200] [--cpu] [--cpu-steps 10000]
                                [--sleepers 100000] [--dir PATH] [--quick]

Workloads on the real disk (interleaved per run, so drift on a shared machine hits all alike):
  raw_single        write + os.fdatasync per 100-byte record, blocking, one file (the baseline
                    of sequential)
  sequential        one workflow of --steps trivial async activities, one after another
                    (steps/s, and p50/p99 step latency as the workflow sees it)
  raw_syncfs_batch  one record into each of 100 files, then one syncfs(2), 2,000 records in all
                    (the baseline of concurrent)
  concurrent        100 workflows x 20 steps, started together (after one warm-up workflow)
  replay_N          resume a workflow whose journal holds N finished steps (N = 1k, 10k, 100k):
                    open + read + decode + replay until new work, in events (steps) per second

With --cpu, each run also measures the engine's CPU with the disk taken out: the same code
with fdatasync, fsync and syncfs doing nothing (benchmarks/nosync.py), as process CPU time
(time.process_time: every thread of the process) per step of
  cpu_live          one workflow of --cpu-steps steps, one after another
  cpu_replay        the resume of a journal holding --cpu-steps finished steps
  cpu_concurrent    100 workflows x 20 steps, started together (after one warm-up workflow)

Then, unless --sleepers 0, the sleepers workload (--sleeper-runs times, default --runs): N
workflows that each run one activity and then durable.sleep("1 day"), started one after
another by a fresh process: seconds until all are started and unloaded, resident memory
growth (VmRSS, and the peak VmHWM); that runtime closes, and a new process on the same
directory recover()s them all: seconds until recover() returns and until all are unloaded
again. An unloaded sleeper is held by its name lock (Linux; see _storage/_id_locks.py), with
no descriptor of its own; where name locks are missing it keeps its journal's descriptor, so
the hard RLIMIT_NOFILE bounds N: past it, the largest count that fits is measured, the bound
is printed, and the figures are also scaled linearly to N (marked as extrapolated).

Prints medians and ratios beside issue 18's targets, and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import durable
from benchmarks.journal import raw_single, raw_syncfs_batch, write_report
from benchmarks.nosync import stubbed_syncs
from durable import JournalDirectory
from durable._encoding import encode
from durable._engine._replay import digest_of

WORKFLOWS, WORKFLOW_STEPS = 100, 20  # the concurrent workloads: 100 workflows x 20 steps
FD_MARGIN = 200  # descriptors a runtime needs beside its sleepers' journals (measured: ~20)
MB = 1e6  # the targets' megabytes

# Issue 18 item 5's targets.
TARGET_LIVE_US = 10.0
TARGET_REPLAY_US = 3.0
TARGET_SEQUENTIAL_RATIO = 0.8
TARGET_CONCURRENT_RATIO = 0.5
TARGET_REPLAY_RATE = 300_000
TARGET_SLEEPERS = 100_000
TARGET_SLEEPERS_RSS_MB = 400
TARGET_SLEEPERS_START_S = 60
TARGET_SLEEPERS_RECOVER_S = 30


@durable.activity(name="step")
async def step(index: int) -> int:
    return index


@durable.workflow(name="bench")
async def steps_workflow(count: int) -> list[float]:
    stamps = []
    for index in range(count):
        await step(index)
        stamps.append(time.perf_counter())
    return stamps


@durable.workflow(name="bench_few")
async def few_steps(count: int) -> int:
    for index in range(count):
        await step(index)
    return count


@durable.workflow(name="bench_sleeper")
async def sleeper(index: int) -> int:
    await step(index)
    await durable.sleep("1 day")
    return index


async def _sequential(directory: Path, steps: int) -> tuple[float, list[float]]:
    async with durable.Runtime(directory) as runtime:
        started = time.perf_counter()
        stamps = await runtime.run(steps_workflow, steps, id="sequential")
        elapsed = time.perf_counter() - started
    latencies = [after - before for before, after in zip([started, *stamps], stamps, strict=False)]
    return steps / elapsed, latencies


async def _write_finished_steps(directory: Path, steps: int) -> None:
    """A journal as steps_workflow(steps + 1) leaves it after `steps` steps (one done each)."""
    async with JournalDirectory(directory) as store:
        journal = await store.open("replay")
        now = time.time()
        journal.write(
            encode(
                {
                    "k": "start",
                    "v": 2,
                    "wf": "bench",
                    "id": "replay",
                    "args": [steps],
                    "t": now,
                    "seed": 1,
                }
            )
        )
        for index in range(steps):
            digest = digest_of(encode([[index], {}]))
            journal.write(
                encode(
                    {
                        "k": "done",
                        "s": index,
                        "a": "step",
                        "d": digest,
                        "n": 1,
                        "r": index,
                        "t": now,
                    }
                )
            )
        await journal.close()


async def _replay(directory: Path, steps: int, clock: Callable[[], float]) -> float:
    """Seconds (by `clock`) to resume a journal of `steps` finished steps, to the end."""
    await _write_finished_steps(directory, steps)
    async with durable.Runtime(directory) as runtime:
        started = clock()
        await runtime.run(steps_workflow, steps, id="replay")  # replays all, then finishes
        return clock() - started


async def _live(directory: Path, steps: int, clock: Callable[[], float], **options: Any) -> float:
    """Seconds (by `clock`) of one workflow of `steps` steps (`options`: the Runtime's)."""
    async with durable.Runtime(directory, **options) as runtime:
        started = clock()
        await runtime.run(steps_workflow, steps, id="live")
        return clock() - started


async def _concurrent(
    directory: Path,
    clock: Callable[[], float],
    workflows: int = WORKFLOWS,
    steps: int = WORKFLOW_STEPS,
) -> float:
    """Seconds (by `clock`) of `workflows` x `steps` (default 100 x 20) started together."""
    async with durable.Runtime(directory) as runtime:
        await runtime.run(few_steps, 1, id="warm-up")  # (worker threads, first-call caches)
        started = clock()
        handles = await asyncio.gather(
            *(runtime.start(few_steps, steps, id=f"c-{index}") for index in range(workflows))
        )
        await asyncio.gather(*(handle.result() for handle in handles))
        return clock() - started


def _disk_workload(name: str, directory: Path, steps: int, latencies: list[float]) -> float:
    """One run of a real-disk workload: its rate (per second)."""
    if name == "raw_single":
        return raw_single(directory, steps)
    if name == "sequential":
        rate, run_latencies = asyncio.run(_sequential(directory, steps))
        latencies.extend(run_latencies)
        return rate
    if name == "raw_syncfs_batch":
        return raw_syncfs_batch(directory, WORKFLOWS * WORKFLOW_STEPS)
    if name == "concurrent":
        return WORKFLOWS * WORKFLOW_STEPS / asyncio.run(_concurrent(directory, time.perf_counter))
    size = int(name.split("_")[1])
    return size / asyncio.run(_replay(directory, size, time.perf_counter))


def _cpu_workload(name: str, directory: Path, steps: int) -> float:
    """One run of a CPU workload, syncs stubbed: process CPU microseconds per step."""
    clock = time.process_time
    with stubbed_syncs():
        if name == "cpu_live":
            seconds = asyncio.run(_live(directory, steps, clock))
        elif name == "cpu_replay":
            seconds = asyncio.run(_replay(directory, steps, clock))
        else:
            steps = WORKFLOWS * WORKFLOW_STEPS
            seconds = asyncio.run(_concurrent(directory, clock))
    return seconds / steps * 1e6


def measure(
    root: Path, runs: int, steps: int, replay_sizes: list[int], cpu_steps: int | None
) -> dict[str, Any]:
    """The real-disk workloads (rates) and, if cpu_steps, the CPU ones (us per step)."""
    rates: dict[str, list[float]] = {
        "raw_single": [],
        "sequential": [],
        "raw_syncfs_batch": [],
        "concurrent": [],
    }
    for size in replay_sizes:
        rates[f"replay_{size}"] = []
    cpu: dict[str, list[float]] = (
        {} if cpu_steps is None else {"cpu_live": [], "cpu_replay": [], "cpu_concurrent": []}
    )
    latencies: list[float] = []
    for run in range(runs):
        for name, values in [*rates.items(), *cpu.items()]:
            directory = Path(tempfile.mkdtemp(prefix=f"{name}-{run}-", dir=root))
            try:
                if name in cpu:
                    assert cpu_steps is not None
                    values.append(_cpu_workload(name, directory, cpu_steps))
                else:
                    values.append(_disk_workload(name, directory, steps, latencies))
            finally:
                shutil.rmtree(directory)
    latencies.sort()
    result: dict[str, Any] = {
        "medians": {name: statistics.median(values) for name, values in rates.items()},
        "runs": rates,
        "step_latency_us": {
            "p50": latencies[len(latencies) // 2] * 1e6,
            "p99": latencies[int(len(latencies) * 0.99)] * 1e6,
        },
    }
    if cpu:
        result["cpu_us_per_step"] = {
            "steps": cpu_steps,
            "concurrent": f"{WORKFLOWS}x{WORKFLOW_STEPS}",
            "medians": {name: statistics.median(values) for name, values in cpu.items()},
            "runs": cpu,
        }
    return result


# --- 100,000 sleeping workflows ----------------------------------------------------------------


def _memory_mb() -> dict[str, float]:
    """This process's VmRSS and VmHWM (its peak), in MB (10^6 bytes), from /proc."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        field, _, value = line.partition(":")
        if field in ("VmRSS", "VmHWM"):
            found[field] = int(value.split()[0]) * 1024 / MB
    return found


def _loaded(runtime: durable.Runtime) -> int:
    """How many workflows the runtime holds loaded (not unloaded sleepers)."""
    runs = getattr(runtime, "_runs", None)
    if runs is None:
        raise RuntimeError("Runtime has no _runs any more: update benchmarks/engine.py")
    return len(runs)


async def _until_unloaded(runtime: durable.Runtime) -> None:
    while _loaded(runtime):
        await asyncio.sleep(0.01)


def _names_a_journal(link: str) -> bool:
    try:
        return os.readlink(link).endswith(".journal")
    except OSError:  # (the listing's own descriptor, closed since)
        return False


async def _sleepers_start(directory: Path, count: int) -> dict[str, float]:
    """Start `count` sleepers one after another, until all are unloaded; figures."""
    before = _memory_mb()
    cpu = time.process_time()
    runtime = durable.Runtime(directory)
    started = time.perf_counter()
    for index in range(count):
        await runtime.start(sleeper, index, id=f"s-{index}")
    returned = time.perf_counter() - started
    await _until_unloaded(runtime)
    unloaded = time.perf_counter() - started
    after = _memory_mb()
    descriptors = os.listdir("/proc/self/fd")
    journals_open = sum(1 for fd in descriptors if _names_a_journal(f"/proc/self/fd/{fd}"))
    cpu = time.process_time() - cpu
    closing = time.perf_counter()
    await runtime.close()
    return {
        "start_returned_s": returned,
        "start_s": unloaded,
        "cpu_s": cpu,
        "rss_growth_mb": after["VmRSS"] - before["VmRSS"],
        "peak_growth_mb": after["VmHWM"] - before["VmRSS"],
        "open_descriptors": len(descriptors),
        "journal_descriptors": journals_open,  # (0 where name locks hold the sleepers)
        "close_s": time.perf_counter() - closing,
    }


async def _sleepers_recover(directory: Path, count: int) -> dict[str, float]:
    """A new runtime on the directory recovers every sleeper; figures."""
    before = _memory_mb()
    cpu = time.process_time()
    runtime = durable.Runtime(directory, workflows=[sleeper])
    started = time.perf_counter()
    handles = await runtime.recover()
    returned = time.perf_counter() - started
    if len(handles) != count:
        raise RuntimeError(f"recover() resumed {len(handles)} of {count} sleepers")
    await _until_unloaded(runtime)
    unloaded = time.perf_counter() - started
    after = _memory_mb()
    cpu = time.process_time() - cpu
    await runtime.close()
    return {
        "recover_s": returned,
        "recover_unloaded_s": unloaded,
        "recover_cpu_s": cpu,
        "recover_rss_growth_mb": after["VmRSS"] - before["VmRSS"],
    }


def _sleepers_phase(phase: str, directory: Path, count: int) -> dict[str, float]:
    """Run one phase in a fresh process (its memory, and a real restart between them)."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.engine",
            "--sleepers-phase",
            phase,
            "--sleepers",
            str(count),
            "--dir",
            str(directory),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"sleepers {phase} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def sleepers_fitting(requested: int) -> tuple[int, str | None]:
    """How many sleepers this process's hard RLIMIT_NOFILE lets one runtime hold; why fewer."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hasattr(fcntl, "F_OFD_SETLK"):  # (held by name locks: no descriptor each)
        return requested, None
    if hard == resource.RLIM_INFINITY or requested + FD_MARGIN <= hard:
        return requested, None
    fitting = max(hard - FD_MARGIN, 1)
    return fitting, (
        f"the hard RLIMIT_NOFILE is {hard:,} (`ulimit -Hn`; raising it needs CAP_SYS_RESOURCE "
        f"in the initial namespace), and each unloaded sleeper keeps its journal's descriptor: "
        f"{fitting:,} fit beside the runtime's own {FD_MARGIN}"
    )


def measure_sleepers(root: Path, requested: int, runs: int) -> dict[str, Any]:
    """Each run in a directory of its own, all of them removed only after the last run.

    Removing a run's 100,000 journals before the next run's start would time the file
    system, not durable: ext4 without a journal (these VMs') skips every inode freed in
    the last 1-6 minutes when it allocates one (`recently_deleted`, a buffer-cache lookup
    per candidate), which made the next run's file creations cost 3x the kernel CPU
    (perf: 31% of a start's samples in that scan; 89-105 s against 61-64 s for a start).
    """
    count, bound = sleepers_fitting(requested)
    samples: list[dict[str, float]] = []
    directories: list[Path] = []
    try:
        for run in range(runs):
            directory = Path(tempfile.mkdtemp(prefix=f"sleepers-{run}-", dir=root))
            directories.append(directory)
            figures = _sleepers_phase("start", directory, count)
            figures.update(_sleepers_phase("recover", directory, count))
            samples.append(figures)
    finally:
        for directory in directories:
            shutil.rmtree(directory)
    medians = {name: statistics.median(sample[name] for sample in samples) for name in samples[0]}
    return {
        "requested": requested,
        "count": count,
        "bound": bound,
        "medians": medians,
        "runs": samples,
    }


# --- the report ----------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(result: dict[str, Any], runs: int, steps: int) -> None:
    medians: dict[str, float] = result["medians"]
    runs_by_name: dict[str, list[float]] = result["runs"]
    print(f"engine benchmark: {runs} runs, medians; sequential = {steps} steps")
    print(f"{'workload':<18} {'per second':>12}   runs")
    for name, median in medians.items():
        spread = ", ".join(f"{value:,.0f}" for value in runs_by_name[name])
        print(f"{name:<18} {median:>12,.0f}   [{spread}]")
    latency: dict[str, float] = result["step_latency_us"]
    print(f"sequential step latency: p50 {latency['p50']:.0f} us, p99 {latency['p99']:.0f} us")
    targets: list[tuple[str, str, str, str]] = []  # (what, figure, target, verdict)

    sequential = medians["sequential"] / medians["raw_single"]
    concurrent = medians["concurrent"] / medians["raw_syncfs_batch"]
    ratios = {"sequential/raw_single": sequential, "concurrent/raw_syncfs_batch": concurrent}
    cpu = result.get("cpu_us_per_step")
    if cpu is not None:
        cpu_medians: dict[str, float] = cpu["medians"]
        print(
            f"\nengine CPU, syncs stubbed (process CPU us per step; live and replay "
            f"{cpu['steps']:,} steps, concurrent {cpu['concurrent']})"
        )
        for name, median in cpu_medians.items():
            spread = ", ".join(f"{value:.2f}" for value in cpu["runs"][name])
            print(f"{name:<18} {median:>9.2f} us   [{spread}]")
        live, replay = cpu_medians["cpu_live"], cpu_medians["cpu_replay"]
        targets += [
            (
                "engine CPU per live sequential step",
                f"{live:.2f} us",
                f"<= {TARGET_LIVE_US:g} us",
                _verdict(live <= TARGET_LIVE_US),
            ),
            (
                "engine CPU per replayed step",
                f"{replay:.2f} us",
                f"<= {TARGET_REPLAY_US:g} us",
                _verdict(replay <= TARGET_REPLAY_US),
            ),
            (
                "engine CPU per concurrent step",
                f"{cpu_medians['cpu_concurrent']:.2f} us",
                "(none)",
                "",
            ),
        ]
    targets += [
        (
            "sequential / raw write+fdatasync loop",
            f"{sequential:.2f}x",
            f">= {TARGET_SEQUENTIAL_RATIO}x",
            _verdict(sequential >= TARGET_SEQUENTIAL_RATIO),
        ),
        (
            "100x20 concurrent / raw syncfs batch",
            f"{concurrent:.2f}x",
            f">= {TARGET_CONCURRENT_RATIO}x",
            _verdict(concurrent >= TARGET_CONCURRENT_RATIO),
        ),
    ]
    replays = sorted(
        (int(name.split("_")[1]), rate)
        for name, rate in medians.items()
        if name.startswith("replay_")
    )
    print()
    for size, rate in replays:
        print(
            f"replay of {size:>7,} steps: {rate:>10,.0f} events/s "
            f"({size / rate * 1000:,.1f} ms, {1e6 / rate:.2f} us per step)"
        )
    if replays:
        size, rate = replays[-1]
        targets.append(
            (
                f"replay of {size:,} steps",
                f"{rate / 1000:,.0f}k steps/s",
                f">= {TARGET_REPLAY_RATE // 1000}k/s",
                _verdict(rate >= TARGET_REPLAY_RATE),
            )
        )
    if len(replays) > 1:
        (small, small_rate), (large, large_rate) = replays[0], replays[-1]
        growth = (large / large_rate) / (small / small_rate)
        ratios["replay_time_growth"] = growth
        # Linear: the time per step at the largest size is at most 1.2x that at the smallest
        # (less is start-up cost spread over more steps).
        targets.append(
            (
                f"replay time, {small:,} -> {large:,} steps",
                f"x{growth:.1f} for x{large // small}",
                "linear",
                _verdict(growth <= 1.2 * large / small),
            )
        )
    result["ratios"] = ratios
    sleepers = result.get("sleepers")
    if sleepers is not None:
        targets += _report_sleepers(sleepers)
    print("\nissue 18's targets (medians of this run)")
    width = max(len(what) for what, *_ in targets)
    for what, figure, target, verdict in targets:
        print(f"  {what:<{width}}  {figure:>18}  {target:>12}  {verdict}")
    result["targets"] = [
        {"what": what, "figure": figure, "target": target, "verdict": verdict}
        for what, figure, target, verdict in targets
    ]


def _report_sleepers(sleepers: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    count, requested = sleepers["count"], sleepers["requested"]
    figures: dict[str, float] = sleepers["medians"]
    print(
        f"\nsleepers: {count:,} workflows (one activity, then durable.sleep('1 day')), "
        f"medians of {len(sleepers['runs'])} runs"
    )
    if sleepers["bound"]:
        print(f"  bounded at {count:,} of {requested:,}: {sleepers['bound']}")
    for name, value in figures.items():
        print(f"  {name:<24} {value:>12,.2f}")
    scale = requested / count
    marks = "" if scale == 1 else f" (x{scale:.2f}: extrapolated)"
    targets = []
    for what, name, target in (
        ("RSS growth, MB", "rss_growth_mb", TARGET_SLEEPERS_RSS_MB),
        ("started and unloaded, s", "start_s", TARGET_SLEEPERS_START_S),
        ("recover() after a restart, s", "recover_s", TARGET_SLEEPERS_RECOVER_S),
    ):
        measured = figures[name]
        figure = f"{measured:,.1f}"
        if scale != 1:
            figure += f" -> {measured * scale:,.1f}"
        targets.append(
            (
                f"{requested:,} sleepers: {what}{marks}",
                figure,
                f"< {target}",
                _verdict(measured * scale < target),
            )
        )
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--cpu", action="store_true", help="also the engine's CPU, syncs stubbed")
    parser.add_argument("--cpu-steps", type=int, default=10_000)
    parser.add_argument(
        "--sleepers", type=int, default=None, help="sleeping workflows (default 100,000; 0: none)"
    )
    parser.add_argument("--sleeper-runs", type=int, default=None, help="default: --runs")
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/.scratch"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--sleepers-phase", choices=["start", "recover"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sleepers_phase is not None:  # (in the fresh process of one phase)
        phase = _sleepers_start if args.sleepers_phase == "start" else _sleepers_recover
        print(json.dumps(asyncio.run(phase(args.dir, args.sleepers))))
        return
    if args.quick:
        runs, steps, sizes, cpu_steps, sleepers = 1, 20, [100, 1000], 200, 200
    else:
        runs, steps, sizes = args.runs, args.steps, [1_000, 10_000, 100_000]
        cpu_steps, sleepers = args.cpu_steps, TARGET_SLEEPERS
    if args.sleepers is not None:
        sleepers = args.sleepers
    args.dir.mkdir(parents=True, exist_ok=True)
    result = measure(args.dir, runs, steps, sizes, cpu_steps if args.cpu else None)
    if sleepers > 0:
        sleeper_runs = runs if args.sleeper_runs is None else args.sleeper_runs
        result["sleepers"] = measure_sleepers(args.dir, sleepers, sleeper_runs)
    report(result, runs, steps)
    write_report(result, args.output, "engine-quick.json" if args.quick else "engine.json")


if __name__ == "__main__":
    main()
