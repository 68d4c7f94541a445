"""durable inside a web app (Starlette, FastAPI, any ASGI framework with a lifespan).

    from durable.web import lifespan

    app = FastAPI(lifespan=lifespan(Runtime(workflows=[order_flow])))

    @app.post("/orders")
    async def create(request: Request) -> dict[str, str]:
        handle = await request.state.durable.start(order_flow, ...)
        return {"id": handle.id}

`lifespan` opens the runtime when the app starts, resumes the workflows a previous process
left unfinished (`Runtime.recover`), optionally serves the store's work (`Runtime.serve`:
PostgreSQL's shared queue, a directory's unfinished journals), and on shutdown stops
serving and closes the runtime (activities in flight get its `stop_grace`). The runtime
is the lifespan's state `durable` (`request.state.durable`). `running` is the same as an
async context manager, to put inside a lifespan of your own.

`event_stream` answers a request with a workflow's stream as server-sent events, each
with its offset as its `id`, so a browser's EventSource that reconnects resumes exactly
where it stopped (the Last-Event-ID header). It needs starlette (the `ui` extra), imported
when called: this module imports nothing of any web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from ._errors import DurableError
from ._runtime import Runtime
from ._streams import Stream

__all__ = ["event_stream", "lifespan", "running"]

logger = logging.getLogger("durable")


@contextlib.asynccontextmanager
async def running(
    runtime: Runtime | Callable[[], Runtime], *, recover: bool = True, serve: bool = False
) -> AsyncIterator[Runtime]:
    """The runtime, open while the block runs: recovered, maybe serving; closed after.

    Args:
        runtime: a Runtime, or a function that makes one (called here, on the app's loop).
        recover: resume the workflows of this store that are unfinished and not running
            elsewhere (default True): a process that restarts picks up where it died.
        serve: also run `Runtime.serve()` in a task while the app runs (default False):
            with PostgresStore, this process takes its share of the store's workflows
            (submitted, due, or left by a dead process); on a directory, it resumes
            unfinished journals as they appear.
    """
    opened = runtime if isinstance(runtime, Runtime) else runtime()
    serving: asyncio.Task[None] | None = None
    try:
        if recover:
            handles = await opened.recover()
            if handles:
                logger.info("resumed %d unfinished workflow(s) at start-up", len(handles))
        if serve:
            serving = asyncio.ensure_future(opened.serve())
        yield opened
    finally:
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        await opened.close()


def lifespan(
    runtime: Runtime | Callable[[], Runtime], *, recover: bool = True, serve: bool = False
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """A lifespan for Starlette / FastAPI: `Starlette(lifespan=lifespan(runtime))`.

    The app's state `durable` is the runtime (`request.state.durable`). See `running` for
    the arguments.
    """

    @contextlib.asynccontextmanager
    async def app_lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        async with running(runtime, recover=recover, serve=serve) as opened:
            yield {"durable": opened}

    return app_lifespan


_EVENT_ID = re.compile(r"[0-9]{1,18}")  # an offset this sent (ASCII digits, below 10**18)


def _offset_after(last_event_id: str | None) -> int | None:
    """Where a reader resumes after `last_event_id` (0: from the start; None: not an id)."""
    if last_event_id is None or not last_event_id.strip(" \t"):
        return 0
    text = last_event_id.strip(" \t")
    return int(text) + 1 if _EVENT_ID.fullmatch(text) else None


def event_stream(
    runtime: Runtime,
    workflow_id: str,
    stream: str | Stream[Any],
    *,
    last_event_id: str | None = None,
    encode: Callable[[Any], str] = json.dumps,
) -> Any:
    """A starlette StreamingResponse of the stream as server-sent events (text/event-stream).

    Each value is an event `data: <encode(value)>` with `id: <offset>`; pass the request's
    `Last-Event-ID` header as `last_event_id` to resume after it. The response ends when
    the workflow's run does, with an event `end`; a stream that cannot be read (unknown
    workflow, offset past an ended stream) ends with an event `error` saying why. A
    `last_event_id` that is not an id this sent (digits, at most 18 of them; blank is
    none) is answered 400, without reading anything: the header is the caller's to forge.
    A client that disconnects stops its reader (the server's ASGI cancels the response).

    Raises:
        ImportError: starlette is not installed (pip install "aiodurable[ui]").
    """
    try:
        from starlette.responses import (  # noqa: PLC0415 (an optional extra)
            PlainTextResponse,
            StreamingResponse,
        )
    except ImportError as error:  # pragma: no cover (the test extra has it)
        raise ImportError(
            'durable.web.event_stream needs starlette: pip install "aiodurable[ui]"'
        ) from error
    offset = _offset_after(last_event_id)
    if offset is None:
        given = last_event_id or ""
        shown = repr(given[:40]) + ("..." if len(given) > 40 else "")
        return PlainTextResponse(
            f"Last-Event-ID {shown} is not the id of an event of this stream (an offset: "
            "0 to 18 digits)",
            status_code=400,
        )

    async def events() -> AsyncIterator[str]:
        try:
            async for item in runtime.read_stream(workflow_id, stream, offset):
                yield f"id: {item.offset}\ndata: {encode(item.value)}\n\n"
        except DurableError as error:
            yield f"event: error\ndata: {json.dumps(str(error))}\n\n"
            return
        yield "event: end\ndata: {}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
