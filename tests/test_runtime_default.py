"""durable.run on the lazily created default runtime: $DURABLE_DIR, across event loops."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import durable
from durable import _default_runtime


@pytest.fixture
def fresh_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "default"
    monkeypatch.setenv("DURABLE_DIR", str(directory))
    monkeypatch.setattr(_default_runtime, "_default_runtime", None)
    yield directory
    if _default_runtime._default_runtime is not None:  # release its sync thread and directory
        asyncio.run(_default_runtime._default_runtime.close())


@durable.activity
async def greet(name: str) -> str:
    return f"hello {name}"


@durable.workflow
async def greeter(name: str) -> str:
    return await greet(name)


def test_durable_run_uses_durable_dir_across_event_loops(fresh_default: Path) -> None:
    assert asyncio.run(durable.run(greeter, "ada", id="greet-ada")) == "hello ada"
    assert asyncio.run(durable.run(greeter, "ada", id="greet-ada")) == "hello ada"
    assert (fresh_default / "greet-ada.journal").exists()
    assert _default_runtime.default_runtime().directory == fresh_default
