from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from durable._storage._frames import FILE_HEADER, encode_frame


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return "asyncio", {"debug": True}


def journal_bytes(*payloads: bytes) -> bytes:
    """A well-formed journal file holding `payloads`."""
    return FILE_HEADER + b"".join(encode_frame(payload) for payload in payloads)


def frame_offsets(*payloads: bytes) -> list[int]:
    """The byte offset of each payload's frame in journal_bytes(*payloads)."""
    offsets = []
    offset = len(FILE_HEADER)
    for payload in payloads:
        offsets.append(offset)
        offset += len(encode_frame(payload))
    return offsets


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journals"


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll an async condition (a describe(), a journal read) until it holds."""
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)
