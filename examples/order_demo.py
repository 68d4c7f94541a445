"""The seed's order workflow survives SIGKILL: charged once, however often it is killed.

    python examples/order_demo.py

A child process runs `order_workflow` (charge, reserve stock, wait up to 2 hours for the
warehouse, ship, email) with journals in $DURABLE_DIR (default ./.durable). The parent kills
it with SIGKILL while it waits; a second process sends the warehouse's confirmation (the
workflow is not running anywhere: the event waits in its inbox); then the same call resumes
it: steps recorded before the kill are replayed from the journal, not run again; the event
is taken; the rest runs. A "payment provider" ledger (a file) proves the card was charged
once. Last, an order whose shipment fails: the saga refunds the payment.
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

WAREHOUSE_TIMEOUT = "2 hours"  # a durable timer: a restart does not extend it


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


class CarrierRefused(Exception):
    """The carrier will not take this parcel (not worth retrying)."""


@durable.activity(retry=RetryPolicy(maximum_attempts=3, non_retryable_errors=[CarrierRefused]))
async def create_shipment(order: Order, payment_id: str) -> str:
    """Book the carrier."""
    if any(item.sku == "piano" for item in order.items):
        provider(f"create_shipment  refused for {payment_id}: too heavy")
        raise CarrierRefused("the carrier does not take pianos")
    provider(f"create_shipment  for {payment_id}")
    return f"track_{order.id}"


@durable.activity
async def refund_payment(payment_id: str) -> None:
    """Undo the charge (a compensation)."""
    provider(f"refund_payment   {payment_id}")


@durable.activity
async def send_email(customer: str, tracking: str) -> None:
    """Tell the customer."""
    provider(f"send_email       to {customer}: shipped, tracking {tracking}")


@durable.workflow
async def order_workflow(order: Order) -> str:
    """The seed's flow, as straight-line code; a failed shipment refunds the payment."""
    async with durable.Saga() as saga:
        payment_id = await charge_payment(order)
        saga.add(refund_payment, payment_id)
        await update_inventory(order.items)
        durable.set_status("waiting for the warehouse")
        confirmation = await durable.wait_for_event(
            "warehouse-confirmed", timeout=WAREHOUSE_TIMEOUT
        )
        durable.set_status(f"packed by {confirmation['packer']}")
        tracking = await create_shipment(order, payment_id)
    await send_email(order.customer, tracking)
    return tracking


async def child(order_id: str) -> None:
    """One process's attempt: run (or resume) the workflow on the default directory."""
    order = Order(order_id, "ada@example.com", 4200, [Item("book", 2), Item("pen", 1)])
    tracking = await durable.run(order_workflow, order, id=order_id)
    print(f"  result   {tracking}", flush=True)


async def warehouse(order_id: str) -> None:
    """Another process: the warehouse confirms; the event waits in the workflow's inbox."""
    async with durable.Runtime() as runtime:
        await runtime.send_event(order_id, "warehouse-confirmed", {"packer": "Grace"})
        described = await runtime.describe(order_id)
    print(f"  sent     warehouse-confirmed (the workflow is {described.state}: {described.status})")


async def failing_order(order_id: str) -> None:
    """An order the carrier refuses: the saga refunds the payment, the workflow fails."""
    order = Order(order_id, "alan@example.com", 99900, [Item("piano", 1)])
    async with durable.Runtime() as runtime:
        handle = await runtime.start(order_workflow, order, id=order_id)
        while (await runtime.describe(order_id)).waiting_for is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # (polling the journal, as the CLI would)
        await runtime.send_event(order_id, "warehouse-confirmed", {"packer": "Linus"})
        try:
            await handle.result()
        except durable.WorkflowFailed as failed:
            print(f"  failed   {failed.error_type}: {failed.message}", flush=True)


def ledger_lines(ledger: Path) -> list[str]:
    """What the provider has seen so far."""
    return ledger.read_text().splitlines() if ledger.exists() else []


def main() -> None:
    """Run, kill while it waits, send the event from elsewhere, resume; then a refund."""
    if len(sys.argv) == 3 and sys.argv[1] in ("--child", "--warehouse"):
        asyncio.run((child if sys.argv[1] == "--child" else warehouse)(sys.argv[2]))
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
                sys.exit("the workflow process ended before it reached the wait")
            time.sleep(0.05)
        time.sleep(0.5)  # well into the wait for the warehouse
        first.send_signal(signal.SIGKILL)
        first.wait()
        print(f"  SIGKILL  while waiting for the warehouse (exit status {first.returncode})")
        print("warehouse: another process confirms the order", flush=True)
        subprocess.run([sys.executable, __file__, "--warehouse", order_id], env=env, check=True)
        before = ledger_lines(ledger)
        print("run 2: the same call again resumes from the journal")
        for line in before:
            step = line.split()[1]
            print(f"  replayed {step:<16} recorded result from the journal, not run again")
        print("  taking   the warehouse event from the inbox", flush=True)
        subprocess.run(command, env=env, check=True)
        charges = [line for line in ledger_lines(ledger) if " charge_payment " in line]
        print(f"payment provider ledger: {len(charges)} charge for {order_id}")
        if len(charges) != 1:
            sys.exit("charged more than once!")
        print("charged once")
        print("a second order, which the carrier refuses:", flush=True)
        os.environ["DEMO_LEDGER"] = str(ledger)
        asyncio.run(failing_order(f"{order_id}-piano"))
        refunds = [line for line in ledger_lines(ledger) if " refund_payment " in line]
    if len(refunds) != 1:
        sys.exit("the refused order was not refunded exactly once!")
    print("refunded once")


if __name__ == "__main__":
    main()
