"""The engine's CPU per workflow step, syncs stubbed, for one or more source trees.

    python -m benchmarks.step_cpu [--tree PATH ...] [--runs 21] [--steps 10000] [--quick]

What a change costs the engine itself, with the disk taken out: each run is a fresh process
per tree (PYTHONPATH=tree, so `durable` comes from it) whose fdatasync, fsync and syncfs do
nothing (benchmarks/nosync.py); it measures process CPU time (every thread: the stall
watchdog's too) per step of
  live     one workflow of --steps trivial activities, one after another
  replay   the resume of a journal holding --steps finished steps of it
Trees are interleaved run by run, so drift on a shared machine hits all alike. Compare a
change with main as `--tree /path/to/main --tree .`. Prints medians (us per step) and the
ratio of each tree to the first; writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _child(steps: int, directory: str) -> None:
    """In the measured process: live and replay CPU per step, as JSON on stdout."""
    import durable  # noqa: PLC0415 (from the tree under test: PYTHONPATH)
    from durable import JournalDirectory  # noqa: PLC0415
    from durable._encoding import encode  # noqa: PLC0415
    from durable._engine._replay import digest_of  # noqa: PLC0415

    # The stub of this checkout, by path: `benchmarks` on PYTHONPATH is the tree's own.
    spec = importlib.util.spec_from_file_location("_nosync", HERE.parent / "nosync.py")
    assert spec is not None
    assert spec.loader is not None
    nosync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nosync)

    @durable.activity(name="step")
    async def step(index: int) -> int:
        return index

    @durable.workflow(name="bench")
    async def steps_workflow(count: int) -> int:
        total = 0
        for index in range(count):
            total += await step(index)
        return total

    async def write_done_steps() -> None:
        async with JournalDirectory(directory) as store:
            journal = await store.open("replay")
            now = time.time()
            start = {"k": "start", "v": 2, "wf": "bench", "id": "replay", "args": [steps]}
            journal.write(encode({**start, "t": now, "seed": 1}))
            for index in range(steps):
                digest = digest_of(encode([[index], {}]))
                done = {"k": "done", "s": index, "a": "step", "d": digest, "n": 1, "r": index}
                journal.write(encode({**done, "t": now}))
            await journal.close()

    async def measure() -> dict[str, float]:
        async with durable.Runtime(directory) as runtime:
            started = time.process_time()
            await runtime.run(steps_workflow, steps, id="live")
            live = (time.process_time() - started) / steps
        await write_done_steps()
        async with durable.Runtime(directory) as runtime:
            started = time.process_time()
            await runtime.run(steps_workflow, steps, id="replay")
            replay = (time.process_time() - started) / steps
        return {"live": live * 1e6, "replay": replay * 1e6}

    with nosync.stubbed_syncs():
        print(json.dumps(asyncio.run(measure())))


def _one_run(tree: Path, steps: int, scratch: Path) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix="step-cpu-", dir=scratch)
    result = subprocess.run(
        [sys.executable, str(HERE), "--child", "--steps", str(steps), "--dir", directory],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(trees: list[Path], runs: int, steps: int, scratch: Path) -> dict[str, object]:
    samples: dict[str, dict[str, list[float]]] = {
        str(tree): {"live": [], "replay": []} for tree in trees
    }
    for _ in range(runs):
        for tree in trees:
            for name, value in _one_run(tree, steps, scratch).items():
                samples[str(tree)][name].append(value)
    medians = {
        tree: {name: statistics.median(values) for name, values in workloads.items()}
        for tree, workloads in samples.items()
    }
    return {"steps": steps, "runs_per_tree": runs, "medians_us": medians, "runs_us": samples}


def report(result: dict[str, object]) -> None:
    medians: dict[str, dict[str, float]] = result["medians_us"]  # type: ignore[assignment]
    print(
        f"CPU per step, syncs stubbed: {result['steps']} steps, medians of "
        f"{result['runs_per_tree']} runs per tree (us per step; ratio to the first tree)"
    )
    first = next(iter(medians.values()))
    for tree, workloads in medians.items():
        cells = ", ".join(
            f"{name} {value:.3f} ({value / first[name]:.3f}x)" for name, value in workloads.items()
        )
        print(f"  {tree}: {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, action="append", help="a source tree (repeat)")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/.scratch"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.steps, str(args.dir))
        return
    from benchmarks.journal import write_report  # noqa: PLC0415 (not in the child)

    trees = [tree.resolve() for tree in args.tree or [HERE.parent.parent]]
    runs, steps = (1, 200) if args.quick else (args.runs, args.steps)
    args.dir.mkdir(parents=True, exist_ok=True)
    result = measure(trees, runs, steps, args.dir)
    report(result)
    write_report(result, args.output, "step_cpu-quick.json" if args.quick else "step_cpu.json")


if __name__ == "__main__":
    main()
