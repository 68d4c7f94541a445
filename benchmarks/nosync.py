"""Syncs that do nothing, so a benchmark measures the engine's CPU with the disk taken out.

    with stubbed_syncs():
        ...  # runtimes made in here: fdatasync, fsync and syncfs return at once

Everything else runs as it does on a real disk: the group committer still batches, calls
`syncfs` for a round of several journals and `fdatasync` for one, `fsync` for a new file's
directory entry; each of them returns at once. Used by `benchmarks.engine --cpu` and by
`benchmarks.step_cpu`'s measured process.

It replaces, for the duration of the block, `os.fdatasync` and `os.fsync`, every global of a
loaded `durable` module that is one of them (`sync_file = os.fdatasync`, bound at import),
and every `_load_syncfs` (the group committer calls it when it is made, so make runtimes
inside the block). If durable's storage no longer has these, it raises rather than time the
disk while saying it does not.

This file imports nothing from `durable` or `benchmarks`: step_cpu's measured process loads
it by path, with `durable` from whichever tree it measures.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any


def _no_sync(fd: int) -> None:
    return None


def _no_syncfs(fd: int) -> int:
    return 0  # (syncfs(2)'s success)


def _load_no_syncfs() -> Callable[[int], int]:
    return _no_syncfs


@contextlib.contextmanager
def stubbed_syncs() -> Iterator[None]:
    """fdatasync, fsync and syncfs do nothing inside the block (see the module's doc)."""
    originals = [os.fsync, getattr(os, "fdatasync", os.fsync)]
    saved: list[tuple[dict[str, Any], str, Any]] = []

    def replace(namespace: dict[str, Any], name: str, value: Any) -> None:
        saved.append((namespace, name, namespace[name]))
        namespace[name] = value

    found_sync = found_syncfs = False
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "durable" or module_name.startswith("durable.")):
            continue
        namespace = vars(module)
        for name, value in list(namespace.items()):
            if name == "_load_syncfs" and callable(value):
                replace(namespace, name, _load_no_syncfs)
                found_syncfs = True
            elif any(value is original for original in originals):
                replace(namespace, name, _no_sync)
                found_sync = True
    for name in ("fsync", "fdatasync"):
        if hasattr(os, name):
            replace(vars(os), name, _no_sync)
    try:
        if not (found_sync and found_syncfs):
            missing = [
                what
                for what, found in (
                    ("a sync_file bound to os.fdatasync", found_sync),
                    ("_load_syncfs", found_syncfs),
                )
                if not found
            ]
            raise RuntimeError(
                f"cannot stub durable's syncs: no loaded durable module has {' or '.join(missing)}"
                " (import durable first; if storage moved them, update benchmarks/nosync.py)"
            )
        yield
    finally:
        for namespace, name, value in reversed(saved):
            namespace[name] = value
