"""Journal values as JSON text, a piece at a time: for previews and for streaming one value.

The text is that of `to_plain(value)` (see durable._json_ready), written without building the
plain copy or the whole text: a preview of a 100 MiB payload costs its first few thousand
characters, and streaming it holds one piece at a time beside the decoded value. Iterative,
not recursive, so no nesting a journal can hold overflows the stack.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from collections.abc import Iterable, Iterator
from typing import Any

from .._json_ready import to_plain

PIECE = 64 * 1024  # characters of a long string (or bytes of a bytes value) per piece
COMPACT = (",", ":")  # the API's separators (as starlette's JSONResponse)
READABLE = (", ", ": ")  # a preview's, for people
DEPTH_LIMIT = 64  # levels of nesting a value may have to come whole in an answer


class _TooDeep(Exception):
    pass


def json_pieces(
    value: Any,
    *,
    separators: tuple[str, str] = COMPACT,
    piece: int = PIECE,
    depth_limit: int | None = None,
) -> Iterator[str]:
    """The JSON text of `to_plain(value)`, in pieces of about `piece` characters or fewer.

    Raises _TooDeep past `depth_limit` levels of nesting, if given.
    """
    comma, colon = separators
    key: str | None
    stack: list[tuple[Iterator[tuple[str | None, Any]], str]] = []  # (items, closing)
    first = False  # whether the next item is its container's first
    item = value
    while True:
        opened = _container(item)
        if opened is None:
            yield from _scalar(item, piece, colon)
        else:
            opening, items, closing = opened
            yield opening
            stack.append((items, closing))
            first = True
            if depth_limit is not None and len(stack) > depth_limit:
                raise _TooDeep
        while stack:  # the next item to write, closing what has run out
            items, closing = stack[-1]
            entry = next(items, None)
            if entry is None:
                stack.pop()
                first = False
                yield closing
                continue
            key, item = entry
            separator = "" if first else comma
            first = False
            yield separator if key is None else f"{separator}{_string(key)}{colon}"
            break
        else:
            return


def preview(value: Any, limit: int) -> tuple[str, bool]:
    """The first `limit` characters of the value's JSON text, and whether that is all of it.

    A value nested deeper than DEPTH_LIMIT is never whole here: as plain data it would
    overflow the recursive code that answers with it (json.dumps, to_plain).
    """
    parts: list[str] = []
    length = 0
    pieces = json_pieces(value, separators=READABLE, piece=max(limit, 16), depth_limit=DEPTH_LIMIT)
    try:
        for part in pieces:
            parts.append(part)
            length += len(part)
            if length > limit:
                return "".join(parts)[:limit], False
    except _TooDeep:
        return "".join(parts)[:limit], False
    return "".join(parts), True


def _container(
    value: Any,
) -> tuple[str, Iterator[tuple[str | None, Any]], str] | None:
    """An object or array to open (mirroring to_plain), or None for a scalar."""
    while isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, dict):
        return "{", ((_key(key), item) for key, item in value.items()), "}"
    if isinstance(value, list | tuple):
        return "[", _unkeyed(value), "]"
    if isinstance(value, set | frozenset):
        return "[", _unkeyed(to_plain(value)), "]"  # (sorted as to_plain sorts it)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return "{", ((field.name, getattr(value, field.name)) for field in fields), "}"
    return None


def _unkeyed(items: Iterable[Any]) -> Iterator[tuple[str | None, Any]]:
    return ((None, item) for item in items)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _scalar(value: Any, piece: int, colon: str) -> Iterator[str]:
    while isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        if len(value) <= piece:
            yield _string(value)
            return
        yield '"'
        for start in range(0, len(value), piece):  # (escaping is per character)
            yield _string(value[start : start + piece])[1:-1]
        yield '"'
    elif isinstance(value, bytes | bytearray | memoryview):
        data = memoryview(value).cast("B")
        step = max(3, piece // 4 * 3)  # (whole 3-byte groups: no padding mid-way)
        yield '{"base64"' + colon + '"'
        for start in range(0, len(data), step):
            yield base64.b64encode(data[start : start + step]).decode("ascii")
        yield '"}'
    else:
        yield json.dumps(to_plain(value), ensure_ascii=False)
