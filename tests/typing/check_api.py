"""Static typing of the public API, checked by `mypy --strict` in CI (not run by pytest).

`assert_type` pins what must infer; `# type: ignore[...]` marks calls that must be errors
(with warn_unused_ignores, a call that stopped being an error fails the check).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, assert_type

import durable
from durable import RetryPolicy


@dataclass
class Order:
    id: str
    amount: int


@durable.activity(timeout="30s", retry=RetryPolicy(maximum_attempts=3))
async def charge_payment(order: Order) -> str:
    return order.id


@durable.activity
def update_inventory(items: list[str]) -> None:
    pass


@durable.activity(name="email")
def send_email(address: str, body: str) -> bool:
    return True


@durable.workflow
async def order_workflow(order: Order) -> str:
    payment = await charge_payment(order)
    assert_type(payment, str)
    assert_type(await update_inventory(["a"]), None)
    assert_type(await send_email("a@example.com", body="hi"), bool)
    await durable.sleep("2 hours")
    assert_type(durable.now().year, int)
    assert_type(durable.random(), float)
    assert_type(durable.workflow_info().workflow_id, str)
    await charge_payment("not an order")  # type: ignore[arg-type]
    await send_email("a@example.com")  # type: ignore[call-arg]
    return payment


@durable.activity
async def refund(payment: str, cents: int) -> None:
    pass


@durable.workflow
async def parent_workflow(order: Order) -> str:
    tracking = await durable.run_child(order_workflow, order, id="child-1")
    assert_type(tracking, str)
    audit = await durable.run_child(order_workflow, order, id="audit-1", detached=True)
    assert_type(audit, str)
    await durable.run_child(order_workflow, "not an order")  # type: ignore[arg-type]
    async with durable.Saga() as saga:
        saga.add(refund, "pay-1", 100)
        saga.add(refund, "pay-1", "lots")  # type: ignore[arg-type]
    confirmation = await durable.wait_for_event("warehouse", timeout="2 hours")
    durable.set_status({"confirmation": confirmation})
    assert_type(durable.patched("v2"), bool)
    if order.amount < 0:
        durable.continue_as_new(order)
    return tracking


async def main() -> None:
    order = Order("o-1", 100)
    assert_type(await durable.run(order_workflow, order, id="order-42"), str)
    limited = await durable.run(order_workflow, order, id="o-2", execution_timeout="2 hours")
    assert_type(limited, str)
    await durable.start(order_workflow, order, execution_timeout=None)  # no limit
    await durable.run(order_workflow, order, execution_timeout=[1])  # type: ignore[arg-type]
    durable.workflow(execution_timeout=timedelta(hours=1))(order_workflow.fn)
    async with durable.Runtime("journals") as runtime:
        handle = await runtime.start(order_workflow, order)
        assert_type(handle, durable.WorkflowHandle[str])
        assert_type(await handle.result(), str)
        assert_type(await runtime.run(order_workflow, order), str)
        assert_type(await runtime.send_event("o-1", "warehouse", {"ok": True}), bool)
        described = await runtime.describe("o-1")
        assert_type(described.state, durable.WorkflowState)
        await runtime.cancel("o-1", "customer withdrew")
        resumed = await runtime.resume("o-1", by="ops", reason="fixed", request_id="r-1")
        assert_type(resumed.id, str)
        forked = await runtime.fork("o-1", at_step=2, override={1: "pay-x"}, start=False)
        assert_type(await forked.describe(), durable.WorkflowDescription)
        await runtime.restart("o-1", new_id=3)  # type: ignore[arg-type]
    await durable.run(order_workflow, "not an order")  # type: ignore[arg-type]
    await durable.run(order_workflow, order, order)  # type: ignore[arg-type]
    update_inventory.fn(["a"])  # the undecorated function, called plainly
    update_inventory.fn(3)  # type: ignore[arg-type]


payments = durable.Queue("payments", concurrency=5, rate=durable.Rate(20, per="1 s"))
card_api = durable.Limit("card-api", concurrency=2)


@durable.activity(limit=card_api)
async def limited_charge(order: Order) -> str:
    return order.id


async def queued() -> None:
    order = Order("o-3", 7)
    async with durable.Runtime("journals", queues=[payments]) as runtime:
        handle = await runtime.enqueue(payments, order_workflow, order, key=None, priority=1)
        assert_type(handle, durable.WorkflowHandle[str])
        assert_type(await handle.result(), str)
        delayed = await runtime.enqueue(payments, send_report, 3, delay="10 s", dedup_id="r-3")
        assert_type(delayed, durable.WorkflowHandle[int])
        await runtime.enqueue(payments, order_workflow, "not an order")  # type: ignore[arg-type]
        await runtime.enqueue(payments, order_workflow, order, order)  # type: ignore[arg-type]
        await runtime.enqueue(payments, order_workflow, order, priority="high")  # type: ignore[arg-type]
        await runtime.enqueue(order_workflow, order)  # type: ignore[arg-type]
    default = await durable.enqueue(payments, order_workflow, order, id="o-3")
    assert_type(default, durable.WorkflowHandle[str])
    assert_type(await default.result(), str)
    await durable.enqueue(payments, send_report, "three")  # type: ignore[arg-type]
    await durable.enqueue(payments, order_workflow, order, on_duplicate="ignore")  # type: ignore[arg-type]


@durable.workflow
async def send_report(count: int) -> int:
    return count


TOKENS = durable.Stream("tokens", str)
ANYTHING = durable.Stream("anything")
assert_type(TOKENS, durable.Stream[str])
assert_type(ANYTHING, durable.Stream[Any])


async def streams() -> None:
    TOKENS.append("a token")
    TOKENS.append(3)  # type: ignore[arg-type]
    ANYTHING.append({"any": ["value"]})
    async with durable.Runtime("journals") as runtime:
        async for item in runtime.read_stream("chat-1", TOKENS, 5):
            assert_type(item, durable.StreamItem[str])
            assert_type(item.value, str)
            assert_type(item.offset, int)
            assert_type(item.attempt, int | None)
        async for named in runtime.read_stream("chat-1", "tokens"):
            assert_type(named, durable.StreamItem[Any])
        runtime.read_stream("chat-1", TOKENS, "5")  # type: ignore[call-overload]
