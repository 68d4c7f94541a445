from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from durable._storage._frames import FILE_HEADER, encode_frame

from .postgres_server import binaries, throwaway_cluster


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--thorough",
        action="store_true",
        help="run the slow exhaustive variants (every crash point of the power-loss simulator)",
    )


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """An admin DSN of a PostgreSQL server for this test session (see postgres_server.py)."""
    if dsn := os.environ.get("DURABLE_TEST_POSTGRES"):
        yield dsn
        return
    bindir = binaries()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have PostgreSQL's binaries (Debian's postgresql)")
        pytest.skip("no PostgreSQL binaries here (apt-get install postgresql)")
    with throwaway_cluster(bindir) as dsn:
        yield dsn


@pytest.fixture
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """A DSN of a fresh, empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(postgres_server)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
