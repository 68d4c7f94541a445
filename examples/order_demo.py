"""The seed's order workflow survives SIGKILL: charged once, however often it is killed.

    python examples/order_demo.py

A child process runs `order_workflow` (charge, reserve stock, sleep, ship, email) with
journals in $DURABLE_DIR (default ./.durable). The parent kills it with SIGKILL during the
sleep, starts it again, and prints the timeline: steps recorded before the kill are
replayed from the journal, not run again; the sleep wakes at its original time; the rest
runs. A "payment provider" ledger (a file) proves the card was charged once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import durable
from durable import RetryPolicy

SLEEP = "3s"  # the real flow sleeps "2 hours"; durable.sleep takes either


@dataclass
class Item:
    """A line of the order."""

    sku: str
    quantity: int


@dataclass
class Order:
    """What the customer bought; journaled as the workflow's argument."""

    id: str
    customer: str
    amount_cents: int
    items: list[Item] = field(default_factory=list)


def provider(event: str) -> None:
    """The outside world: an append-only ledger the parent reads (a stand-in for Stripe...)."""
    with open(os.environ["DEMO_LEDGER"], "a") as ledger:
        ledger.write(f"{os.getpid()} {event}\n")
    print(f"  ran      {event}", flush=True)


@durable.activity(timeout="30s", retry=RetryPolicy(maximum_attempts=3))
async def charge_payment(order: Order) -> str:
    """Charge the card once: the provider deduplicates by the idempotency key."""
    key = durable.activity_info().idempotency_key  # stable across retries and crashes
    provider(f"charge_payment   {order.amount_cents / 100:.2f} EUR, idempotency key {key}")
    return f"pay_{order.id}"


@durable.activity
def update_inventory(items: list[Item]) -> None:
    """Reserve stock (a sync activity: it runs in a worker thread)."""
    provider("update_inventory " + ", ".join(f"{i.quantity} x {i.sku}" for i in items))


@durable.activity
async def create_shipment(order: Order, payment_id: str) -> str:
    """Book the carrier."""
    provider(f"create_shipment  for {payment_id}")
    return f"track_{order.id}"


@durable.activity
async def send_email(customer: str, tracking: str) -> None:
    """Tell the customer."""
    provider(f"send_email       to {customer}: shipped, tracking {tracking}")


@durable.workflow
async def order_workflow(order: Order) -> str:
    """The seed's flow, as straight-line code."""
    payment_id = await charge_payment(order)
    await update_inventory(order.items)
    await durable.sleep(SLEEP)  # durable timer: a restart wakes at the original time
    tracking = await create_shipment(order, payment_id)
    await send_email(order.customer, tracking)
    return tracking


async def child(order_id: str) -> None:
    """One process's attempt: run (or resume) the workflow on the default directory."""
    order = Order(order_id, "ada@example.com", 4200, [Item("book", 2), Item("pen", 1)])
    tracking = await durable.run(order_workflow, order, id=order_id)
    print(f"  result   {tracking}", flush=True)


def ledger_lines(ledger: Path) -> list[str]:
    """What the provider has seen so far."""
    return ledger.read_text().splitlines() if ledger.exists() else []


def main() -> None:
    """Run, kill mid-sleep, resume, and check the ledger."""
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2]))
        return
    directory = Path(os.environ.get("DURABLE_DIR") or ".durable")
    order_id = f"order-{int(time.time() * 1000)}"
    with tempfile.TemporaryDirectory() as scratch:
        ledger = Path(scratch) / "provider.log"
        env = {**os.environ, "DEMO_LEDGER": str(ledger)}
        command = [sys.executable, __file__, "--child", order_id]
        print(f"run 1: {order_id}, journal {directory / order_id}.journal", flush=True)
        first = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 30
        while not any("update_inventory" in line for line in ledger_lines(ledger)):
            if first.poll() is not None or time.monotonic() > deadline:
                sys.exit("the workflow process ended before it reached the sleep")
            time.sleep(0.05)
        time.sleep(0.5)  # well into the sleep
        first.send_signal(signal.SIGKILL)
        first.wait()
        print(f"  SIGKILL  during the {SLEEP} sleep (exit status {first.returncode})")
        before = ledger_lines(ledger)
        print("run 2: the same call again resumes from the journal")
        for line in before:
            step = line.split()[1]
            print(f"  replayed {step:<16} recorded result from the journal, not run again")
        print("  waking   at the original time of the sleep", flush=True)
        subprocess.run(command, env=env, check=True)
        charges = [line for line in ledger_lines(ledger) if " charge_payment " in line]
    print(f"payment provider ledger: {len(charges)} charge for {order_id}")
    if len(charges) != 1:
        sys.exit("charged more than once!")
    print("charged once")


if __name__ == "__main__":
    main()
