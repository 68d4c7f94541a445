"""A subscription billed every period, for months: continue_as_new keeps its journal small.

    python examples/subscription_billing.py [PERIODS]

Each period the workflow waits for the period to end (a durable sleep; "30 days" in real
life, a fraction of a second here), bills the usage reported to it as events, and starts
its next generation with continue_as_new: same id, a fresh journal, the running total as the
new arguments. Usage events sent while it sleeps wait in its inbox for the next bill.
Journals live in $DURABLE_DIR (default ./.durable).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

import durable

PERIOD = "0.2 s"  # "30 days" in production; durable.sleep takes either


@dataclass
class Account:
    """Who pays, and what was billed so far."""

    customer: str
    billed_cents: int = 0
    period: int = 0


@durable.activity
async def bill(customer: str, period: int, cents: int) -> str:
    """Charge the period's usage (a payment API call in real life)."""
    key = durable.activity_info().idempotency_key
    print(f"  period {period}: billed {customer} {cents / 100:.2f} EUR (key {key})", flush=True)
    return f"invoice-{period}"


@durable.workflow
async def subscription(account: Account, periods: int) -> Account:
    """One period per generation; the generation number is the period."""
    await durable.sleep(PERIOD)
    usage = 0
    while True:  # take every usage event that arrived during the period
        try:
            usage += await durable.wait_for_event("usage", timeout="0.01 s")
        except durable.EventTimeout:
            break
    await bill(account.customer, account.period, 500 + usage)
    account = Account(account.customer, account.billed_cents + 500 + usage, account.period + 1)
    durable.set_status(f"{account.period} periods billed")
    if account.period < periods:
        durable.continue_as_new(account, periods)
    return account


async def main(periods: int) -> None:
    """Start a subscription, report some usage, wait for the last bill."""
    workflow_id = f"subscription-{int(time.time() * 1000)}"
    async with durable.Runtime() as runtime:
        handle = await runtime.start(
            subscription, Account("ada@example.com"), periods, id=workflow_id
        )
        await runtime.send_event(workflow_id, "usage", 120)  # metered usage, as it happens
        await runtime.send_event(workflow_id, "usage", 80)
        final = await handle.result()
        described = await runtime.describe(workflow_id)
    print(f"billed {final.billed_cents / 100:.2f} EUR over {final.period} periods")
    print(f"generation {described.generation}, status {described.status!r}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4))
