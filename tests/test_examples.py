"""Each example in examples/ runs end to end (besides the order demo, in test_demo.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        env={**os.environ, "DURABLE_DIR": str(tmp_path / "journals")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_subscription_billing_continues_as_new_each_period(tmp_path: Path) -> None:
    out = run_example("subscription_billing.py", tmp_path, "4")
    assert out.count("billed ada@example.com") == 4
    assert "billed 22.00 EUR over 4 periods" in out  # 4 x 5.00 + the 2.00 of usage events
    assert "generation 3, status '4 periods billed'" in out
    keys = [line.split("(key ")[1].rstrip(")") for line in out.splitlines() if "(key " in line]
    assert len(set(keys)) == 4, f"one idempotency key per bill: {keys}"
    journals = sorted(path.name for path in (tmp_path / "journals").iterdir())
    assert len([name for name in journals if name.endswith(".journal")]) == 1


def test_onboarding_reminds_then_activates_or_closes(tmp_path: Path) -> None:
    out = run_example("onboarding.py", tmp_path)
    assert "mail to ada@example.com: reminder 1" in out
    assert "mail to ada@example.com: thanks, verified from 203.0.113.7" in out
    assert "ada: active" in out
    assert "mail to bob@example.com: reminder 2" in out
    assert "closed the account of bob@example.com" in out
    assert "bob: closed" in out


def test_rate_limited_payments_hold_the_card_api_limit_and_rerun_once(tmp_path: Path) -> None:
    out = run_example("rate_limited_payments.py", tmp_path, "12")
    assert "last order: queued queued in 'orders'" in out
    assert out.count("shipped o") == 12
    assert "at most 3 card API calls at once" in out
    again = run_example("rate_limited_payments.py", tmp_path, "12")
    assert "last order: completed" in again
    assert again.count("shipped o") == 12
    assert "at most 0 card API calls at once" in again  # (every order done: nothing ran)


def test_monthly_billing_backfills_then_bills_each_month_once(tmp_path: Path) -> None:
    out = run_example("monthly_billing.py", tmp_path)
    assert "backfilling 4 bill runs" in out
    periods = [
        line.split(" for ")[1].split()[0] for line in out.splitlines() if "billed ada" in line
    ]
    assert periods == [f"2025-{m:02}" for m in (9, 10, 11, 12)] + [
        f"2026-{m:02}" for m in (1, 2, 3, 4)
    ]
    assert "monthly-billing@2026-04-01T00:00:00Z: scheduled completed" in out  # (summer time)
    assert "next: 2026-06-01T02:00:00+02:00" in out
