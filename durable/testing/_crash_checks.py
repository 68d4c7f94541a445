"""Run a test scenario once per crash point: the in-process form of "kill it anywhere".

A scenario is the user's own test body (start workflows, send events, assert on the
outcome and on the side effects), written once against a TestRuntime. It is run once
without a crash, to count the records it writes, then once per crash point, each in a
fresh directory with fresh runtime state; its asserts are checked every time.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._crashes import CrashPoint, every_crash_point
from ._test_runtime import TestRuntime

Scenario = Callable[[TestRuntime], Awaitable[Any]]
"""A test body for check_crash_points: an async function of the TestRuntime it runs on.

It starts workflows on that runtime, awaits them and asserts; check_crash_points runs it
once per crash point, each time on a fresh runtime in a fresh directory.
"""

_NEVER = 2**62  # a crash point no run reaches: the baseline counts without crashing


class CrashPointFailed(AssertionError):
    """The scenario failed when crashed at `point`; the failure is the cause."""

    def __init__(self, point: CrashPoint, error: BaseException) -> None:
        super().__init__(f"crashed {point}: {type(error).__name__}: {error}")
        self.point = point
        self.error = error


@dataclass
class CrashReport:
    """What check_crash_points did.

    Attributes:
        records: the records a run without a crash writes.
        points: the crash points checked, in order.
        crashed: how many of those runs did crash (a point past the records does not).
    """

    records: int
    points: list[CrashPoint] = field(default_factory=list)
    crashed: int = 0


async def check_crash_point(
    scenario: Scenario,
    point: CrashPoint,
    directory: str | os.PathLike[str],
    **runtime_options: Any,
) -> bool:
    """Run `scenario` on a TestRuntime that crashes at `point`; whether it crashed.

    The directory gets a fresh subdirectory for this point. `runtime_options` go to
    TestRuntime (start_time, suspend_after, workflows).

    Raises:
        CrashPointFailed: the scenario raised (an assert failed, say); the cause is chained.
    """
    # (a new directory each time: hypothesis repeats points, and a journal left by an
    # earlier run would replay finished, without crashing and without its side effects)
    prefix = f"crash-{point.after_record}{'-late' if point.late else ''}-"
    where = _fresh_directory(directory, prefix)
    try:
        async with TestRuntime(where, crash=point, **runtime_options) as runtime:
            await scenario(runtime)
    except Exception as error:
        raise CrashPointFailed(point, error) from error
    return bool(runtime.crashes)


async def check_crash_points(
    scenario: Scenario,
    directory: str | os.PathLike[str],
    *,
    points: Iterable[CrashPoint] | None = None,
    **runtime_options: Any,
) -> CrashReport:
    """Run `scenario` once without a crash, then once per crash point (default: all).

    Every point is a kill right after a record, or just before the next record (after the
    code producing it ran), from before the first record to after the last: all the
    places a SIGKILL can leave the journal. Each run gets its own directory and runtime.

    Raises:
        CrashPointFailed: the scenario failed at a crash point (the first one found).
        Exception: whatever the scenario raises without a crash.
    """
    runtime_options.setdefault("start_time", time.time())  # every run starts at one time
    root = Path(directory)
    fresh = _fresh_directory(root, "no-crash-")
    async with TestRuntime(fresh, crash=CrashPoint(_NEVER), **runtime_options) as runtime:
        await scenario(runtime)
    assert runtime._injector is not None
    report = CrashReport(records=runtime._injector.written)
    for point in every_crash_point(report.records) if points is None else points:
        report.points.append(point)
        report.crashed += await check_crash_point(scenario, point, root, **runtime_options)
    return report


def _fresh_directory(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new, empty directory in `parent` (made if missing): no journal of an earlier run."""
    os.makedirs(parent, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
