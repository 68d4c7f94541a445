"""Two processes on one queue's request log at once: appends never interleave, claims are once.

Each process enqueues its own requests and claims and finishes whatever it finds waiting
(its own and the other's), with compaction after every few dozen dead records, so the two
append, compact and follow each other's compactions while the other writes. Afterwards:
every request was numbered once (no two share a sequence number), claimed by exactly one
process, and the log, read afresh, holds nothing (all finished) and no damage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from durable._storage._queue_files import QueueFiles

pytestmark = pytest.mark.slow

EACH = 1500

WORKER = """
import json, sys, time
from pathlib import Path
from durable._storage import _request_log
from durable._storage._queue_files import QueueFiles
from durable._storage._request_codec import Request

_request_log.COMPACT_AFTER = 40
directory, me, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
files = QueueFiles(directory, "race")
print("ready", flush=True)
while not (directory / "go").exists():  # (both start together)
    time.sleep(0.001)
seqs, claimed = {}, []
for index in range(count):
    stored = files.create(Request(f"{me}-{index}", 5, 0, 1.0, 1.0, None, None, b"x" * 64))
    assert stored is not None
    seqs[stored.workflow_id] = stored.seq
    if index % 7 == 0:
        files.sync()
    for name in files.waiting()[:2]:
        if files.claim(name):
            claimed.append(name)
            files.finish(name)
files.sync()
while names := files.waiting():
    for name in names:
        if files.claim(name):
            claimed.append(name)
            files.finish(name)
files.close()
print(json.dumps({"seqs": seqs, "claimed": claimed}))
"""


def test_two_processes_append_claim_and_compact_at_once(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    QueueFiles(tmp_path, "race").close()  # (the directories, made before the race)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), name, str(EACH)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    (tmp_path / "go").touch()
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        results.append(json.loads(out))
    seqs = {**results[0]["seqs"], **results[1]["seqs"]}
    assert len(seqs) == 2 * EACH
    assert len(set(seqs.values())) == 2 * EACH, "a sequence number given twice"
    claimed = results[0]["claimed"] + results[1]["claimed"]
    assert sorted(claimed) == sorted(seqs), "each request claimed exactly once"
    assert results[0]["claimed"], "both processes claimed"
    assert results[1]["claimed"]
    files = QueueFiles(tmp_path, "race", create=False)
    try:
        assert (files.waiting(), files.admitted()) == ([], [])
        assert files._log._frames < 2 * EACH, "compacted along the way"
    finally:
        files.close()
