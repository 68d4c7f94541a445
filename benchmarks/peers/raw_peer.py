"""The disk's limits, as baselines: raw write+fdatasync loops measured in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.journal import raw_shared_group, raw_single, raw_syncfs_batch

NAME = "raw"


def unavailable() -> str | None:
    return None


async def sequential(directory: Path, steps: int) -> dict[str, Any]:
    """write + fdatasync per record, blocking: the ceiling of one sequential workflow."""
    return {"steps_per_s": raw_single(directory, max(steps, 1000))}


async def concurrent(directory: Path, workflows: int, steps: int) -> dict[str, Any]:
    """One record into each of 100 files, then one syncfs: the ceiling of 100 journals."""
    return {
        "steps_per_s": raw_syncfs_batch(directory, workflows * steps),
        "group_commit_per_s": raw_shared_group(directory, workflows * steps),
    }
