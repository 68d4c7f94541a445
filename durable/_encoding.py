"""Python values <-> msgpack payloads, with bounded decoding of files we did not write.

Sits on the storage layer (which stores opaque bytes) and below the engine. Decoding is
bounded by the payload: msgpack caps every container and string length at the payload's
size and nesting depth at its internal stack, so a hostile record fails fast instead of
allocating or recursing without bound. No pickle, ever.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack

from ._errors import JournalCorrupted, SerializationError


def encode(value: Any, *, context: str = "a journal record") -> bytes:
    """Encode `value`; nothing is written anywhere if this raises.

    Raises:
        SerializationError: the value (or something inside it) has no msgpack form.
    """

    def refuse(unsupported: object) -> object:
        raise SerializationError(value_type=type(unsupported).__qualname__, context=context)

    try:
        return msgpack.packb(value, use_bin_type=True, default=refuse)  # type: ignore[no-any-return]
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError) as error:
        raise SerializationError(
            value_type=type(value).__qualname__, context=context, detail=str(error)
        ) from error


def decode(payload: bytes, *, path: Path | str, offset: int) -> Any:
    """Decode one record read from journal `path` at byte `offset`.

    Raises:
        JournalCorrupted: the payload passed its checksum but is not one msgpack value
            (a file from something else, or written by a bug): never guessed at.
    """
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        detail = str(error) or type(error).__name__
        raise JournalCorrupted(
            path=path, offset=offset, reason=f"the record is not valid msgpack ({detail})"
        ) from error
