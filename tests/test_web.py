"""durable.web: the lifespan helper (open, recover, serve, close) and server-sent events;
and the example order service (examples/web_orders.py) through an ASGI client."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

import durable
from durable.web import event_stream, lifespan

ROOT = Path(__file__).resolve().parent.parent
STEPS = durable.Stream("steps", int)


@durable.workflow
async def counter(count: int) -> int:
    for step in range(count):
        STEPS.append(step)
        await durable.wait_for_event("next")
    return count


async def started(request: Request) -> Response:
    runtime: durable.Runtime = request.state.durable
    handle = await runtime.start(
        counter, int(request.query_params["n"]), id=request.path_params["id"]
    )
    return JSONResponse({"id": handle.id})


async def nudge(request: Request) -> Response:
    await request.state.durable.send_event(request.path_params["id"], "next")
    return Response(status_code=202)


async def described(request: Request) -> Response:
    runtime: durable.Runtime = request.state.durable
    try:
        state = (await runtime.describe(request.path_params["id"])).state.value
    except durable.WorkflowNotFound:
        return JSONResponse({"state": None}, status_code=404)
    return JSONResponse({"state": state})


async def steps(request: Request) -> Response:
    response: Response = event_stream(
        request.state.durable,
        request.path_params["id"],
        STEPS,
        last_event_id=request.headers.get("last-event-id"),
    )
    return response


def app_on(directory: Path, **options: Any) -> Starlette:
    return Starlette(
        routes=[
            Route("/{id}", started, methods=["POST"]),
            Route("/{id}", described),
            Route("/{id}/next", nudge, methods=["POST"]),
            Route("/{id}/steps", steps),
        ],
        lifespan=lifespan(lambda: durable.Runtime(directory, workflows=[counter]), **options),
    )


def wait_for_state(client: TestClient, path: str, state: str) -> None:
    deadline = time.monotonic() + 20
    while client.get(path).json().get("state") != state:
        assert time.monotonic() < deadline, f"{path} never reached {state!r}"
        time.sleep(0.02)


def events_of(body: str) -> list[dict[str, str]]:
    found = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append(fields)
    return found


def test_the_lifespan_opens_recovers_and_closes_the_runtime(tmp_path: Path) -> None:
    with TestClient(app_on(tmp_path)) as client:
        assert client.post("/c?n=2").json() == {"id": "c"}
        wait_for_state(client, "/c", "waiting for event")
    # The app stopped (the runtime closed, the workflow left unfinished in its journal);
    # a new app's lifespan resumes it at start-up, before any request names it.
    with TestClient(app_on(tmp_path)) as client:
        runtime = client.app_state["durable"]
        assert "c" in runtime._running  # (recovered: running here again)
        client.post("/c/next")
        client.post("/c/next")
        wait_for_state(client, "/c", "completed")
        body = client.get("/c/steps").text
    assert events_of(body) == [
        {"id": "0", "data": "0"},
        {"id": "1", "data": "1"},
        {"event": "end", "data": "{}"},
    ]
    assert runtime._closing  # closed at shutdown


def test_server_sent_events_resume_after_the_last_event_id(tmp_path: Path) -> None:
    with TestClient(app_on(tmp_path, recover=False)) as client:
        client.post("/r?n=3")
        for _ in range(3):
            client.post("/r/next")
        wait_for_state(client, "/r", "completed")
        body = client.get("/r/steps", headers={"Last-Event-ID": "1"}).text
        assert events_of(body) == [{"id": "2", "data": "2"}, {"event": "end", "data": "{}"}]
        unknown = events_of(client.get("/nobody/steps").text)
    assert unknown[0]["event"] == "error"
    assert "no workflow 'nobody'" in json.loads(unknown[0]["data"])


def test_serve_runs_while_the_app_runs_and_stops_with_it(tmp_path: Path) -> None:
    with TestClient(app_on(tmp_path, recover=False)) as client:
        client.post("/s?n=1")
        wait_for_state(client, "/s", "waiting for event")
    with TestClient(app_on(tmp_path, recover=False, serve=True)) as client:
        runtime = client.app_state["durable"]
        deadline = time.monotonic() + 20
        while "s" not in runtime._running:  # (serve() found the unfinished journal)
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client.post("/s/next")
        wait_for_state(client, "/s", "completed")
    assert runtime._closing


# --- the example order service -------------------------------------------------------


@pytest.fixture
def orders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Path]]:
    monkeypatch.setenv("DURABLE_DIR", str(tmp_path / "journals"))
    monkeypatch.setenv("WEB_ORDERS_LEDGER", str(tmp_path / "ledger"))
    monkeypatch.setenv("WEB_ORDERS_PACK_SECONDS", "0")
    spec = importlib.util.spec_from_file_location("web_orders", ROOT / "examples" / "web_orders.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["web_orders"] = module
    spec.loader.exec_module(module)
    yield module, tmp_path
    del sys.modules["web_orders"]


def test_the_order_service_takes_an_order_to_the_end(orders: tuple[ModuleType, Path]) -> None:
    module, tmp_path = orders
    with TestClient(module.make_app()) as client:
        created = client.post("/orders", json={"customer": "ada", "items": {"book": 2, "pen": 1}})
        assert created.status_code == 201
        order = created.json()["id"]
        wait_for_state(client, f"/orders/{order}", "waiting for event")
        assert client.get(f"/orders/{order}").json()["waiting_for"] == "approved"
        assert (
            client.post(f"/orders/{order}/events/approved", json="warehouse 7").status_code == 202
        )
        wait_for_state(client, f"/orders/{order}", "completed")
        assert client.get(f"/orders/{order}").json()["status"].startswith("shipped: track-")
        progress = [
            event.get("data") for event in events_of(client.get(f"/orders/{order}/stream").text)
        ]
        assert progress[0] == '"received"'
        assert progress[3:5] == ['"packed 2 x book"', '"packed 1 x pen"']
        assert progress[-1] == "{}"
        # An Idempotency-Key makes a retried POST the same order.
        again = [
            client.post(
                "/orders",
                json={"customer": "bob", "items": {"a": 1}},
                headers={"Idempotency-Key": "k1"},
            )
            for _ in range(2)
        ]
        assert again[0].json() == again[1].json() == {"id": "order-k1"}
    ledger = (tmp_path / "ledger").read_text().splitlines()
    assert sum(" charge ada " in line for line in ledger) == 1
    assert sum(" ship ada " in line for line in ledger) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/orders", b"{not json", 400),
        ("POST", "/orders", b'{"customer": "", "items": {"a": 1}}', 422),
        ("POST", "/orders", b'{"customer": "ada", "items": {"a": -1}}', 422),
        ("POST", "/orders", b'["ada"]', 422),
        ("POST", "/orders", b"x" * (65 * 1024), 400),
        ("GET", "/orders/order-nobody", b"", 404),
        ("GET", "/orders/.hidden", b"", 400),
        ("POST", "/orders/.hidden/events/approved", b"", 400),
        ("POST", "/orders/order-nobody/events/approved", b"1", 404),
        ("POST", "/orders/order-nobody/events/approved", b"{bad", 400),
        ("GET", "/orders/other/stream", b"", 404),
        ("POST", "/orders/order-x/events/a%00b", b"1", 404),
        ("POST", "/orders/order-x/events/" + "e" * 5000, b"1", 404),
    ],
)
def test_the_order_service_refuses_bad_requests_clearly(
    orders: tuple[ModuleType, Path], method: str, path: str, body: bytes, status: int
) -> None:
    module, _ = orders
    with TestClient(module.make_app()) as client:
        answer = client.request(method, path, content=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]


# --- hostile clients ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_event_id", ["-1", "abc", "1e3", "9" * 5000, "\u00b2", "\u0661", "0x10", "1" * 30, "5\x00"]
)
def test_a_hostile_last_event_id_is_refused_with_400(tmp_path: Path, last_event_id: str) -> None:
    with TestClient(app_on(tmp_path, recover=False)) as client:
        client.post("/h?n=1")
        client.post("/h/next")
        wait_for_state(client, "/h", "completed")
        answer = client.get("/h/steps", headers={b"Last-Event-ID": last_event_id.encode()})
    assert answer.status_code == 400, answer.text
    assert "Last-Event-ID" in answer.text


def test_an_empty_or_padded_last_event_id_is_taken(tmp_path: Path) -> None:
    with TestClient(app_on(tmp_path, recover=False)) as client:
        client.post("/p?n=2")
        client.post("/p/next")
        client.post("/p/next")
        wait_for_state(client, "/p", "completed")
        padded = client.get("/p/steps", headers={"Last-Event-ID": " 0 "}).text
        empty = client.get("/p/steps", headers={"Last-Event-ID": ""}).text
    assert [event.get("id") for event in events_of(padded)] == ["1", None]
    assert [event.get("id") for event in events_of(empty)] == ["0", "1", None]


@pytest.mark.anyio
async def test_a_client_that_disconnects_stops_its_reader(tmp_path: Path) -> None:
    import asyncio  # noqa: PLC0415

    app = app_on(tmp_path, recover=False)
    async with lifespan_of(app) as state:
        runtime: durable.Runtime = state["durable"]
        await runtime.start(counter, 5, id="d")  # (it waits: the stream stays open)
        sent: list[MutableMapping[str, Any]] = []
        first_event = asyncio.Event()
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)
            if message.get("body"):
                first_event.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "path": "/d/steps",
            "raw_path": b"/d/steps",
            "query_string": b"",
            "headers": [],
            "state": state,
        }
        serving = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.wait_for(first_event.wait(), 10)
        assert runtime._stream_news._readers  # (a reader waits for the next value)
        gone.set()  # the browser tab closed
        await asyncio.wait_for(serving, 10)  # the response ends...
        assert not runtime._stream_news._readers  # ... and its reader let go
        tasks = {task for task in asyncio.all_tasks() if "steps" in repr(task.get_coro())}
        assert not tasks


def lifespan_of(app: Starlette) -> Any:
    import contextlib  # noqa: PLC0415

    @contextlib.asynccontextmanager
    async def opened() -> Any:
        async with app.router.lifespan_context(app) as state:
            yield state

    return opened()


def test_the_order_service_refuses_a_reused_idempotency_key_with_another_order(
    orders: tuple[ModuleType, Path],
) -> None:
    module, _ = orders
    with TestClient(module.make_app()) as client:
        first = client.post(
            "/orders", json={"customer": "ada", "items": {"a": 1}}, headers={"Idempotency-Key": "k"}
        )
        assert first.status_code == 201
        same = client.post(
            "/orders", json={"customer": "ada", "items": {"a": 1}}, headers={"Idempotency-Key": "k"}
        )
        assert same.status_code in (200, 201)
        assert same.json() == first.json()
        other = client.post(
            "/orders", json={"customer": "eve", "items": {"a": 9}}, headers={"Idempotency-Key": "k"}
        )
        assert other.status_code in (409, 422), other.text
        assert "Idempotency-Key" in other.json()["error"]
        for hostile in ("../etc", "x" * 300, "a/b", ".."):
            answer = client.post(
                "/orders",
                json={"customer": "ada", "items": {"a": 1}},
                headers={"Idempotency-Key": hostile},
            )
            assert answer.status_code == 400, (hostile, answer.text)
            assert "Idempotency-Key" in answer.json()["error"]
        unknown = client.get("/orders/order-nobody/stream")
        assert unknown.status_code == 404
        assert client.get(
            "/orders/order-nobody/stream", headers={"Last-Event-ID": "x"}
        ).status_code in (400, 404)
