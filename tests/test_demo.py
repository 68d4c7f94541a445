"""The README's demo runs end to end: write, SIGKILL, reopen, resume, charged once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_journal_demo_survives_sigkill(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "journal_demo.py")],
        env={**os.environ, "DURABLE_DIR": str(tmp_path / "demo")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "SIGKILL (exit status -9)" in result.stdout
    assert "charge_payment    replayed from the journal" in result.stdout
    assert result.stdout.rstrip().endswith("charged once")
    assert (tmp_path / "demo" / "journal-demo.journal").exists()
