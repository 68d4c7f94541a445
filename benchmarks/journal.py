"""Journal throughput against the raw limits of this disk, measured in one run.

    python -m benchmarks.journal [--runs 5] [--records 2000] [--dir PATH] [--quick]

Workloads (each run interleaves them, so drift on a shared machine hits all alike):
  raw_single        write + os.fdatasync per 100-byte record, blocking, one file
  journal_single    JournalFile.append of one record at a time (the public interface)
  raw_syncfs_batch  one record into each of 100 files, then one syncfs(2)
  raw_fdatasync_100 one record into each of 100 files, then fdatasync on each
  raw_shared_group  100 records in one write + one fdatasync, one shared file
  journal_100       100 coroutines appending concurrently, each to its own journal
The 100-file workloads write 10x --records in all (200 per file by default).

Prints medians and ratios, and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from durable import JournalDirectory

RECORD = b"r" * 100
FILES = 100
_libc = ctypes.CDLL(None, use_errno=True)


def raw_single(directory: Path, records: int) -> float:
    fd = os.open(directory / "raw_single", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    frame = b"\0" * 8 + RECORD
    try:
        start = time.perf_counter()
        for _ in range(records):
            os.write(fd, frame)
            os.fdatasync(fd)
        return records / (time.perf_counter() - start)
    finally:
        os.close(fd)


def _files(directory: Path, prefix: str) -> list[int]:
    directory.mkdir(exist_ok=True)
    return [
        os.open(directory / f"{prefix}{i}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for i in range(FILES)
    ]


def raw_syncfs_batch(directory: Path, records: int) -> float:
    fds = _files(directory / "syncfs", "f")
    directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    rounds = max(records // FILES, 1)
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            for fd in fds:
                os.write(fd, RECORD)
            if _libc.syncfs(directory_fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs")
        return rounds * FILES / (time.perf_counter() - start)
    finally:
        for fd in (*fds, directory_fd):
            os.close(fd)


def raw_fdatasync_100(directory: Path, records: int) -> float:
    fds = _files(directory / "each", "f")
    rounds = max(records // FILES // 4, 1)
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            for fd in fds:
                os.write(fd, RECORD)
            for fd in fds:
                os.fdatasync(fd)
        return rounds * FILES / (time.perf_counter() - start)
    finally:
        for fd in fds:
            os.close(fd)


def raw_shared_group(directory: Path, records: int) -> float:
    fd = os.open(directory / "shared", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    batch = RECORD * FILES
    rounds = max(records // FILES, 1)
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            os.write(fd, batch)
            os.fdatasync(fd)
        return rounds * FILES / (time.perf_counter() - start)
    finally:
        os.close(fd)


async def _journal_single(directory: Path, records: int) -> float:
    async with JournalDirectory(directory / "journals") as store:
        journal = await store.open("single")
        try:
            start = time.perf_counter()
            for _ in range(records):
                await journal.append(RECORD)
            return records / (time.perf_counter() - start)
        finally:
            await journal.close()


async def _journal_100(directory: Path, records: int) -> float:
    per_journal = max(records // FILES, 1)
    async with JournalDirectory(directory / "journals") as store:
        journals = [await store.open(f"concurrent-{i}") for i in range(FILES)]

        async def appender(journal: object) -> None:
            append = journal.append  # type: ignore[attr-defined]
            for _ in range(per_journal):
                await append(RECORD)

        try:
            start = time.perf_counter()
            await asyncio.gather(*(appender(journal) for journal in journals))
            return per_journal * FILES / (time.perf_counter() - start)
        finally:
            for journal in journals:
                await journal.close()


def journal_single(directory: Path, records: int) -> float:
    return asyncio.run(_journal_single(directory, records))


def journal_100(directory: Path, records: int) -> float:
    return asyncio.run(_journal_100(directory, records))


WORKLOADS: dict[str, Callable[[Path, int], float]] = {
    "raw_single": raw_single,
    "journal_single": journal_single,
    "raw_syncfs_batch": raw_syncfs_batch,
    "raw_fdatasync_100": raw_fdatasync_100,
    "raw_shared_group": raw_shared_group,
    "journal_100": journal_100,
}
SEQUENTIAL = {"raw_single", "journal_single"}
RATIOS = [
    ("journal_single", "raw_single", 0.8),
    ("journal_100", "raw_syncfs_batch", 0.5),
    ("journal_100", "raw_fdatasync_100", None),
    ("journal_100", "raw_shared_group", None),
]


def measure(root: Path, runs: int, records: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in WORKLOADS}
    for run in range(runs):
        for name, workload in WORKLOADS.items():
            directory = Path(tempfile.mkdtemp(prefix=f"{name}-{run}-", dir=root))
            # The 100-file workloads get 10x the records: 200 rounds reach a steady state.
            size = records if name in SEQUENTIAL else records * 10
            try:
                rates[name].append(workload(directory, size))
            finally:
                shutil.rmtree(directory)
    return rates


def report(rates: dict[str, list[float]], runs: int, records: int) -> dict[str, object]:
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"journal benchmark: {runs} runs, medians; {records} records one at a time, "
        f"{records * 10} over {FILES} files"
    )
    print(f"{'workload':<20} {'records/s':>12}   runs")
    for name, median in medians.items():
        spread = ", ".join(f"{value:,.0f}" for value in rates[name])
        print(f"{name:<20} {median:>12,.0f}   [{spread}]")
    ratios = {}
    print()
    for ours, baseline, target in RATIOS:
        ratio = medians[ours] / medians[baseline]
        ratios[f"{ours}/{baseline}"] = ratio
        verdict = (
            ""
            if target is None
            else (
                "  (target >= {:.1f}x: {})".format(target, "met" if ratio >= target else "MISSED")
            )
        )
        print(f"{ours} / {baseline}: {ratio:.2f}x{verdict}")
    return {"medians": medians, "ratios": ratios, "runs": rates}


def write_report(result: dict[str, object], output: Path, name: str) -> None:
    """Stamp `result` with the machine and date, and write it as output/name."""
    result["machine"] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {output / name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/.scratch"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    runs, records = (1, 200) if args.quick else (args.runs, args.records)
    args.dir.mkdir(parents=True, exist_ok=True)
    rates = measure(args.dir, runs, records)
    result = report(rates, runs, records)
    write_report(result, args.output, "journal-quick.json" if args.quick else "journal.json")


if __name__ == "__main__":
    main()
