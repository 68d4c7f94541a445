"""Catalog data as JSON-ready values (the CLI's --json, the web UI's API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from durable._json_ready import to_plain


@dataclass
class Item:
    sku: str
    price: Decimal


def test_to_plain_gives_json_ready_values() -> None:
    value = {
        "when": datetime(2026, 12, 5, tzinfo=UTC),
        "items": (Item("a", Decimal("1.50")),),
        "tags": {"x"},
        "raw": b"\x00\x01",
        "id": UUID(int=1),
        1: float("nan"),
    }
    assert to_plain(value) == {
        "when": "2026-12-05T00:00:00+00:00",
        "items": [{"sku": "a", "price": "1.50"}],
        "tags": ["x"],
        "raw": {"base64": "AAE="},
        "id": "00000000-0000-0000-0000-000000000001",
        "1": "nan",
    }
