"""Each example in examples/ runs end to end (besides the order demo, in test_demo.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import durable

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


def _http(method: str, url: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode() or "null")


def _serve_orders(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "web_orders.py"), str(port)], env=env
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            _http("GET", f"http://127.0.0.1:{port}/orders/order-none")
            return server
        except OSError:
            assert server.poll() is None, "the server died at start-up"
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.05)


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.anyio
async def test_the_web_order_service_survives_sigkill_mid_order(tmp_path: Path) -> None:
    """uvicorn killed while an order's packing activity runs: restarted, the lifespan
    resumes the order, which completes once (one charge, one shipment); a reader in another
    process follows its stream across the kill without reconnecting."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DURABLE_DIR": str(tmp_path / "journals"),
        "WEB_ORDERS_LEDGER": str(tmp_path / "ledger"),
        "WEB_ORDERS_PACK_SECONDS": "0.25",
    }
    base = f"http://127.0.0.1:{port}/orders"
    server = _serve_orders(port, env)
    try:
        status, created = _http(
            "POST", base, {"customer": "ada", "items": {"a": 1, "b": 2, "c": 3}}
        )
        assert status == 201
        order = created["id"]
        _until(lambda: _http("GET", f"{base}/{order}")[1]["state"] == "waiting for event", "wait")
        assert _http("POST", f"{base}/{order}/events/approved", "dock 4")[0] == 202
        async with durable.Runtime(tmp_path / "journals") as reader:
            seen: list[durable.StreamItem[Any]] = []
            async for item in reader.read_stream(order, "progress"):
                seen.append(item)
                if item.value == "packed 1 x a" and len(seen) == 4:
                    server.send_signal(signal.SIGKILL)  # mid-packing: b and c not packed
                    server.wait()
                    server = _serve_orders(port, env)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    values = [item.value for item in seen]
    assert values[:4] == ["received", values[1], "approved by dock 4", "packed 1 x a"]
    assert values[4:] == ["packed 1 x a", "packed 2 x b", "packed 3 x c", values[-1]]
    assert seen[4].restarted  # the packing attempt ran again after the kill, marked so
    assert values[-1].startswith("shipped: track-")
    assert [item.offset for item in seen] == list(range(len(seen)))
    ledger = (tmp_path / "ledger").read_text().splitlines()
    assert sum(" charge ada " in line for line in ledger) == 1
    assert sum(" ship ada " in line for line in ledger) == 1
