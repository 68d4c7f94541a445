"""What a stream append costs, against a status record, on the real disk.

    python -m benchmarks.streams [--runs 7] [--steps 200] [--dir PATH]

One workflow of --steps steps, one after another, each an activity call, and per step:
  plain    nothing more (the baseline)
  status   durable.set_status(i) in workflow code
  stream   STREAM.append(i) in workflow code
  emit1    the activity appends one value to the stream (an `emit` record)
  emit10   the activity appends ten values

Then the same with the disk taken out (benchmarks/nosync.py: syncs return at once) and
--cpu-steps steps: process CPU microseconds per step, the engine's own cost of an append.

Each workload runs --runs times, interleaved (drift on a shared machine hits all alike), on
a fresh directory each time. Reported per workload: median microseconds per step, the
journal's bytes per step, and the syncs per step (fdatasync + syncfs calls, counted by
wrapping the real ones): a stream value rides with the step's sync, as a status does, so
`stream` and `emit*` must show the same syncs per step as `plain`. Writes JSON to
benchmarks/results/streams.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import durable
from benchmarks.nosync import stubbed_syncs

WORKLOADS = ("plain", "status", "stream", "emit1", "emit10")
STREAM = durable.Stream("bench", int)


@durable.activity
async def step(index: int, emits: int) -> int:
    for value in range(emits):
        STREAM.append(value)
    return index


@durable.workflow(name="bench_streams")
async def stepping(count: int, mode: str) -> int:
    emits = {"emit1": 1, "emit10": 10}.get(mode, 0)
    for index in range(count):
        await step(index, emits)
        if mode == "status":
            durable.set_status(index)
        elif mode == "stream":
            STREAM.append(index)
    return count


class SyncCounter:
    """Counts durable's fdatasync / fsync / syncfs calls, each still done for real."""

    def __init__(self) -> None:
        self.calls = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        originals = {os.fsync, getattr(os, "fdatasync", os.fsync)}
        saved: list[tuple[dict[str, Any], str, Any]] = []

        def counted(real: Callable[[int], Any]) -> Callable[[int], Any]:
            def call(fd: int) -> Any:
                self.calls += 1
                return real(fd)

            return call

        for name, module in list(sys.modules.items()):
            if module is None or not (name == "durable" or name.startswith("durable.")):
                continue
            namespace = vars(module)
            for key, value in list(namespace.items()):
                if key == "_load_syncfs" and callable(value):
                    saved.append((namespace, key, value))
                    namespace[key] = lambda load=value: counted(load())
                elif any(value is original for original in originals):
                    saved.append((namespace, key, value))
                    namespace[key] = counted(value)
        try:
            yield
        finally:
            for namespace, key, value in reversed(saved):
                namespace[key] = value


async def _run(
    directory: Path, mode: str, steps: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    async with durable.Runtime(directory) as runtime:
        started = clock()
        await runtime.run(stepping, steps, mode, id="w")
        return clock() - started


def measure_cpu(root: Path, runs: int, steps: int) -> dict[str, float]:
    """Process CPU microseconds per step of each workload, syncs stubbed (medians)."""
    found: dict[str, list[float]] = {name: [] for name in WORKLOADS}
    for run in range(runs):
        for mode in WORKLOADS:
            with stubbed_syncs():
                seconds = asyncio.run(
                    _run(root / f"cpu-{mode}-{run}", mode, steps, time.process_time)
                )
            found[mode].append(seconds / steps * 1e6)
    return {mode: statistics.median(values) for mode, values in found.items()}


def measure(root: Path, runs: int, steps: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {name: [] for name in WORKLOADS}
    syncs: dict[str, list[float]] = {name: [] for name in WORKLOADS}
    sizes: dict[str, float] = {}
    for run in range(runs):
        for mode in WORKLOADS:
            directory = root / f"{mode}-{run}"
            counter = SyncCounter()
            with counter.counting():
                elapsed = asyncio.run(_run(directory, mode, steps))
            times[mode].append(elapsed / steps * 1e6)
            syncs[mode].append(counter.calls / steps)
            sizes[mode] = (directory / "w.journal").stat().st_size / steps
    return {
        mode: {
            "us_per_step": statistics.median(times[mode]),
            "syncs_per_step": statistics.median(syncs[mode]),
            "bytes_per_step": sizes[mode],
        }
        for mode in WORKLOADS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--cpu-steps", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None, help="where journals go (a disk)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=options.dir) as root:
        result = measure(Path(root), options.runs, options.steps)
        cpu = measure_cpu(Path(root), options.runs, options.cpu_steps)
    plain = result["plain"]["us_per_step"]
    print(
        f"{'workload':10} {'us/step':>9} {'vs plain':>9} {'syncs/step':>11} {'bytes/step':>11}"
        f" {'CPU us/step':>12} {'CPU vs plain':>13}"
    )
    for mode, figures in result.items():
        figures["cpu_us_per_step"] = cpu[mode]
        print(
            f"{mode:10} {figures['us_per_step']:9.1f} {figures['us_per_step'] / plain:9.2f}"
            f" {figures['syncs_per_step']:11.2f} {figures['bytes_per_step']:11.1f}"
            f" {cpu[mode]:12.1f} {cpu[mode] - cpu['plain']:+13.1f}"
        )
    out = Path(__file__).parent / "results" / "streams.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": options.runs, "steps": options.steps, **result}, indent=2))


if __name__ == "__main__":
    main()
