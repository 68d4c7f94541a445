"""The web UI's routes: static pages, a JSON API over the catalog, and two guarded actions.

Reads go through the catalog (no lock, nothing written). Sending an event and cancelling
post to the workflow's inbox through a Runtime, and need the start-up token in the
X-Durable-Token header, so that no other page the browser has open can trigger them. Every
id from a URL is validated before it names a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._catalog import Catalog, Details, is_postgres, plain_description, to_plain
from .._engine._describe import WorkflowState
from .._errors import (
    DurableError,
    InvalidWorkflowId,
    JournalError,
    SerializationError,
    WorkflowFinished,
    WorkflowNotFound,
)
from .._runtime import Runtime
from .._storage._postgres import PostgresStore

STATIC = Path(__file__).parent / "static"
PAGE_LIMIT = 500  # at most this many steps or workflows in one answer
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


class _RecentDetails:
    """The last few workflows' details, kept while their files are unchanged.

    Live refresh then re-reads a 100k-step journal only when it grew.
    """

    def __init__(self, catalog: Catalog, size: int = 8) -> None:
        self._catalog = catalog
        self._size = size
        self._kept: dict[str, tuple[tuple[int, ...], Details]] = {}

    async def get(self, workflow_id: str) -> Details:
        version = self._catalog.version(workflow_id)
        kept = self._kept.pop(workflow_id, None)
        if kept is None or kept[0] != version:
            kept = (version, await self._catalog.details(workflow_id))
        self._kept[workflow_id] = kept  # (now the most recent)
        while len(self._kept) > self._size:
            del self._kept[next(iter(self._kept))]
        return kept[1]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int(request: Request, name: str, default: int, *, at_most: int | None = None) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None or raw == "" else int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise _BadRequest(f"{name} must not be negative")
    return min(value, at_most) if at_most is not None else value


class _BadRequest(Exception):
    pass


def create_app(  # noqa: PLR0915 (the routes share the app's state as closures)
    directory: str | os.PathLike[str],
    *,
    token: str | None = None,
    allow_remote: bool = False,
    host: str | None = None,
) -> Starlette:
    """The UI's ASGI app for one journal directory.

    Args:
        directory: the journal directory to show, or a PostgreSQL store's DSN.
        token: what the X-Durable-Token header must hold for sends and cancels (default: a
            new random one, in `app.state.token`).
        allow_remote: accept any Host header (when listening beyond loopback); otherwise
            only loopback names, which keeps DNS-rebinding pages out.
        host: the address it listens on, accepted as a Host name too (127.0.0.2, say).
    """
    catalog = Catalog(directory)
    recent = _RecentDetails(catalog)
    runtime_holder: list[Runtime] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if is_postgres(directory):
            runtime = Runtime(store=PostgresStore(os.fspath(directory)))
        else:
            runtime = Runtime(directory)
        async with catalog, runtime:
            runtime_holder.append(runtime)
            yield

    def runtime() -> Runtime:
        if not runtime_holder:  # (served without lifespan events)
            raise RuntimeError("the UI's runtime has not started")
        return runtime_holder[0]

    async def api_list(request: Request) -> Response:
        state = request.query_params.get("status") or None
        if state is not None and state not in {str(s) for s in WorkflowState}:
            return _error(400, f"unknown status {state!r}")
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", 100, at_most=PAGE_LIMIT)
        listing = await catalog.listing(state=state, search=request.query_params.get("search"))
        page = listing.workflows[offset : offset + limit]
        return JSONResponse(
            {
                "directory": str(catalog.directory),
                "total": len(listing.workflows),
                "offset": offset,
                "workflows": [
                    plain_description(described, listing.runner(described.workflow_id))
                    for described in page
                ],
                "unreadable": listing.unreadable,
            }
        )

    async def api_workflow(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        details = await recent.get(workflow_id)
        history, described = details.history, details.description
        total = len(history.steps)
        limit = _int(request, "limit", 200, at_most=PAGE_LIMIT)
        first = _int(request, "from", max(0, total - limit)) if total else 0
        steps = history.steps[first : first + limit]
        messages = history.messages[-PAGE_LIMIT:]
        pending = [message for message in details.inbox if not message.received]
        return JSONResponse(
            {
                "workflow": plain_description(described, await catalog.runner(workflow_id)),
                "arguments": to_plain(history.arguments),
                "started": history.started,
                "ended": history.ended,
                "outcome": history.outcome,
                "result": to_plain(history.result),
                "error": to_plain(history.error),
                "generation": history.generation,
                "parent": history.parent,
                "total_steps": total,
                "from": first,
                "steps": to_plain(steps),
                "messages": to_plain(messages),
                "total_messages": len(history.messages),
                "inbox": to_plain(pending[:PAGE_LIMIT]),  # (the oldest: taken first)
                "total_inbox": len(pending),
            }
        )

    def check_token(request: Request) -> None:
        given = request.headers.get("x-durable-token", "")
        if not secrets.compare_digest(given.encode(), expected.encode()):
            raise _Forbidden

    async def api_send(request: Request) -> Response:
        check_token(request)
        body = await _json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "an event needs a name")
        event_id = body.get("event_id") or None
        if event_id is not None and not isinstance(event_id, str):
            return _error(400, "event_id must be text")
        sent = await runtime().send_event(
            request.path_params["workflow_id"], name, body.get("payload"), event_id=event_id
        )
        return JSONResponse({"sent": sent})

    async def api_cancel(request: Request) -> Response:
        check_token(request)
        body = await _json_body(request)
        reason = body.get("reason") or "cancelled from the web UI"
        if not isinstance(reason, str):
            return _error(400, "reason must be text")
        await runtime().cancel(request.path_params["workflow_id"], reason)
        return JSONResponse({"cancelled": True})

    async def workflow_page(request: Request) -> Response:
        catalog.check_id(request.path_params["workflow_id"])
        return FileResponse(STATIC / "workflow.html")

    async def list_page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def icon(request: Request) -> Response:
        return FileResponse(STATIC / "icon.svg", media_type="image/svg+xml")

    expected = token or secrets.token_urlsafe(24)
    app = Starlette(
        routes=[
            Route("/", list_page),
            Route("/favicon.ico", icon),
            Route("/workflows/{workflow_id:str}", workflow_page),
            Route("/api/workflows", api_list),
            Route("/api/workflows/{workflow_id:str}", api_workflow),
            Route("/api/workflows/{workflow_id:str}/events", api_send, methods=["POST"]),
            Route("/api/workflows/{workflow_id:str}/cancel", api_cancel, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(
                TrustedHostMiddleware,
                allowed_hosts=["*"]
                if allow_remote
                else [*LOOPBACK_NAMES, *([host] if host else [])],
            ),
            Middleware(_NoFraming),
        ],
        exception_handlers={
            InvalidWorkflowId: _handler(400),
            WorkflowNotFound: _handler(404),
            WorkflowFinished: _handler(409),
            SerializationError: _handler(400),
            JournalError: _handler(500),
            DurableError: _handler(500),
            _BadRequest: _handler(400),
            _Forbidden: _handler(403),
        },
        lifespan=lifespan,
    )
    app.state.token = expected
    return app


class _NoFraming:
    """No other site may frame the pages (clickjacking the cancel button)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Frame-Options"] = "DENY"
                headers["Content-Security-Policy"] = "frame-ancestors 'none'"
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, with_headers)


class _Forbidden(Exception):
    def __init__(self) -> None:
        super().__init__(
            "this action needs the token that `durable ui` printed at start-up (open the "
            "address it printed, which carries it)"
        )


def _handler(status: int) -> Any:
    async def handle(request: Request, error: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _error(status, str(error))
        return Response(str(error), status_code=status, media_type="text/plain")

    return handle


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _BadRequest("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    return body
