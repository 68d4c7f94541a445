"""What each system syncs per workflow step, counted with strace (where it is installed).

    python -m benchmarks.peers.syncs [--systems durable,files,dbos,temporal-local,temporal,restate]

Runs each system's sequential workload under `strace -f -c` (children too, so Temporal's
dev server and restate-server are counted) at two sizes and reports the marginal count per
step of fsync, fdatasync, syncfs, sync_file_range and msync: set-up costs cancel out.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CALLS = "fsync,fdatasync,syncfs,sync_file_range,msync"
SMALL, LARGE = 20, 200


def count(system: str, steps: int, root: Path) -> dict[str, int] | str:
    """Sync calls of one run of `steps` sequential steps, by call; or why it failed."""
    directory = Path(tempfile.mkdtemp(prefix=f"strace-{system}-", dir=root))
    summary = directory / "strace.txt"
    command = [
        "strace",
        "-f",
        "-c",
        "-e",
        f"trace={CALLS}",
        "-o",
        str(summary),
        sys.executable,
        "-m",
        "benchmarks.peers",
        "worker",
        system,
        "sequential",
        str(steps),
        str(directory / "work"),
    ]
    (directory / "work").mkdir()
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if finished.returncode != 0 or '"ok"' not in finished.stdout:
            return f"did not run: {(finished.stdout + finished.stderr).strip()[-200:]}"
        counts: dict[str, int] = {}
        for line in summary.read_text().splitlines():
            match = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if match and match.group(2) in CALLS.split(","):
                counts[match.group(2)] = int(match.group(1))
        return counts
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", default="durable,files,dbos,temporal-local,temporal,restate")
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/.scratch"))
    args = parser.parse_args()
    if shutil.which("strace") is None:
        sys.exit("strace is not installed (Debian: apt-get install strace)")
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"sync calls per step (marginal, runs of {SMALL} and {LARGE} steps)")
    for system in args.systems.split(","):
        small, large = count(system, SMALL, args.dir), count(system, LARGE, args.dir)
        if isinstance(small, str) or isinstance(large, str):
            print(f"{system:<15} skipped: {small if isinstance(small, str) else large}")
            continue
        per_step = {
            call: (large.get(call, 0) - small.get(call, 0)) / (LARGE - SMALL)
            for call in sorted(set(small) | set(large))
        }
        shown = ", ".join(f"{call} {value:.2f}" for call, value in per_step.items()) or "none"
        print(f"{system:<15} {sum(per_step.values()):.2f} per step ({shown})")


if __name__ == "__main__":
    main()
