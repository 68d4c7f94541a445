"""The web UI's list page shows each queue's load (issue 19: running, waiting, rate), and a
queued workflow's place and why it waits (slow: a browser)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import durable

from .test_ui_browser import screenshot, ui_serving  # (skips this module without chromium)

pytestmark = pytest.mark.slow

from playwright.sync_api import Page, expect  # noqa: E402

from .test_ui_browser import browser, page  # noqa: E402

__all__ = ["browser", "page"]  # (the fixtures, shared with test_ui_browser)


@durable.workflow(name="ui-queued-job")
async def queued_job(n: int) -> int:
    return n


def test_the_list_page_shows_each_queues_load(tmp_path: Path, page: Page) -> None:
    orders = durable.Queue("orders", concurrency=3, rate=durable.Rate(50, per="1 s"))

    async def enqueue() -> None:
        async with durable.Runtime(tmp_path) as runtime:  # (nobody serves the queue)
            for n in range(2):
                await runtime.enqueue(orders, queued_job, n, id=f"order-{n}")

    with ThreadPoolExecutor(1) as pool:  # (playwright's loop runs in this thread)
        pool.submit(asyncio.run, enqueue()).result()
    with ui_serving(tmp_path) as address:
        page.goto(address)
        loads = page.locator("#queue-loads")
        # (the first answer may take seconds on a loaded machine: wait for it, generously)
        expect(loads).to_contain_text("queue orders", timeout=30_000)
        expect(loads).to_contain_text("0 of 3 running, 0 started and not ended, 2 waiting")
        expect(loads).to_contain_text("(limit 50)")
        expect(page.locator('tr[data-id="order-1"]')).to_contain_text("2 of 2")
        screenshot(page, tmp_path, "queues")
