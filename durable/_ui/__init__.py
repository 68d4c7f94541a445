"""The local web UI (`durable ui`): a starlette app over the read-only catalog.

Lists the workflows of a journal directory, draws each one's history as a timeline, and sends
events and cancellations through a Runtime (the same inbox the CLI posts to). Served by
uvicorn on 127.0.0.1:8233 by default. Needs the `ui` extra (starlette, uvicorn).
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as error:  # pragma: no cover (the ui extra is installed with test)
    raise ImportError(
        "the durable web UI needs starlette and uvicorn: pip install 'aiodurable[ui]'"
    ) from error

from ._app import create_app as create_app
from ._server import is_loopback as is_loopback
from ._server import serve as serve

__all__ = ["create_app", "is_loopback", "serve"]
