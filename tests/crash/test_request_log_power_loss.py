"""A queue's request log through power loss, enumerated: no synced request is ever lost.

Hypothesis draws a run of operations on one queue's log by two writers (as two processes on
one directory): enqueues (each batch synced, as enqueue() returns only then), admissions,
ends, compactions. The run is recorded at the file-system level (power_loss.py) and, for
crash points across it, every state a power loss may leave (torn and reordered unsynced
pages, a compaction's file without its rename, a rename without its directory's sync) is
laid out and opened. Per state:

- it opens (no error: only unsynced bytes differ from what was written);
- every request whose enqueue was synced before the crash, and that had not ended, is
  there (waiting, or admitted), with its bytes; nothing that was never enqueued is;
- sequence numbers stay unique; a writer opening the state mends it (torn tail, damage)
  and appends, and a fresh reader then sees what the first did, plus the new request.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from durable._storage import _request_log
from durable._storage._request_codec import Request
from durable._storage._request_log import RequestLog

from .power_loss import FileSystemRecorder, Op, crash_states, write_state

CRASH_POINTS = 6  # per example, spread over the run


@contextlib.contextmanager
def nothing() -> Iterator[None]:
    yield


def request(name: str) -> Request:
    return Request(name, len(name) % 3, 0, 1.0, 1.0, None, None, name.encode() * 40)


Action = tuple[str, int, int]  # (what, which writer, how many)

actions = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "enqueue", "admit", "finish", "compact"]),
        st.integers(0, 1),
        st.integers(1, 12),
    ),
    min_size=2,
    max_size=14,
)


def _open(directory: Path) -> tuple[int, RequestLog]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    return fd, RequestLog(fd, directory, nothing)


def _run(directory: Path, plan: list[Action]) -> tuple[list[Op], dict[str, int], dict[str, int]]:
    """Run `plan`, recorded: the ops, when each request was durable, when each ended."""
    recorder = FileSystemRecorder(directory)
    durable_at: dict[str, int] = {}
    ended_at: dict[str, int] = {}
    made = 0
    with recorder.installed():
        opened = [_open(directory) for _ in range(2)]
        try:
            for what, which, count in plan:
                log = opened[which][1]
                if what == "enqueue":
                    names = [f"r{made + n}" for n in range(count)]
                    made += count
                    for name in names:
                        assert log.enqueue(request(name)) is not None
                    log.sync()
                    for name in names:
                        durable_at[name] = len(recorder.ops) - 1
                elif what == "admit":
                    log.refresh()
                    for name in sorted(log.waiting)[:count]:
                        log.admit(name)
                elif what == "finish":
                    log.refresh()
                    for name in sorted(log.admitted)[:count]:
                        ended_at[name] = len(recorder.ops)  # (its end may be there from here)
                        log.finish(name)
                else:
                    log.compact()
        finally:
            for fd, log in opened:
                log.close()
                os.close(fd)
    return recorder.ops, durable_at, ended_at


def _live(directory: Path) -> dict[str, Request]:
    fd, log = _open(directory)
    try:
        log.refresh()
        return {**log.waiting, **log.admitted}
    finally:
        log.close()
        os.close(fd)


@settings(max_examples=8, deadline=None)
@given(plan=actions)
def test_no_synced_request_is_lost_to_a_power_loss(plan: list[Action]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        directory = root / "queue"
        directory.mkdir()
        original = _request_log.COMPACT_AFTER
        _request_log.COMPACT_AFTER = 8  # (compactions by themselves too, in a short run)
        try:
            ops, durable_at, ended_at = _run(directory, plan)
        finally:
            _request_log.COMPACT_AFTER = original
        enqueued = {f"r{n}" for n in range(len(durable_at))}
        step = max(1, len(ops) // CRASH_POINTS)
        for crash_after in sorted({*range(0, len(ops), step), len(ops) - 1}):
            for number, state in enumerate(crash_states(ops, crash_after)):
                place = root / f"state-{crash_after}-{number}"
                write_state(state, place)
                live = _live(place)
                must = {
                    name
                    for name, at in durable_at.items()
                    if at <= crash_after and ended_at.get(name, len(ops)) > crash_after
                }
                assert must <= live.keys(), f"{state.label}: lost {sorted(must - live.keys())}"
                assert live.keys() <= enqueued, state.label
                for name, stored in live.items():
                    assert stored.payload == request(name).payload, state.label
                seqs = [stored.seq for stored in live.values()]
                assert len(set(seqs)) == len(seqs), f"{state.label}: a number used twice"
                fd, writer = _open(place)
                try:
                    assert writer.enqueue(request("after")) is not None, state.label
                finally:
                    writer.close()
                    os.close(fd)
                assert _live(place).keys() == live.keys() | {"after"}, state.label
