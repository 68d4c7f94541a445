"""durable's pytest plugin (registered by the `pytest11` entry point): fixtures, no setup.

- `durable_dir`: a fresh journal directory under the test's tmp_path.
- `durable_runtime`: a TestRuntime over it (virtual time, mocks, counters), closed after
  the test. It is an async fixture, run by anyio's pytest plugin (installed with durable):
  mark the test `@pytest.mark.anyio`. (Under pytest-asyncio alone, build the TestRuntime
  in your own fixture: `async with TestRuntime(durable_dir) as runtime: yield runtime`.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ._test_runtime import TestRuntime


@pytest.fixture
def durable_dir(tmp_path: Path) -> Path:
    """A journal directory of this test's own (created on first use)."""
    return tmp_path / "durable"


@pytest.fixture
async def durable_runtime(durable_dir: Path) -> AsyncIterator[TestRuntime]:
    """A TestRuntime on durable_dir: virtual time, activity mocks and counters."""
    async with TestRuntime(durable_dir) as runtime:
        yield runtime
