from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from .sample_app import make_directory


@pytest.fixture(scope="session")
def sample_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Journals made once by real runs: a workflow in each state (see sample_app)."""
    directory = tmp_path_factory.mktemp("sample") / "journals"
    asyncio.run(make_directory(directory))
    return directory


@pytest.fixture
def sample_dir(sample_source: Path, tmp_path: Path) -> Path:
    """This test's own copy of the sample journals (it may send, cancel, resume)."""
    copy = tmp_path / "journals"
    shutil.copytree(sample_source, copy)
    return copy
