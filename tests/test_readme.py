"""The README's "Testing your workflows" example runs, as a user's own test module would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = pytest.mark.slow


def section_code(title: str) -> str:
    section = README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, f"no python block in {title!r}"
    return found.group(1)


def test_the_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_orders.py").write_text(section_code("Testing your workflows"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_the_schedules_example_passes_under_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_billing.py").write_text(section_code("Schedules"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
