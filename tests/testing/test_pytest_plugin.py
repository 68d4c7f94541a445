"""The pytest plugin's fixtures, used as a user would: no imports, no set-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import durable
from durable.testing import TestRuntime

pytestmark = pytest.mark.anyio


@durable.workflow
async def reminder(days: int) -> str:
    started = durable.now()
    await durable.sleep(timedelta(days=days))
    return f"reminded after {(durable.now() - started).days} days"


def test_durable_dir_is_inside_the_tests_tmp_path(durable_dir: Path, tmp_path: Path) -> None:
    assert durable_dir.parent == tmp_path


async def test_durable_runtime_is_a_test_runtime_on_durable_dir(
    durable_runtime: TestRuntime, durable_dir: Path
) -> None:
    assert isinstance(durable_runtime, TestRuntime)
    assert await durable_runtime.run(reminder, 30, id="r") == "reminded after 30 days"
    assert (durable_dir / "r.journal").exists()


def test_the_plugin_is_registered_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("durable")
    assert plugin is not None
    assert plugin.__name__ == "durable.testing.pytest_plugin"
