"""A workflow's streams in the web UI: the API's snapshot (counts, a page of values, cut
short when long) and, in Chromium, the panel on the workflow page following them live."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import durable
from durable._ui import create_app
from durable._ui._answers import VALUE_LIMIT

TOKEN = "test-token"
HEADERS = {"X-Durable-Token": TOKEN}
WORDS = durable.Stream("words", str)
LOG = durable.Stream("log")


@durable.activity
async def say(words: list[str]) -> None:
    for word in words:
        WORDS.append(word)


@durable.workflow
async def talker(first: list[str]) -> None:
    LOG.append({"phase": "start"})
    await say(first)
    LOG.append("x" * (VALUE_LIMIT + 10))
    while (more := await durable.wait_for_event("more")) is not None:
        await say([more])


def test_the_api_gives_counts_and_a_page_of_one_stream(tmp_path: Path) -> None:
    async def make() -> None:
        async with durable.Runtime(tmp_path) as runtime:
            handle = await runtime.start(talker, ["a", "b", "c"], id="t")
            await runtime.send_event("t", "more", None)
            await handle.result()

    asyncio.run(make())
    with TestClient(
        create_app(tmp_path, token=TOKEN), base_url="http://127.0.0.1", headers=HEADERS
    ) as client:
        counts = client.get("/api/workflows/t/streams").json()
        assert counts == {
            "streams": {"log": 2, "words": 3},
            "name": None,
            "offset": 0,
            "items": [],
            "ended": True,
        }
        words = client.get("/api/workflows/t/streams", params={"name": "words", "offset": 1}).json()
        assert [(item["offset"], item["value"], item["attempt"]) for item in words["items"]] == [
            (1, "b", 1),
            (2, "c", 1),
        ]
        log = client.get("/api/workflows/t/streams", params={"name": "log", "limit": 5}).json()[
            "items"
        ]
        assert log[0]["value"] == {"phase": "start"}
        assert log[0]["attempt"] is None
        assert log[1]["truncated"]
        assert len(log[1]["value"]) <= VALUE_LIMIT
        assert client.get("/api/workflows/nobody/streams").status_code == 404
        assert client.get("/api/workflows/t/streams", params={"name": "n" * 300}).status_code == 400
        assert client.get("/api/workflows/t/streams", params={"offset": -1}).status_code == 400
        assert (
            client.get("/api/workflows/t/streams", headers={"X-Durable-Token": "no"}).status_code
            == 403
        )


class _Runner:
    """A runtime on its own loop in a thread, running `talker` (as a service would)."""

    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime = durable.Runtime(directory)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def __call__(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def close(self) -> None:
        self(self.runtime.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[_Runner]:
    running = _Runner(tmp_path / "journals")
    yield running
    running.close()


@pytest.mark.slow
def test_the_workflow_page_follows_its_streams_live(runner: _Runner, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    from .test_ui_browser import CHROMIUM, CHROMIUM_FLAGS, screenshot, ui_serving  # noqa: PLC0415

    runner(runner.runtime.start(talker, ["hello"], id="live"))
    with ui_serving(tmp_path / "journals") as address, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(address)
        page.goto(address.split("?", maxsplit=1)[0] + "workflows/live")
        items = page.locator("#stream-items")
        expect(page.locator("#stream-tabs button")).to_have_count(2)
        expect(items).to_contain_text("phase")  # (the first stream: log)
        page.click("#stream-tabs button:has-text('words')")
        expect(items).to_contain_text("hello")
        runner(runner.runtime.send_event("live", "more", "world"))
        expect(items).to_contain_text("world", timeout=10_000)  # live, without a reload
        expect(page.locator("#stream-tabs")).to_contain_text("words (2)")
        screenshot(page, tmp_path, "streams")
        browser.close()
