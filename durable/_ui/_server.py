"""Serving the UI with uvicorn, and the start-up line that carries the action token."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import sys

import uvicorn

from ._app import create_app


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the UI on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def serve(directory: str | os.PathLike[str], *, host: str, port: int) -> None:
    """Serve the UI until interrupted; prints its address (with the token) once listening."""
    token = secrets.token_urlsafe(24)
    app = create_app(directory, token=token, allow_remote=not is_loopback(host))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    async def run() -> None:
        serving = asyncio.ensure_future(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn sets a flag)
            await asyncio.sleep(0.02)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            print(
                f"durable ui: {directory} at http://{shown}:{bound}/?token={token}",
                flush=True,
            )
        await serving
        if not server.started:  # could not listen (uvicorn said why)
            sys.exit(1)

    asyncio.run(run())
