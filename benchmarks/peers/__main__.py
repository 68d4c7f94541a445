"""durable side by side with its peers: one command, one process run, ratios, a table, a plot.

    python -m benchmarks.peers [--runs 5] [--systems durable,files,dbos,...] [--quick]

Systems: raw (the disk's limits: write+fdatasync loop, syncfs batch, group commit), durable,
files (hand-written msgpack + fdatasync), dbos (DBOS Transact, SQLite), temporal-local and
temporal (Temporal's local and regular activities on its file-backed dev server), restate
(restate-server from npm, installed into benchmarks/.restate/ on first use, and its Python
SDK). Peers need the `bench` extra (`pip install -e '.[bench]'`); one that cannot run here
is reported as skipped with the reason. Every (system, workload) runs in a fresh worker
process, runs are interleaved, and figures are medians over --runs, so ratios compare like
with like.

Writes benchmarks/results/peers.json, peers.md (the table) and peers.png (the chart).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._common import Unsupported

SYSTEMS = {
    "raw": ("benchmarks.peers.raw_peer", None),
    "durable": ("benchmarks.peers.durable_peer", None),
    "files": ("benchmarks.peers.files_peer", None),
    "dbos": ("benchmarks.peers.dbos_peer", None),
    "temporal-local": ("benchmarks.peers.temporal_peer", "LOCAL"),
    "temporal": ("benchmarks.peers.temporal_peer", "REMOTE"),
    "restate": ("benchmarks.peers.restate_peer", None),
}
FULL: dict[str, list[Any]] = {
    "sequential": [200],
    "concurrent": [(100, 20)],
    "sleeping": [10_000],
    "replay": [1_000, 10_000, 100_000],
}
QUICK: dict[str, list[Any]] = {
    "sequential": [20],
    "concurrent": [(5, 5)],
    "sleeping": [50],
    "replay": [100, 1_000],
}
WORKER_TIMEOUT = 600
REPEAT_LIMIT = 120  # seconds: a workload slower than this is measured once, not --runs times


def load(system: str) -> Any:
    """The adapter of `system` (a module, or an object in it)."""
    module_name, attribute = SYSTEMS[system]
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def worker(system: str, workload: str, size: str, directory: Path) -> dict[str, Any]:
    """Run one workload once, in this (fresh) process."""
    try:
        adapter = load(system)
    except ImportError as error:
        return {"skipped": f"cannot import: {error}"}
    reason = adapter.unavailable()
    if reason is not None:
        return {"skipped": reason}
    function = getattr(adapter, workload, None)
    if function is None:
        return {"skipped": f"{system} has no {workload} workload"}
    arguments = [int(part) for part in size.split("x")]
    try:
        return {"ok": asyncio.run(function(directory, *arguments))}
    except Unsupported as error:
        return {"skipped": str(error)}


def run_worker(system: str, workload: str, size: str, root: Path) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix=f"{system}-{workload}-", dir=root))
    command = [
        sys.executable,
        "-m",
        "benchmarks.peers",
        "worker",
        system,
        workload,
        size,
        str(directory),
    ]
    try:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT} s"}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if finished.returncode != 0 or not lines:
        tail = (finished.stderr or finished.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {finished.returncode}: {' | '.join(tail)}"}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def size_label(size: int | tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}" if isinstance(size, tuple) else str(size)


def measure(
    systems: list[str], sizes: dict[str, list[Any]], runs: int, root: Path
) -> dict[str, Any]:
    """results[system][workload][size] = {"runs": [...], "median": {...}} or {"skipped": ...}."""
    results: dict[str, Any] = {system: {} for system in systems}
    for run in range(runs):
        for workload, workload_sizes in sizes.items():
            for size in workload_sizes:
                label = size_label(size)
                for system in systems:
                    slot = results[system].setdefault(workload, {}).setdefault(label, {"runs": []})
                    if "skipped" in slot or "error" in slot:
                        continue  # it will not start working in the next run
                    if slot.get("once"):
                        continue  # too slow to repeat: measured once, and the table says so
                    print(
                        f"run {run + 1}/{runs}: {system:<15} {workload:<10} {label}",
                        file=sys.stderr,
                        flush=True,
                    )
                    started = time.monotonic()
                    outcome = run_worker(system, workload, label, root)
                    elapsed = time.monotonic() - started
                    if "ok" in outcome:
                        slot["runs"].append(outcome["ok"])
                        if elapsed > REPEAT_LIMIT and runs > 1:
                            slot["once"] = f"measured once: one run takes {elapsed:.0f} s"
                    else:
                        slot.update(outcome)
    for per_workload in results.values():
        for per_size in per_workload.values():
            for slot in per_size.values():
                if slot["runs"]:
                    metrics = slot["runs"][0].keys()
                    slot["median"] = {
                        metric: statistics.median(run[metric] for run in slot["runs"])
                        for metric in metrics
                    }
    return results


def cell(results: dict[str, Any], system: str, workload: str, label: str, metric: str) -> Any:
    slot = results.get(system, {}).get(workload, {}).get(label, {})
    if "median" in slot:
        return slot["median"].get(metric)
    reason = slot.get("skipped") or slot.get("error")
    return None if reason and "has no" in reason else reason


def _number(value: Any, digits: int = 0) -> str:
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return "skipped" if isinstance(value, str) else "-"


def table(results: dict[str, Any], systems: list[str], sizes: dict[str, list[Any]]) -> str:
    """The markdown table: one row per system, ratios against raw and durable."""
    seq = size_label(sizes["sequential"][0])
    conc = size_label(sizes["concurrent"][0])
    sleep = size_label(sizes["sleeping"][0])
    replays = [size_label(size) for size in sizes["replay"]]
    raw_seq = cell(results, "raw", "sequential", seq, "steps_per_s")
    raw_conc = cell(results, "raw", "concurrent", conc, "steps_per_s")
    ours_conc = cell(results, "durable", "concurrent", conc, "steps_per_s")
    header = (
        f"| system | sequential ({seq} steps) steps/s | vs raw loop | p50 / p99 us | "
        f"concurrent ({conc}) steps/s | vs raw syncfs | durable is | "
        f"sleeping {sleep}: MiB / start s | "
        + " | ".join(f"replay {label} events/s" for label in replays)
        + " |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    notes = []
    for system in systems:
        s_rate = cell(results, system, "sequential", seq, "steps_per_s")
        c_rate = cell(results, system, "concurrent", conc, "steps_per_s")
        p50 = cell(results, system, "sequential", seq, "p50_us")
        p99 = cell(results, system, "sequential", seq, "p99_us")
        rss = cell(results, system, "sleeping", sleep, "rss_mb")
        start = cell(results, system, "sleeping", sleep, "start_s")

        def ratio(value: Any, base: Any) -> str:
            if isinstance(value, float | int) and isinstance(base, float | int) and base:
                return f"{value / base:.2f}x"
            return "-"

        ours = (
            f"{ours_conc / c_rate:,.0f}x faster"
            if system not in ("durable", "raw")
            and isinstance(c_rate, float)
            and isinstance(ours_conc, float)
            else "-"
        )
        row = [
            system,
            _number(s_rate),
            ratio(s_rate, raw_seq) if system != "raw" else "baseline",
            f"{_number(p50)} / {_number(p99)}" if isinstance(p50, float) else "-",
            _number(c_rate),
            ratio(c_rate, raw_conc) if system != "raw" else "baseline",
            ours,
            f"{_number(rss, 1)} / {_number(start, 2)}" if isinstance(rss, float) else _number(rss),
            *(_number(cell(results, system, "replay", label, "events_per_s")) for label in replays),
        ]
        lines.append("| " + " | ".join(row) + " |")
        for workload, per_size in results.get(system, {}).items():
            for label, slot in per_size.items():
                reason = slot.get("skipped") or slot.get("error") or slot.get("once")
                if reason and not (system == "raw" and "has no" in reason):
                    notes.append(f"- {system} {workload} {label}: {reason}")
    if notes:
        lines += ["", "Skipped, failed or measured once:", *notes]
    return "\n".join(lines) + "\n"


def plot(
    results: dict[str, Any], systems: list[str], sizes: dict[str, list[Any]], path: Path
) -> str | None:
    """A bar chart of sequential and concurrent steps/s (log scale); None, or why not."""
    try:
        import matplotlib  # noqa: PLC0415 (optional: the bench extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    seq = size_label(sizes["sequential"][0])
    conc = size_label(sizes["concurrent"][0])
    shown = [s for s in systems if s != "raw"]
    values = {
        "sequential": [cell(results, s, "sequential", seq, "steps_per_s") for s in shown],
        "concurrent": [cell(results, s, "concurrent", conc, "steps_per_s") for s in shown],
    }
    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for offset, (workload, rates) in zip((-width / 2, width / 2), values.items(), strict=True):
        heights = [rate if isinstance(rate, float) else 0 for rate in rates]
        bars = axes.bar([i + offset for i in range(len(shown))], heights, width, label=workload)
        axes.bar_label(bars, labels=[f"{h:,.0f}" if h else "skipped" for h in heights], fontsize=7)
    for workload, metric, style in (("sequential", seq, ":"), ("concurrent", conc, "--")):
        baseline = cell(results, "raw", workload, metric, "steps_per_s")
        if isinstance(baseline, float):
            axes.axhline(
                baseline,
                linestyle=style,
                color="grey",
                linewidth=1,
                label=f"raw disk limit, {workload}",
            )
    axes.set_yscale("log")
    axes.set_xticks(range(len(shown)), shown)
    axes.set_ylabel("steps per second (log scale)")
    axes.set_title(f"durable vs peers: sequential ({seq} steps), concurrent ({conc})")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        _, _, system, workload, size, directory = sys.argv
        print(json.dumps(worker(system, workload, size, Path(directory))), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/.scratch"))
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    systems = args.systems.split(",")
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {sorted(SYSTEMS)}")
    if "raw" not in systems:
        systems.insert(0, "raw")
    sizes = QUICK if args.quick else FULL
    runs = 1 if args.quick else args.runs
    args.dir.mkdir(parents=True, exist_ok=True)
    results = measure(systems, sizes, runs, args.dir)
    markdown = table(results, systems, sizes)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    markdown = f"Measured {stamp} on {machine}; medians of {runs} runs.\n\n{markdown}"
    print(markdown)
    args.output.mkdir(parents=True, exist_ok=True)
    name = "peers-quick" if args.quick else "peers"
    (args.output / f"{name}.md").write_text(markdown)
    (args.output / f"{name}.json").write_text(
        json.dumps({"date": stamp, "machine": machine, "runs": runs, "results": results}, indent=2)
        + "\n"
    )
    why_not = plot(results, systems, sizes, args.output / f"{name}.png")
    print(f"wrote {args.output / name}.json, .md" + ("" if why_not else ", .png"))
    if why_not:
        print(f"no chart: {why_not}")


if __name__ == "__main__":
    main()
