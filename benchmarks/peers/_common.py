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

Peers with a server of their own (Temporal's dev server, restate-server) start it with the
process helpers at the end of this module: loopback ports, a server that dies with its parent,
a bounded stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Nothing here touches the file system at import: Temporal's workflow sandbox re-imports this
# module (through temporal_peer, whose workflows it validates and runs) and refuses calls such
# as Path.resolve() there ("Failed validating workflow Steps"). tests/test_benchmarks_smoke.py
# imports every adapter as its peer's runtime does, Temporal's through the sandbox.


def _repo_root() -> Path:
    """The repository's root (the self-check's worker processes run from there)."""
    return Path(__file__).resolve().parents[2]


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


# --- servers the peers start as subprocesses ---------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Ports free right now on 127.0.0.1 (held open together, so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def die_with_parent() -> None:
    """In a server's process before exec (preexec_fn): SIGTERM it when this process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent already died between fork and prctl
        os._exit(1)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, wait, SIGKILL if needed; blocking, so that cancellation cannot skip it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tail(path: Path, chars: int = 2000) -> str:
    """The end of a server's log file, for error messages ("" if there is none)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# --- an adapter's self-check: `python -m benchmarks.peers.<adapter> [full | WORKLOAD SIZES...]`

SELF_CHECK_TINY: dict[str, tuple[int, ...]] = {
    "sequential": (20,),
    "concurrent": (5, 5),
    "sleeping": (20,),
    "replay": (50,),
}
SELF_CHECK_FULL: dict[str, tuple[int, ...]] = {
    "sequential": (200,),
    "concurrent": (100, 20),
    "sleeping": (10_000,),
    "replay": (1_000,),
}


def self_check(module: str, argv: list[str], unavailable: Callable[[], str | None]) -> None:
    """Run one workload here (e.g. under strace), or each in a fresh process and print it."""
    adapter = importlib.import_module(module)
    if argv and argv[0] in SELF_CHECK_TINY:
        workload = argv[0]
        sizes = tuple(int(part) for part in argv[1:]) or SELF_CHECK_TINY[workload]
        with tempfile.TemporaryDirectory(prefix=f"{adapter.NAME}-{workload}-") as directory:
            started = time.perf_counter()
            try:
                result = asyncio.run(getattr(adapter, workload)(Path(directory), *sizes))
            except Unsupported as error:
                result = {"unsupported": str(error)}
            took = time.perf_counter() - started
        print(workload, "x".join(map(str, sizes)), result, f"({took:.1f} s)", flush=True)
        return
    reason = unavailable()
    print("unavailable:", reason, flush=True)
    if reason is not None:
        return
    sizes_by_workload = SELF_CHECK_FULL if argv[:1] == ["full"] else SELF_CHECK_TINY
    for workload, size in sizes_by_workload.items():  # each in a fresh process, as for real
        command = [sys.executable, "-m", module, workload, *(str(part) for part in size)]
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(command, cwd=_repo_root(), check=False, timeout=600)
