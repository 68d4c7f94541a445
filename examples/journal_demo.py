"""The journal survives SIGKILL: write, kill, reopen, resume.

    python examples/journal_demo.py

A child process records the order flow's steps in a journal (in $DURABLE_DIR, default
./.durable), printing each step once it is durable. The parent kills it with SIGKILL
mid-flow, reopens the journal as a restarted runner would, shows what survived, and
finishes the flow without redoing any recorded step. (The workflow engine that will drive
this from plain `async def` code is the next milestone; this demo drives the journal itself.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack

from durable import JournalDirectory

STEPS = [
    ("charge_payment", "pay_8f2c"),
    ("update_inventory", "reserved 2 items"),
    ("sleep", "2 hours (3 s in this demo)"),
    ("create_shipment", "track_1Z999"),
    ("send_email", "sent to ada@example.com"),
]
JOURNAL = "journal-demo"
KILL_AFTER = 2


def directory() -> Path:
    """Where durable keeps journals by default: $DURABLE_DIR, else ./.durable."""
    return Path(os.environ.get("DURABLE_DIR", ".durable"))


async def run_steps(label: str) -> None:
    """Open (recovering), skip what is recorded, do and record the rest."""
    async with JournalDirectory(directory()) as store:
        journal = await store.open(JOURNAL)
        done = [msgpack.unpackb(record.payload) for record in journal.records]
        for step, result in done:
            print(f"  [{label}] {step:<17} replayed from the journal -> {result}", flush=True)
        for step, result in STEPS[len(done) :]:
            await asyncio.sleep(3 if step == "sleep" else 0.4)  # the side effect happens here
            await journal.append(msgpack.packb([step, result]))
            print(f"  [{label}] {step:<17} ran, and is durable  -> {result}", flush=True)
        await journal.close()


def main() -> None:
    """Run the flow in a child, kill it, resume it here."""
    path = directory() / f"{JOURNAL}.journal"
    if path.exists():
        path.unlink()  # this demo's own journal from an earlier run
    print(f"durable journal demo: {path}\n")
    print(f"1. a runner starts the order flow; it will be SIGKILLed after {KILL_AFTER} steps")
    with subprocess.Popen(
        [sys.executable, __file__, "--child"], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        for _ in range(KILL_AFTER):
            print(child.stdout.readline(), end="", flush=True)
        time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    print(f"\n2. SIGKILL (exit status {child.returncode}): the process is gone mid-flow")
    print("\n3. a new runner reopens the journal and resumes")
    asyncio.run(run_steps("resumed"))

    async def count_charges() -> int:
        async with JournalDirectory(directory()) as store:
            records = await store.read(JOURNAL)
        return sum(msgpack.unpackb(record.payload)[0] == "charge_payment" for record in records)

    charges = asyncio.run(count_charges())
    print(f"\n4. the journal holds all {len(STEPS)} steps; charge_payment recorded {charges}x")
    print("charged once" if charges == 1 else f"charged {charges} times: a bug")
    sys.exit(0 if charges == 1 else 1)


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        asyncio.run(run_steps("first run"))
    else:
        main()
