"""The web UI's routes: static pages, a bounded JSON API over the catalog, guarded actions.

Every /api/ endpoint, reads included, needs the start-up token in the X-Durable-Token header
(403 without it): the journals' arguments and results are no more readable through the UI
than through their 0600 files, and no other page the browser has open can read or act.
The pages and static files carry no journal data. Reads go through the catalog (no lock,
nothing written); sending an event and cancelling post to the workflow's inbox through a
Runtime. Every id from a URL is validated before it names a file. Queries and bulk actions
(_query_api): GET /api/workflows with filter parameters, POST /api/bulk/{action}.
Schedules (_schedule_api): GET /api/schedules and /api/schedules/{name}; POST
/api/schedules/{name}/{action} (pause, resume, trigger, backfill, delete), sent through
ScheduleHandle like the CLI's commands.
Operations (_operation_api): POST /api/workflows/{id}/resume, /restart, /fork.

Bounds (see _answers for the values):
- an answer holds at most PAGE_LIMIT (500) workflows, unreadable journals (their reasons
  cut to REASON_LIMIT, 1,000 characters), steps, received messages and pending messages,
  ATTEMPT_LIMIT (20) attempts a step, and values cut to VALUE_LIMIT (4,000)
  characters (ROW_LIMIT, 200, in a listing row; NAME_LIMIT, 200, for names), and
  ANSWER_BUDGET (1,000,000) characters of them in all (past it, 100 each): a few MB at
  most, whatever the journal holds;
- GET /api/workflows/{id}/values/{ref} streams one value in full, as JSON;
- a request body is at most BODY_LIMIT (1 MiB; 413 beyond) of JSON nested at most
  JSON_DEPTH_LIMIT (64) deep (400 beyond, as for anything that is not a JSON object);
- at most READ_LIMIT (2) journals are read at once, concurrent requests for the same
  workflow share one read, and the kept details of recent workflows hold at most
  KEPT_BYTES (256 MiB) of journal and inbox files (the latest one always).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._catalog import Catalog, Details, Listing, is_postgres
from .._engine._describe import WorkflowState
from .._errors import (
    DurableError,
    InboxFull,
    InvalidSchedule,
    JournalCorrupted,
    JournalError,
    JournalMisplaced,
    JournalPermissionDenied,
    MessageTooLarge,
    UnsafeJournalFile,
    UnsupportedJournalFormat,
)
from .._runtime import Runtime
from .._schedule_spec import schedule_id
from .._storage._postgres import PostgresStore
from ._answers import (
    PAGE_LIMIT,
    REASON_LIMIT,
    Bounds,
    listing_row,
    stream_answer,
    value_of,
    workflow_answer,
)
from ._operation_api import BadOperation, operate
from ._query_api import bulk_answer, filter_of, query_answer
from ._schedule_api import act, describe_one, schedule_rows
from ._values import json_pieces

STATIC = Path(__file__).parent / "static"
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
BODY_LIMIT = 1024 * 1024  # bytes of a request body (send, cancel)
JSON_DEPTH_LIMIT = 64  # nesting of a request body's JSON
READ_LIMIT = 2  # journals read at once
KEPT_BYTES = 256 * 1024 * 1024  # journal and inbox bytes whose details are kept
TOKEN_HEADER = "x-durable-token"  # noqa: S105 (a header's name)
UNREADABLE = (  # a journal that is there and cannot be read: 422, the page says why
    JournalCorrupted,
    JournalMisplaced,
    UnsupportedJournalFormat,
    UnsafeJournalFile,
    JournalPermissionDenied,
)


class _RecentDetails:
    """The last workflows' details, kept while their files are unchanged; one read at a time each.

    Live refresh then re-reads a 100k-step journal only when it grew, and 200 pages asking
    for the same 100 MiB inbox at once cause one read, not 200.
    """

    def __init__(self, catalog: Catalog, size: int = 8) -> None:
        self._catalog = catalog
        self._size = size
        self._kept: dict[str, tuple[tuple[int, ...], Details]] = {}
        self._reading: dict[str, tuple[anyio.Event, list[Details]]] = {}
        self._limiter = anyio.CapacityLimiter(READ_LIMIT)

    async def get(self, workflow_id: str) -> Details:
        version = self._catalog.version(workflow_id)
        kept = self._kept.pop(workflow_id, None)
        if kept is not None and kept[0] == version:
            self._kept[workflow_id] = kept  # (now the most recent)
            return kept[1]
        while (reading := self._reading.get(workflow_id)) is not None:
            await reading[0].wait()  # (a read under way: its answer is as fresh as ours)
            if reading[1]:
                return reading[1][0]
        done, read = self._reading[workflow_id] = anyio.Event(), []
        try:
            async with self._limiter:
                details = await self._catalog.details(workflow_id)
            read.append(details)
        finally:
            del self._reading[workflow_id]
            done.set()
        self._keep(workflow_id, version, details)
        return details

    def _keep(self, workflow_id: str, version: tuple[int, ...], details: Details) -> None:
        if len(version) < 8:  # (a database's: never the same, never kept)
            return
        if version[:4] == (-1, -1, -1, -1):  # (no journal: a queued request, whose place
            return  # moves with no file of its own saying so)
        self._kept[workflow_id] = (version, details)
        while len(self._kept) > 1 and (
            len(self._kept) > self._size or sum(map(_file_bytes, self._kept.values())) > KEPT_BYTES
        ):
            del self._kept[next(iter(self._kept))]


def _file_bytes(kept: tuple[tuple[int, ...], Details]) -> int:
    """The journal's and inbox's sizes, from a Catalog.version()."""
    return max(0, kept[0][2]) + max(0, kept[0][6])


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


class _TooLarge(Exception):
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
        token: what the X-Durable-Token header must hold for every /api/ request (default:
            a new random one, in `app.state.token`).
        allow_remote: accept any Host header (when listening beyond loopback); otherwise
            only loopback names, which keeps DNS-rebinding pages out.
        host: the address it listens on, accepted as a Host name too (127.0.0.2, say).
    """
    catalog = Catalog(directory)
    recent = _RecentDetails(catalog)
    listing_lock = anyio.Lock()  # (concurrent listings: the later ones find it all kept)
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

    async def listing(state: str | None, search: str | None) -> Listing:
        async with listing_lock:
            return await catalog.listing(state=state, search=search)

    async def api_list(request: Request) -> Response:
        where = filter_of(request.query_params)
        if where is not None:  # (a query: by cursor, newest start first)
            limit = _int(request, "limit", 100, at_most=PAGE_LIMIT) or 1
            cursor = request.query_params.get("cursor") or None
            async with listing_lock:
                return JSONResponse(await query_answer(catalog, where, limit, cursor))
        state = request.query_params.get("status") or None
        if state is not None and state not in {str(s) for s in WorkflowState}:
            return _error(400, f"unknown status {state!r}")
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", 100, at_most=PAGE_LIMIT)
        found = await listing(state, request.query_params.get("search"))
        page = found.workflows[offset : offset + limit]
        bounds = Bounds()
        return JSONResponse(
            {
                "directory": str(catalog.directory),
                "total": len(found.workflows),
                "offset": offset,
                "workflows": [
                    listing_row(described, found.runner(described.workflow_id), bounds)
                    for described in page
                ],
                "unreadable": {
                    name: reason[:REASON_LIMIT]
                    for name, reason in list(found.unreadable.items())[:PAGE_LIMIT]
                },
                "total_unreadable": len(found.unreadable),
            }
        )

    async def api_workflow(request: Request) -> Response:
        details = await recent.get(request.path_params["workflow_id"])
        total = len(details.history.steps)
        limit = _int(request, "limit", 200, at_most=PAGE_LIMIT)
        first = _int(request, "from", max(0, total - limit)) if total else 0
        return JSONResponse(workflow_answer(details, first, limit))

    async def api_streams(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        name = request.query_params.get("name") or None
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", 200, at_most=PAGE_LIMIT)
        try:
            snapshot = await catalog.streams(workflow_id, name, offset, limit)
        except ValueError as error:  # (a stream name too long, say)
            return _error(400, str(error))
        return JSONResponse(stream_answer(snapshot, name, offset))

    async def api_value(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        details = await recent.get(workflow_id)
        value = value_of(details, workflow_id, request.path_params["ref"])
        return StreamingResponse(json_pieces(value), media_type="application/json")

    async def api_send(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        body = await _json_body(request, workflow_id, "an event")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return _error(400, f"an event for workflow {workflow_id!r} needs a name")
        event_id = body.get("event_id") or None
        if event_id is not None and not isinstance(event_id, str):
            return _error(400, f"event_id must be text (event for workflow {workflow_id!r})")
        sent = await runtime().send_event(workflow_id, name, body.get("payload"), event_id=event_id)
        return JSONResponse({"sent": sent})

    async def api_cancel(request: Request) -> Response:
        workflow_id = request.path_params["workflow_id"]
        body = await _json_body(request, workflow_id, "a cancellation")
        reason = body.get("reason") or "cancelled from the web UI"
        if not isinstance(reason, str):
            return _error(400, f"reason must be text (cancelling workflow {workflow_id!r})")
        await runtime().cancel(workflow_id, reason)
        return JSONResponse({"cancelled": True})

    async def api_operate(request: Request) -> Response:
        workflow_id, action = request.path_params["workflow_id"], request.path_params["action"]
        body = await _json_body(request, workflow_id, f"a {action}")
        caller = request.client.host if request.client is not None else "?"
        try:
            answer = await operate(runtime(), workflow_id, action, body, caller)
        except BadOperation as error:
            return _error(400, str(error))
        return JSONResponse(answer)

    async def api_bulk(request: Request) -> Response:
        action = request.path_params["action"]
        body = await _json_body(request, f"bulk {action}", "a bulk action")
        caller = request.client.host if request.client else "unknown"
        return JSONResponse(await bulk_answer(runtime(), action, body, caller))

    async def api_schedules(request: Request) -> Response:
        found = await listing(None, "schedule:")  # (then only the schedules' own workflows)
        rows, total = schedule_rows(found.workflows)
        return JSONResponse(
            {"directory": str(catalog.directory), "total": total, "schedules": rows}
        )

    async def api_schedule(request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(await describe_one(runtime(), name, str(catalog.directory)))

    async def api_schedule_action(request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        body = await _json_body(request, schedule_id(name), f"a schedule's {action}")
        return JSONResponse(await act(runtime(), name, action, body, str(catalog.directory)))

    async def schedule_page(request: Request) -> Response:
        return FileResponse(STATIC / "schedule.html")  # (the page reads and says: 404 there)

    async def schedules_page(request: Request) -> Response:
        return FileResponse(STATIC / "schedules.html")

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
            Route("/schedules", schedules_page),
            Route("/schedules/{name:str}", schedule_page),
            Route("/api/workflows", api_list),
            Route("/api/workflows/{workflow_id:str}", api_workflow),
            Route("/api/workflows/{workflow_id:str}/values/{ref:path}", api_value),
            Route("/api/workflows/{workflow_id:str}/streams", api_streams),
            Route("/api/workflows/{workflow_id:str}/events", api_send, methods=["POST"]),
            Route("/api/workflows/{workflow_id:str}/cancel", api_cancel, methods=["POST"]),
            Route("/api/bulk/{action:str}", api_bulk, methods=["POST"]),
            Route("/api/workflows/{workflow_id:str}/{action:str}", api_operate, methods=["POST"]),
            Route("/api/schedules", api_schedules),
            Route("/api/schedules/{name:str}", api_schedule),
            Route("/api/schedules/{name:str}/{action:str}", api_schedule_action, methods=["POST"]),
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
            Middleware(_TokenGuard, token=expected),
        ],
        exception_handlers={
            DurableError: _durable_error,
            _BadRequest: _handler(400),
            _TooLarge: _handler(413),
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


class _TokenGuard:
    """Every /api/ request needs the start-up token, reads as much as actions.

    A guard in front of the routes, so that no endpoint added later can forget it.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            given = Headers(scope=scope).get(TOKEN_HEADER, "").encode()
            if not secrets.compare_digest(given, self.token):
                refused = _error(
                    403,
                    "the web UI's API needs the token that `durable ui` printed at start-up, "
                    "in the X-Durable-Token header: open the address it printed (it carries "
                    "the token, which the page keeps)",
                )
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _durable_error(request: Request, error: Exception) -> Response:
    """A durable error as its HTTP status: the request's fault (4xx) or the store's (500)."""
    if isinstance(error, UNREADABLE):
        status = 422  # (the workflow's journal is there, and cannot be read: the message says why)
    elif isinstance(error, JournalError):
        status = 500  # (storage trouble: nothing the request can change)
    elif isinstance(error, MessageTooLarge):
        status = 413
    elif isinstance(error, InvalidSchedule):
        status = 422  # (a schedule's command with a value it cannot take: a backfill range)
    elif isinstance(error, InboxFull):
        status = 429  # (until its runner takes what waits)
    elif isinstance(error, LookupError):
        status = 404  # (no such workflow, no such value)
    elif isinstance(error, ValueError | TypeError):
        status = 400  # (an invalid id, a payload the journal cannot hold)
    else:
        status = 409  # (the workflow's state refuses it: finished; a deleted schedule)
    return _answer(request, status, str(error))


def _handler(status: int) -> Any:
    async def handle(request: Request, error: Exception) -> Response:
        return _answer(request, status, str(error))

    return handle


def _answer(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return _error(status, message)
    return Response(message, status_code=status, media_type="text/plain")


async def _json_body(request: Request, workflow_id: str, what: str) -> dict[str, Any]:
    """The request's JSON object, bounded in size (413) and depth (400)."""
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > BODY_LIMIT:
        raise _TooLarge(_too_large(workflow_id, what))
    chunks, size = [], 0
    async for chunk in request.stream():  # (a chunked body has no length to trust)
        size += len(chunk)
        if size > BODY_LIMIT:
            raise _TooLarge(_too_large(workflow_id, what))
        chunks.append(chunk)
    problem = f"{what} for workflow {workflow_id!r}: the request body"
    try:
        body = json.loads(b"".join(chunks))
    except RecursionError:
        raise _BadRequest(f"{problem} nests deeper than {JSON_DEPTH_LIMIT}") from None
    except ValueError:
        raise _BadRequest(f"{problem} is not JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest(f"{problem} must be a JSON object")
    if _depth_over(body, JSON_DEPTH_LIMIT):
        raise _BadRequest(f"{problem} nests deeper than {JSON_DEPTH_LIMIT}: flatten the payload")
    return body


def _too_large(workflow_id: str, what: str) -> str:
    return (
        f"{what} for workflow {workflow_id!r}: the request body is over the web UI's "
        f"{BODY_LIMIT}-byte limit; send a larger payload with `durable send` or "
        "Runtime.send_event"
    )


def _depth_over(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests deeper than `limit` (iterative: any depth is safe)."""
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, depth + 1) for child in children)
    return False
