"""The list page's filters and bulk cancel in a real browser (Debian's chromium): slow."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from durable._catalog import Catalog
from tests.query_fleet import make_directory

from .test_ui_browser import browser, page, screenshot, ui_serving  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

from playwright.sync_api import Page, expect  # noqa: E402 (after test_ui_browser's skip)


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    directory = tmp_path / "journals"
    asyncio.run(make_directory(directory))
    return directory


def cancels(directory: Path, workflow_id: str) -> list[str]:
    """The cancellations in a workflow's inbox (read on a thread: playwright holds a loop)."""

    async def read() -> list[str]:
        async with Catalog(directory) as catalog:
            return [m.name for m in await catalog.inbox(workflow_id) if m.kind == "cancel"]

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def test_filter_select_and_cancel_in_bulk(fleet: Path, page: Page, tmp_path: Path) -> None:  # noqa: F811
    with ui_serving(fleet) as address:
        page.goto(address)
        rows = page.locator("#workflows tbody tr")
        expect(rows).to_have_count(11)
        page.click("#filters summary")
        page.fill('#filter-form input[name="workflow"]', "ship")
        page.click('#filter-form button[type="submit"]')
        expect(rows).to_have_count(3)
        expect(page.locator("#count")).to_have_text("1\u20133 of 3 matching")
        assert "workflow=ship" in page.url  # (a filtered view can be shared)
        page.check('tr[data-id="ship-0"] td.pick input')
        page.check('tr[data-id="ship-1"] td.pick input')
        expect(page.locator("#selected-count")).to_have_text("2 selected")
        page.click("#cancel-selected")
        expect(page.locator("#bulk-dialog")).to_be_visible()
        expect(page.locator("#bulk-count")).to_contain_text("2 workflows")
        screenshot(page, tmp_path, "bulk-dialog")
        page.click("#bulk-close")  # "Keep them running": nothing is sent
        expect(page.locator("#bulk-dialog")).to_be_hidden()
        assert (cancels(fleet, "ship-0")) == []
        page.click("#cancel-selected")
        page.fill("#bulk-reason", "browser test")
        page.click("#bulk-confirm")
        expect(page.locator("#bulk-notice")).to_contain_text("2 cancellations sent")
        expect(page.locator("#selected-count")).to_have_text("")
        for done in ("ship-0", "ship-1"):  # (no box left checked that is no longer selected)
            expect(page.locator(f'tr[data-id="{done}"] td.pick input')).not_to_be_checked()
        expect(page.locator("#cancel-selected")).to_be_disabled()
        sent = cancels(fleet, "ship-0")
        assert len(sent) == 1
        assert sent[0].startswith("browser test (bulk cancel ")
        assert sent[0].endswith(", by web UI (127.0.0.1))")
        assert (cancels(fleet, "ship-2")) == []
        # every one the filter matches: the dialog says how many first
        page.click("#cancel-matching")
        expect(page.locator("#bulk-count")).to_contain_text("3 workflows")
        page.click("#bulk-close")
        screenshot(page, tmp_path, "bulk-done")


def test_resume_and_fork_selected_through_the_same_dialog(
    fleet: Path,
    page: Page,  # noqa: F811
) -> None:
    with ui_serving(fleet) as address:
        page.goto(address)
        page.check('tr[data-id="pay-01"] td.pick input')
        page.check('tr[data-id="pay-00"] td.pick input')
        page.click("#resume-selected")
        expect(page.locator("#bulk-verb")).to_have_text("Resume")
        expect(page.locator("#bulk-count")).to_contain_text("1 workflow")
        expect(page.locator("#bulk-skipped")).to_contain_text("pay-00: completed")
        page.click("#bulk-confirm")
        expect(page.locator("#bulk-notice")).to_contain_text("1 resumed")
        # fork: the completed one from a step (the dialog's choice re-runs the dry run)
        page.check('tr[data-id="pay-00"] td.pick input')
        page.click("#fork-selected")
        expect(page.locator("#bulk-skipped")).to_contain_text("nothing failed to fork from")
        expect(page.locator("#bulk-confirm")).to_be_disabled()
        page.check("#bulk-fork-step")
        expect(page.locator("#bulk-count")).to_contain_text("1 workflow")
        expect(page.locator("#bulk-confirm")).to_be_enabled()
        page.click("#bulk-confirm")
        expect(page.locator("#bulk-notice")).to_contain_text("1 forked")
