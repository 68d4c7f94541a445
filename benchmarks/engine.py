"""Workflow engine throughput against the raw write+fdatasync loop, measured in one run.

    python -m benchmarks.engine [--runs 5] [--steps 200] [--dir PATH] [--quick]

Workloads (interleaved per run, so drift on a shared machine hits all alike):
  raw_single   write + os.fdatasync per 100-byte record, blocking, one file (the baseline)
  sequential   one workflow of --steps trivial async activities, one after another
               (steps/s, and p50/p99 step latency as the workflow sees it)
  replay_N     resume a workflow whose journal holds N finished steps (N = 1k, 10k, 100k):
               open + read + decode + replay until new work, in events (steps) per second

Prints medians and ratios, and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import durable
from benchmarks.journal import raw_single, write_report
from durable import JournalDirectory
from durable._encoding import encode
from durable._engine._replay import digest_of


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


async def _replay(directory: Path, steps: int) -> float:
    await _write_finished_steps(directory, steps)
    async with durable.Runtime(directory) as runtime:
        started = time.perf_counter()
        await runtime.run(steps_workflow, steps, id="replay")  # replays all, then finishes
        return steps / (time.perf_counter() - started)


def measure(root: Path, runs: int, steps: int, replay_sizes: list[int]) -> dict[str, object]:
    rates: dict[str, list[float]] = {"raw_single": [], "sequential": []}
    for size in replay_sizes:
        rates[f"replay_{size}"] = []
    latencies: list[float] = []
    for run in range(runs):
        for name, values in rates.items():
            directory = Path(tempfile.mkdtemp(prefix=f"{name}-{run}-", dir=root))
            try:
                if name == "raw_single":
                    values.append(raw_single(directory, steps))
                elif name == "sequential":
                    rate, run_latencies = asyncio.run(_sequential(directory, steps))
                    values.append(rate)
                    latencies.extend(run_latencies)
                else:
                    size = int(name.split("_")[1])
                    values.append(asyncio.run(_replay(directory, size)))
            finally:
                shutil.rmtree(directory)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    latencies.sort()
    return {
        "medians": medians,
        "runs": rates,
        "step_latency_us": {
            "p50": latencies[len(latencies) // 2] * 1e6,
            "p99": latencies[int(len(latencies) * 0.99)] * 1e6,
        },
    }


def report(result: dict[str, object], runs: int, steps: int) -> None:
    medians: dict[str, float] = result["medians"]  # type: ignore[assignment]
    runs_by_name: dict[str, list[float]] = result["runs"]  # type: ignore[assignment]
    print(f"engine benchmark: {runs} runs, medians; sequential = {steps} steps")
    print(f"{'workload':<16} {'per second':>12}   runs")
    for name, median in medians.items():
        spread = ", ".join(f"{value:,.0f}" for value in runs_by_name[name])
        print(f"{name:<16} {median:>12,.0f}   [{spread}]")
    latency: dict[str, float] = result["step_latency_us"]  # type: ignore[assignment]
    print(f"sequential step latency: p50 {latency['p50']:.0f} us, p99 {latency['p99']:.0f} us")
    ratio = medians["sequential"] / medians["raw_single"]
    print(
        f"sequential / raw_single: {ratio:.2f}x (target >= 0.8x: "
        f"{'met' if ratio >= 0.8 else 'MISSED'})"
    )
    ratios = {"sequential/raw_single": ratio}
    replays = sorted(
        (int(name.split("_")[1]), rate)
        for name, rate in medians.items()
        if name.startswith("replay_")
    )
    for size, rate in replays:
        print(
            f"replay of {size:>7,} steps: {rate:>10,.0f} events/s "
            f"({size / rate * 1000:,.0f} ms; target >= 300k events/s)"
        )
    if len(replays) > 1:
        (small, small_rate), (large, large_rate) = replays[0], replays[-1]
        growth = (large / large_rate) / (small / small_rate)
        print(
            f"replay time grows {growth:.1f}x for {large // small}x the steps (linear: "
            f"{large // small}x)"
        )
        ratios["replay_time_growth"] = growth
    result["ratios"] = ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/.scratch"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.quick:
        runs, steps, sizes = 1, 20, [100, 1000]
    else:
        runs, steps, sizes = args.runs, args.steps, [1_000, 10_000, 100_000]
    args.dir.mkdir(parents=True, exist_ok=True)
    result = measure(args.dir, runs, steps, sizes)
    report(result, runs, steps)
    write_report(result, args.output, "engine-quick.json" if args.quick else "engine.json")


if __name__ == "__main__":
    main()
