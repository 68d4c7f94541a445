"""The README's demo runs end to end: order workflow, SIGKILL, resume, charged once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_order_demo_survives_sigkill(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "order_demo.py")],
        env={**os.environ, "DURABLE_DIR": str(tmp_path / "demo")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert "SIGKILL  while waiting for the warehouse (exit status -9)" in out
    assert "sent     warehouse-confirmed (the workflow is waiting for event" in out
    assert "replayed charge_payment" in out
    assert out.count("ran      charge_payment") == 2  # the first order, then the piano
    assert "ran      send_email" in out
    assert "charged once" in out
    assert "refund_payment" in out
    assert "failed   " in out
    assert out.rstrip().endswith("refunded once")
    assert len(list((tmp_path / "demo").glob("order-*.journal"))) == 2
