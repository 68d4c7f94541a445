"""Serving the UI with uvicorn, and the start-up line that carries the action token."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterable
from typing import Any

import uvicorn

from .._definitions import Workflow
from ._app import create_app


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the UI on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _shown(source: str | os.PathLike[str]) -> str:
    """The source as printed: a DSN without its password."""
    text = os.fspath(source)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return text


def serve(
    directory: str | os.PathLike[str],
    *,
    host: str,
    port: int,
    workflows: Iterable[Workflow[..., Any]] = (),
) -> None:
    """Serve the UI until interrupted; prints its address (with the token) once listening.

    `workflows`: the code for the checks before a resume or fork (see create_app).

    Raises:
        OSError: the address cannot be listened on (in use, not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host.strip("[]"), port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    token = secrets.token_urlsafe(24)
    loopback = is_loopback(host)
    app = create_app(
        directory,
        token=token,
        allow_remote=not loopback,
        host=host.strip("[]"),
        workflows=workflows,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))

    async def run() -> None:
        serving = asyncio.ensure_future(server.serve(sockets=[listener]))
        while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn sets a flag)
            await asyncio.sleep(0.02)
        if server.started:
            bound = listener.getsockname()[1]
            shown = f"[{host.strip('[]')}]" if ":" in host else host
            print(
                f"durable ui: {_shown(directory)} at http://{shown}:{bound}/?token={token}",
                flush=True,
            )
        await serving

    try:
        asyncio.run(run())
    finally:
        listener.close()
