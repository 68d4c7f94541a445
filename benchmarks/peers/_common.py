"""What every system adapter implements, and helpers they share.

An adapter is a module with:

    NAME: str                                   # as shown in the table, e.g. "dbos"
    def unavailable() -> str | None             # None if it can run here, else why not
    async def sequential(directory, steps)      -> {"steps_per_s", "p50_us", "p99_us"}
    async def concurrent(directory, workflows, steps) -> {"steps_per_s"}
    async def sleeping(directory, workflows)    -> {"start_s", "rss_mb"}
    async def replay(directory, steps)          -> {"events_per_s"}

Each call runs in a fresh worker process (`python -m benchmarks.peers worker ...`), in an
empty `directory` it may use for its files (journals, SQLite, a dev server's database).
A workload a system cannot run raises Unsupported(reason); it is reported, never dropped.
Steps are trivial: an activity / step that returns its integer argument. Every system runs
in its durable default (what it syncs per step is counted separately with strace).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path


class Unsupported(Exception):
    """This system cannot run this workload here; the message says why."""


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process (default: this one) in MiB, from /proc."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    """p50 and p99 of per-step latencies, in microseconds."""
    ordered = sorted(latencies_s)
    return {
        "p50_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
    }
