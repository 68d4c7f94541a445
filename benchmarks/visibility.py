"""How fast the CLI and the web UI read a big journal directory, with a raw read as baseline.

    python -m benchmarks.visibility [--runs 5] [--workflows 10000] [--steps 100000] [--quick]

The directory is made by real runs: --workflows workflows of 3 steps each (a third still
sleeping), plus one journal of --steps finished steps (the same records as a real run).
Measured, interleaved per run, medians:
  raw_read        read every journal file's bytes (no decoding): the floor
  python_start    `python -c "import durable._cli"`: the interpreter and imports alone
  cli_list        `durable list` over the whole directory, end to end (a subprocess)
  catalog_list    the catalog's listing in-process (what `durable list` and the UI's list do)
  cli_show_big    `durable show` of the big journal (its last 200 steps), end to end
  ui_history_big  the UI's API for the big journal: first answer, then a cached refresh
  ui_list_page    the UI's API, a page of 100 workflows of the whole directory: first, then a
                  live refresh (only journals that changed are decoded again)

Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from starlette.testclient import TestClient

import durable
from benchmarks.engine import _write_finished_steps
from benchmarks.journal import write_report
from durable._catalog import Catalog
from durable._ui import create_app


@durable.activity(name="work")
async def work(index: int) -> int:
    return index


@durable.workflow(name="listed")
async def listed(index: int) -> int:
    await work(index)
    await work(index + 1)
    if index % 3 == 0:
        await durable.sleep("2 hours")
    return await work(index + 2)


async def make_directory(directory: Path, workflows: int, steps: int) -> None:
    async with durable.Runtime(directory, suspend_after="0 s") as runtime:
        for first in range(0, workflows, 500):
            batch = range(first, min(workflows, first + 500))
            handles = [await runtime.start(listed, index, id=f"wf-{index:06d}") for index in batch]
            # (a third sleep 2 hours: they stay unfinished, unloaded, as in production)
            await asyncio.gather(
                *(h.result() for i, h in zip(batch, handles, strict=True) if i % 3)
            )
    # The big one: `steps` finished steps, under the name the API is asked for.
    await _write_finished_steps(directory, steps)


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr}")
    return elapsed


def _raw_read(directory: Path) -> float:
    started = time.perf_counter()
    for entry in os.scandir(directory):
        if not entry.is_file(follow_symlinks=False):
            continue  # (the .locks folder unloaded sleepers' runtimes leave)
        with open(entry.path, "rb") as file:
            file.read()
    return time.perf_counter() - started


def measure(directory: Path, runs: int) -> dict[str, list[float]]:
    cli = str(Path(sys.executable).parent / "durable")
    times: dict[str, list[float]] = {
        name: []
        for name in (
            "raw_read",
            "python_start",
            "cli_list",
            "catalog_list",
            "cli_show_big",
            "ui_history_big_first",
            "ui_history_big_cached",
            "ui_list_page_first",
            "ui_list_page_refresh",
        )
    }
    for _ in range(runs):
        times["raw_read"].append(_raw_read(directory))
        times["python_start"].append(_timed([sys.executable, "-c", "import durable._cli"]))
        times["cli_list"].append(_timed([cli, "list", "--dir", str(directory)]))
        started = time.perf_counter()
        asyncio.run(Catalog(directory).listing())
        times["catalog_list"].append(time.perf_counter() - started)
        times["cli_show_big"].append(_timed([cli, "show", "replay", "--dir", str(directory)]))
        app = create_app(directory, token="benchmark")  # (every API read needs the token)
        headers = {"X-Durable-Token": "benchmark"}
        with TestClient(app, base_url="http://127.0.0.1", headers=headers) as client:
            for name in ("ui_history_big_first", "ui_history_big_cached"):
                started = time.perf_counter()
                answer = client.get("/api/workflows/replay")
                times[name].append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
            for name in ("ui_list_page_first", "ui_list_page_refresh"):
                started = time.perf_counter()
                answer = client.get("/api/workflows?limit=100")
                times[name].append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/.scratch/visibility"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    runs, workflows, steps = (1, 30, 300) if args.quick else (args.runs, args.workflows, args.steps)
    shutil.rmtree(args.dir, ignore_errors=True)
    started = time.perf_counter()
    asyncio.run(make_directory(args.dir, workflows, steps))
    took = time.perf_counter() - started
    print(f"made {workflows} workflows + one of {steps} steps in {took:.1f} s")
    times = measure(args.dir, runs)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{'workload':<24}{'median s':>10}  ratio")
    for name, value in medians.items():
        ratio = ""
        if name in ("cli_list", "cli_show_big"):
            ratio = f"{value / medians['python_start']:.1f}x python start-up"
        elif name.startswith(("catalog_list", "ui_list_page")):
            ratio = f"{value / medians['raw_read']:.1f}x raw read"
        print(f"{name:<24}{value:>10.3f}  {ratio}")
    result = {
        "runs": runs,
        "workflows": workflows,
        "steps": steps,
        "seconds": times,
        "medians": medians,
    }
    write_report(result, args.output, "visibility-quick.json" if args.quick else "visibility.json")
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
