"""Many order workflows share one rate-limited card API: a queue and an activity Limit.

    python examples/rate_limited_payments.py [ORDERS]

Orders are enqueued on the "orders" queue (at most 4 orders in flight, at most 2 per
customer, VIP orders first). Every order's charge goes through one durable.Limit (the
card API allows 3 calls at once and 20 a second), shared by the `charge` and `refund`
activities of every workflow. Run it twice: the second run finds every order done (or
resumes the unfinished ones) and enqueues nothing new: an id that is queued, running or
done returns its workflow's handle.
Journals live in $DURABLE_DIR (default ./.durable).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from decimal import Decimal

import durable

orders_queue = durable.Queue(
    "orders", concurrency=4, concurrency_per_key=2, rate=durable.Rate(50, per="1 s")
)
card_api = durable.Limit("card-api", concurrency=3, rate=durable.Rate(20, per="1 s"))


@dataclass
class Order:
    """One order to charge and ship."""

    order_id: str
    customer: str
    amount: Decimal


class FakeCardApi:
    """Stands in for the payment provider; tells how many calls overlapped."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0

    async def charge(self, order: Order, key: str) -> str:
        """Charge an order (idempotent by `key`, as a real provider's)."""
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.02)
            return f"ch_{order.order_id}"
        finally:
            self.in_flight -= 1


api = FakeCardApi()


@durable.activity(limit=card_api, retry=durable.RetryPolicy(maximum_attempts=5))
async def charge(order: Order) -> str:
    """Charge through the shared card API Limit."""
    key = durable.activity_info().idempotency_key  # the same on every retry
    return await api.charge(order, key)


@durable.activity
async def ship(order: Order, charge_id: str) -> str:
    """Ship a paid order."""
    return f"shipped {order.order_id} ({charge_id})"


@durable.workflow
async def order_workflow(order: Order) -> str:
    """Charge, then ship."""
    charge_id = await charge(order)
    return await ship(order, charge_id)


async def main(count: int) -> None:
    """Enqueue `count` orders for three customers and wait for them all."""
    async with durable.Runtime(queues=[orders_queue], workflows=[order_workflow]) as runtime:
        handles = []
        for n in range(count):
            customer = f"customer-{n % 3}"
            order = Order(f"o{n}", customer, Decimal("9.99"))
            handles.append(
                await runtime.enqueue(
                    orders_queue,
                    order_workflow,
                    order,
                    key=customer,
                    priority=1 if customer == "customer-0" else 5,  # (VIPs first)
                    id=f"order-{order.order_id}",  # (enqueued once: a rerun gets its handle)
                )
            )
        waiting = await runtime.describe(handles[-1].id)
        print(f"last order: {waiting.state} {waiting.current or ''}".rstrip())
        for line in await asyncio.gather(*(handle.result() for handle in handles)):
            print(line)
    print(f"{count} orders; at most {api.peak} card API calls at once (limit 3)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 12))
