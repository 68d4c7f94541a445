"""The web UI in a browser where a new user first snagged: an unknown id, an unreadable
journal, runs from an earlier day, a narrow window. `durable ui` in a subprocess, headless
Chromium (see test_ui_browser, whose fixtures these share)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

import durable
from durable._encoding import decode, encode

from . import test_ui_browser as shared  # (skips this module too where there is no chromium)

pytestmark = pytest.mark.slow
browser = shared.browser
page = shared.page
DAY = 24 * 3600.0


async def write_an_older_run(directory: Path, workflow_id: str, days: float) -> None:
    """order-7's journal as if it had run `days` ago, under `workflow_id`."""
    async with durable.JournalDirectory(directory) as store:
        journal = await store.open(workflow_id)
        for stored in await store.read("order-7"):
            record = decode(stored.payload, path="order-7", offset=stored.offset)
            for field in ("t", "b", "at"):
                if field in record:
                    record[field] -= days * DAY
            if record["k"] == "start":
                record["id"] = workflow_id
            journal.write(encode(record))
        await journal.close()


@pytest.fixture
def odd_journals(sample_dir: Path) -> Path:
    """The sample, plus a run from three days ago and a journal damaged in place."""
    asyncio.run(write_an_older_run(sample_dir, "order-old", days=3))
    damaged = sample_dir / "order-4.journal"
    data = bytearray(damaged.read_bytes())
    data[40] ^= 0xFF  # (a frame's bytes, with valid frames after it: damage, not a torn tail)
    damaged.write_bytes(bytes(data))
    shutil.copyfile(sample_dir / "order-7.journal", sample_dir / "copied.journal")
    (sample_dir / "copied.journal").chmod(0o600)
    return sample_dir


@pytest.fixture
def served(odd_journals: Path) -> Iterator[str]:
    with shared.ui_serving(odd_journals) as address:
        yield address


def workflow_page(address: str, workflow_id: str) -> str:
    return address.split("?", maxsplit=1)[0] + "workflows/" + workflow_id


@pytest.mark.parametrize(
    ("workflow_id", "title", "why"),
    [
        ("order-999", "No such workflow", "no workflow 'order-999' in "),
        ("order-4", "This workflow's journal cannot be read", "order-4.journal is corrupted"),
        ("copied", "This workflow's journal cannot be read", "copied.journal holds frames"),
    ],
)
def test_a_workflow_that_cannot_be_shown_says_why_and_offers_nothing(
    served: str, browser: Browser, tmp_path: Path, workflow_id: str, title: str, why: str
) -> None:
    page = browser.new_page()  # (not the fixture's: the 404/422 reads log errors, rightly)
    page.goto(served)  # (keeps the token)
    page.goto(workflow_page(served, workflow_id))
    problem = page.locator("#problem .unavailable")
    expect(problem).to_contain_text(title)
    expect(problem).to_contain_text(why)
    expect(page.locator("#content")).to_be_hidden()  # (no empty facts, timeline, arguments)
    expect(page.locator("#send-button")).to_be_disabled()
    expect(page.locator("#cancel-button")).to_be_disabled()
    shared.screenshot(page, tmp_path, f"unavailable-{workflow_id}")
    page.close()


def test_runs_older_than_today_show_their_dates(served: str, page: Page, tmp_path: Path) -> None:
    page.goto(served)
    row = page.locator('tr[data-id="order-old"]')
    expect(row).to_be_visible()
    three_days_ago = page.evaluate(
        "new Date(Date.now() - 3 * 86400e3).toLocaleDateString(undefined, {dateStyle: 'medium'})"
    )
    # (the cells by their class: the selection's checkbox column came first and moved them)
    expect(page.locator("#workflows th.started")).to_have_text("Started")
    expect(row.locator("td.started")).to_contain_text(three_days_ago)
    today = page.locator('tr[data-id="order-7"] td.started')
    expect(today).not_to_contain_text(three_days_ago)
    expect(today).not_to_be_empty()  # (today's: the time alone)
    page.goto(workflow_page(served, "order-old"))
    expect(page.locator("#facts")).to_contain_text(three_days_ago)
    page.click('.tl-row[data-step="0"]')  # its attempts: each began when?
    expect(page.locator(".tl-detail table")).to_contain_text(three_days_ago)
    shared.screenshot(page, tmp_path, "older-run")


def test_the_list_fits_a_narrow_window(served: str, browser: Browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 480, "height": 800})
    page.goto(served)
    rows = page.locator("#workflows tbody tr")
    expect(rows).to_have_count(5)
    sizes = page.evaluate(
        """() => {
            const table = document.getElementById("workflows");
            return {
                page: document.documentElement.scrollWidth,
                window: window.innerWidth,
                table: table.getBoundingClientRect().right,
                rows: Math.max(...[...table.rows].map((row) => row.getBoundingClientRect().right)),
            };
        }"""
    )
    shared.screenshot(page, tmp_path, "list-480")
    assert sizes["page"] <= sizes["window"] == 480, sizes
    assert sizes["table"] <= 480, sizes
    assert sizes["rows"] <= 480, sizes
    for workflow_id in ("order-2", "order-old"):  # (its id and its state still show)
        row = page.locator(f'tr[data-id="{workflow_id}"]')
        expect(row.locator("td.id a")).to_be_visible()
        expect(row.locator(".badge")).to_be_visible()
        expect(row.locator("td.pick input")).to_be_visible()
    # the filter form open, a row selected, the bulk dialog up: still no wider than the window
    page.click("#filters summary")
    expect(page.locator('#filter-form input[name="ended_before"]')).to_be_visible()
    page.check('tr[data-id="order-2"] td.pick input')
    expect(page.locator("#selected-count")).to_have_text("1 selected")
    widest = """() => Math.max(document.documentElement.scrollWidth,
        ...[...document.querySelectorAll(
            "#filter-form label, #selection button, #bulk-dialog[open], #bulk-dialog[open] *")]
        .map((node) => node.getBoundingClientRect().right))"""
    assert page.evaluate(widest) <= 480
    page.click("#resume-selected")
    expect(page.locator("#bulk-dialog")).to_be_visible()
    expect(page.locator("#bulk-list")).to_contain_text("order-2")
    shared.screenshot(page, tmp_path, "list-480-dialog")
    assert page.evaluate(widest) <= 480
    page.close()


def test_an_unknown_schedule_says_so_and_offers_nothing(served: str, browser: Browser) -> None:
    page = browser.new_page()  # (the 404 read logs an error, rightly)
    page.goto(served)  # (keeps the token)
    page.goto(served.split("?", maxsplit=1)[0] + "schedules/nightly")
    expect(page.locator("#problem .unavailable")).to_contain_text("No such schedule")
    expect(page.locator("#problem")).to_contain_text("no schedule 'nightly'")
    expect(page.locator("#content")).to_be_hidden()
    for action in ("pause", "resume", "trigger", "backfill", "delete"):
        expect(page.locator(f"#{action}-button")).to_be_disabled()
    page.close()
