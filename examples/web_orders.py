"""An order service: a Starlette app that runs durable workflows, and survives SIGKILL.

    pip install "aiodurable[ui]"
    python examples/web_orders.py 8000          # or: uvicorn web_orders:app

    curl -X POST localhost:8000/orders -d '{"customer": "ada", "items": {"book": 2}}'
    curl localhost:8000/orders/<id>
    curl -X POST localhost:8000/orders/<id>/events/approved -d '"warehouse 7"'
    curl -N localhost:8000/orders/<id>/stream    # its progress, as server-sent events

The order workflow charges the card, waits (durably, up to a day) for the warehouse's
approval, packs each item (an activity that reports its progress as it goes) and ships.
Journals live in $DURABLE_DIR (default ./.durable). Kill the server at any point and start
it again: durable.web.lifespan resumes every unfinished order at start-up; steps already
journaled are not run again, so the card is charged once and the parcel shipped once. A
reader of the stream that reconnects (an EventSource sends Last-Event-ID) resumes exactly.
Works as well with FastAPI: `FastAPI(lifespan=lifespan(...))`, the same handlers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import durable
from durable.web import event_stream, lifespan

PROGRESS = durable.Stream("progress", str)  # what the customer's page shows, live
EVENTS = frozenset({"approved"})  # what order_flow waits for
KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # an Idempotency-Key (part of the order's id)
PACK_SECONDS = float(os.environ.get("WEB_ORDERS_PACK_SECONDS", "0.2"))  # per item


def provider(event: str) -> None:
    """The outside world (a payment API, a carrier): a ledger file, if $WEB_ORDERS_LEDGER."""
    if ledger := os.environ.get("WEB_ORDERS_LEDGER"):
        with open(ledger, "a") as out:
            out.write(f"{os.getpid()} {event}\n")


@durable.activity(retry=durable.RetryPolicy(maximum_attempts=5))
async def charge(customer: str, amount_cents: int) -> str:
    """Charge the card."""
    key = durable.activity_info().idempotency_key  # the provider charges once per key
    provider(f"charge {customer} {amount_cents} key={key}")
    return f"pay-{key}"


@durable.activity
async def pack(items: dict[str, int]) -> int:
    """Pack the parcel, reporting each item as it is done (a rerun reports again)."""
    packed = 0
    for sku, quantity in items.items():
        await asyncio.sleep(PACK_SECONDS)
        packed += quantity
        PROGRESS.append(f"packed {quantity} x {sku}")
    return packed


@durable.activity
async def ship(customer: str, parcels: int) -> str:
    """Book the carrier."""
    key = durable.activity_info().idempotency_key
    provider(f"ship {customer} {parcels} key={key}")
    return f"track-{key}"


@durable.workflow
async def order_flow(customer: str, items: dict[str, int]) -> str:
    """One order, from the charge to the shipment; its progress in PROGRESS."""
    PROGRESS.append("received")
    payment = await charge(customer, 500 * sum(items.values()))
    PROGRESS.append(f"charged ({payment})")
    durable.set_status("waiting for the warehouse")
    warehouse = await durable.wait_for_event("approved", timeout="1 day")
    PROGRESS.append(f"approved by {warehouse}")
    durable.set_status("packing")
    parcels = await pack(items)
    tracking = await ship(customer, parcels)
    PROGRESS.append(f"shipped: {tracking}")
    durable.set_status(f"shipped: {tracking}")
    return tracking


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _order(body: Any) -> tuple[str, dict[str, int]] | str:
    """The order a caller sent, checked (what is wrong with it, as text, if not)."""
    if not isinstance(body, dict):
        return "the body is a JSON object: {customer, items}"
    customer, items = body.get("customer"), body.get("items")
    if not isinstance(customer, str) or not 0 < len(customer) <= 100:
        return "customer: a name of 1 to 100 characters"
    if (
        not isinstance(items, dict)
        or not 0 < len(items) <= 100
        or not all(isinstance(sku, str) and len(sku) <= 100 for sku in items)
        or not all(type(n) is int and 0 < n <= 1000 for n in items.values())
    ):
        return "items: {sku: quantity}, 1 to 100 of them, each quantity 1 to 1000"
    return customer, items


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > 64 * 1024:
        raise ValueError("the body is larger than 64 KiB")
    return json.loads(body) if body else None


async def create_order(request: Request) -> Response:
    """POST /orders: start an order workflow; its id."""
    try:
        order = _order(await _json(request))
    except ValueError as error:
        return _problem(400, f"not JSON: {error}")
    if isinstance(order, str):
        return _problem(422, order)
    # An Idempotency-Key makes a retried POST join the first one's order (the same order:
    # durable compares the arguments, and refuses another order under a used key).
    key = request.headers.get("idempotency-key") or uuid.uuid4().hex[:16]
    if not KEY.fullmatch(key):
        return _problem(400, "Idempotency-Key: 1 to 64 letters, digits, '-' or '_'")
    runtime: durable.Runtime = request.state.durable
    try:
        handle = await runtime.start(order_flow, *order, id=f"order-{key}")
    except durable.WorkflowIdInUse:
        return _problem(409, f"Idempotency-Key {key!r} was used for another order")
    return JSONResponse({"id": handle.id}, status_code=201)


async def describe_order(request: Request) -> Response:
    """GET /orders/{id}: where the order stands (from its journal)."""
    runtime: durable.Runtime = request.state.durable
    try:
        described = await runtime.describe(request.path_params["id"])
    except durable.WorkflowNotFound:
        return _problem(404, "no such order")
    except durable.InvalidWorkflowId as error:
        return _problem(400, str(error))
    return JSONResponse(
        {
            "id": described.workflow_id,
            "state": described.state.value,
            "status": described.status,
            "waiting_for": described.waiting_for,
            "error": described.error,
        }
    )


async def send_event(request: Request) -> Response:
    """POST /orders/{id}/events/{name}: send the order an event (the JSON body its payload)."""
    runtime: durable.Runtime = request.state.durable
    if request.path_params["name"] not in EVENTS:  # (anything else would wait in the inbox)
        return _problem(404, f"an order takes the events {sorted(EVENTS)}")
    try:
        payload = await _json(request)
    except ValueError as error:
        return _problem(400, f"not JSON: {error}")
    try:
        await runtime.send_event(request.path_params["id"], request.path_params["name"], payload)
    except durable.WorkflowNotFound:
        return _problem(404, "no such order")
    except (durable.WorkflowFinished, durable.InboxFull, durable.MessageTooLarge) as error:
        status = {durable.WorkflowFinished: 409, durable.InboxFull: 429}.get(type(error), 413)
        return _problem(status, str(error))
    except (durable.InvalidWorkflowId, ValueError) as error:
        return _problem(400, str(error))
    return Response(status_code=202)


async def order_stream(request: Request) -> Response:
    """GET /orders/{id}/stream: the order's progress as server-sent events, live."""
    runtime: durable.Runtime = request.state.durable
    order_id = request.path_params["id"]
    if not order_id.startswith("order-"):
        return _problem(404, "no such order")
    try:
        await runtime.describe(order_id)  # (an unknown order: 404, not an empty stream)
    except durable.WorkflowNotFound:
        return _problem(404, "no such order")
    except durable.InvalidWorkflowId as error:
        return _problem(400, str(error))
    # (A Last-Event-ID that is not one of ours: 400, from event_stream.)
    response: Response = event_stream(
        runtime, order_id, PROGRESS, last_event_id=request.headers.get("last-event-id")
    )
    return response


def make_app(directory: str | None = None, **options: Any) -> Starlette:
    """The app, over journals in `directory` (default $DURABLE_DIR, else ./.durable).

    The runtime is made when the app starts (its loop), and closed when it stops.
    """

    def runtime() -> durable.Runtime:
        return durable.Runtime(directory, workflows=[order_flow], **options)

    return Starlette(
        routes=[
            Route("/orders", create_order, methods=["POST"]),
            Route("/orders/{id}", describe_order),
            Route("/orders/{id}/events/{name}", send_event, methods=["POST"]),
            Route("/orders/{id}/stream", order_stream),
        ],
        lifespan=lifespan(runtime),
    )


app = make_app()


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
