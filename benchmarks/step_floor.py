"""What the primitives a live step cannot do without cost alone, in this Python, per step.

    python -m benchmarks.step_floor [--steps 200000] [--runs 5] [--only PART ...]

A live step of durable must at least: make the workflow's loop the running one and put the
host's back, with the async-generator hooks (`switch`); wake the workflow's asyncio Task
from the future it awaits, through one Handle, and run its coroutine to its next await
(`wake`); call the activity's coroutine and take its return (`activity`); encode the call's
arguments and digest them (the replay check), build the outcome's record and encode it
(`record`); frame it with its CRC (`frame`); `write` it into a file (`write`, a real
file in a temporary directory). Each is timed alone, in a loop of --steps, with durable's
own functions where it has one (the frame, the packer, the loop switch), and their sum is
the floor of a step built from them: what remains of a step's measured CPU is its
bookkeeping (numbering, the journal check, the drain, the group commit's inline sync).
Prints the medians of --runs, in us per step (process CPU time).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from hashlib import blake2b
from typing import Any

from durable._asyncio_private import our_running_loop, run_as_ours, run_ready
from durable._encoding import PlainPacker
from durable._storage._frames import encode_frame_v2


def _switch(steps: int) -> float:
    loop = asyncio.new_event_loop()  # (stands for the workflow's: it is made running)
    hooks = (lambda _: None, lambda _: None)
    started = time.process_time()
    for _ in range(steps):
        previous_hooks = sys.get_asyncgen_hooks()
        previous = run_as_ours(loop)
        sys.set_asyncgen_hooks(*hooks)
        sys.set_asyncgen_hooks(*previous_hooks)
        run_as_ours(previous, None)
    elapsed = time.process_time() - started
    loop.close()
    assert our_running_loop() is None
    return elapsed


class _Loop(asyncio.AbstractEventLoop):
    """The least loop a Task runs on: a ready queue, stepped by run_ready."""

    def __init__(self) -> None:
        self.queue: collections.deque[asyncio.Handle] = collections.deque()

    get_debug = staticmethod(bool)

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:  # type: ignore[override]
        handle = asyncio.Handle(callback, args, self, context)
        self.queue.append(handle)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)


def _wake(steps: int) -> float:
    loop = _Loop()  # type: ignore[abstract]
    waiting: list[asyncio.Future[int]] = []

    async def workflow() -> None:
        while True:
            future = loop.create_future()
            waiting.append(future)
            await future

    task = asyncio.Task(workflow(), loop=loop)
    run_ready(loop.queue)
    started = time.process_time()
    for index in range(steps):
        waiting.pop().set_result(index)
        run_ready(loop.queue)
    elapsed = time.process_time() - started
    task.cancel()
    run_ready(loop.queue)
    return elapsed


def _activity(steps: int) -> float:
    async def step(index: int) -> int:
        return index

    started = time.process_time()
    for index in range(steps):
        try:  # noqa: SIM105 (as the engine takes a return; no context manager timed)
            step(index).send(None)
        except StopIteration:
            pass
    return time.process_time() - started


def _record(steps: int) -> float:
    pack = PlainPacker().pack
    site = {"w": 1}
    started = time.process_time()
    for index in range(steps):
        encoded = pack([[index], {}])
        assert encoded is not None
        digest = blake2b(encoded, digest_size=8).hexdigest()
        record = {"k": "done", "s": index, "a": "step", "d": digest, "n": 1, "r": index}
        record["b"] = record["t"] = 1.5e9
        record.update(site)
        pack(record)
    return time.process_time() - started


def _frame(steps: int) -> float:
    payload = PlainPacker().pack({"k": "done", "s": 1, "a": "step", "d": "0" * 16, "n": 1}) or b""
    started = time.process_time()
    for index in range(steps):
        encode_frame_v2(payload, index, 12345, 678)
    return time.process_time() - started


def _write(steps: int) -> float:
    frame = b"x" * 60
    with tempfile.TemporaryDirectory() as directory:
        fd = os.open(os.path.join(directory, "f"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            started = time.process_time()
            for _ in range(steps):
                os.write(fd, frame)
            return time.process_time() - started
        finally:
            os.close(fd)


PARTS: dict[str, Callable[[int], float]] = {
    "switch": _switch,
    "wake": _wake,
    "activity": _activity,
    "record": _record,
    "frame": _frame,
    "write": _write,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), help="(for callgrind)")
    options = parser.parse_args()
    total = 0.0
    for name, part in PARTS.items():
        if options.only and name not in options.only:
            continue
        times = [part(options.steps) / options.steps * 1e6 for _ in range(options.runs)]
        median = statistics.median(times)
        total += median
        print(f"{name:9} {median:6.2f} us  (min {min(times):.2f})")
    print(f"{'sum':9} {total:6.2f} us")


if __name__ == "__main__":
    main()
