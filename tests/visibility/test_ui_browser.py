"""The web UI end to end: `durable ui` in a subprocess, headless Chromium driven by Playwright.

The journals come from real runs (sample_app); a second process runs the unfinished
workflows, as a service would, so sending an event and cancelling from the page really
reach them. Screenshots land in the test's tmp_path (and in $DURABLE_SCREENSHOTS if set).
Needs Debian's chromium: skipped without it, except under CI, where .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must have Debian's chromium for the browser tests (.ci/run)")
    pytest.skip("no chromium here (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

import durable  # noqa: E402
from durable._encoding import encode  # noqa: E402
from durable._storage._directory import JournalDirectory  # noqa: E402

APP = Path(__file__).with_name("sample_app.py")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def started(command: list[str], ready: str) -> tuple[subprocess.Popen[str], str]:
    """Start a process; return it with the first line of its output that contains `ready`."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=APP.parents[2]
    )
    assert process.stdout is not None
    for line in process.stdout:
        if ready in line:
            return process, line.strip()
    process.wait()
    raise AssertionError(f"{command} ended without saying {ready!r} (exit {process.returncode})")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def ui_serving(directory: Path, *options: str) -> Iterator[str]:
    """`durable ui` on `directory`; yields the address it printed (with its token)."""
    port = free_port()
    ui, line = started(
        [
            sys.executable,
            "-m",
            "durable",
            "ui",
            "--dir",
            str(directory),
            "--port",
            str(port),
            *options,
        ],
        "durable ui:",
    )
    try:
        match = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        assert match is not None, line
        yield match.group(1)
    finally:
        stop(ui)


@pytest.fixture
def served(sample_dir: Path) -> Iterator[str]:
    """The UI's address, while a runner process holds the unfinished workflows."""
    runner, _ = started([sys.executable, str(APP), str(sample_dir)], "resumed")
    try:
        with ui_serving(sample_dir) as address:
            yield address
    finally:
        stop(runner)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    yield page
    page.close()
    assert problems == []


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=tmp_path / f"{name}.png", full_page=True)
    if keep := os.environ.get("DURABLE_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(keep) / f"{name}.png", full_page=True)


def test_the_list_shows_every_workflow_and_filters(served: str, page: Page, tmp_path: Path) -> None:
    page.goto(served)
    rows = page.locator("#workflows tbody tr")
    expect(rows).to_have_count(5)
    expect(page.locator("#count")).to_have_text("1\u20135 of 5 workflows")
    for workflow_id in ("order-2", "order-3", "order-4", "order-5", "order-7"):
        expect(page.locator(f'tr[data-id="{workflow_id}"]')).to_be_visible()
    expect(page.locator('tr[data-id="order-2"] .badge')).to_have_text("failed")
    expect(page.locator('tr[data-id="order-2"]')).to_contain_text("CardDeclined")
    screenshot(page, tmp_path, "list")
    assert "token" not in page.url  # kept in the browser, out of the address bar and history
    page.select_option("#status", "failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("order-2")
    page.select_option("#status", "")
    page.fill("#search", "order-7")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("order-7")


def test_a_detail_page_shows_the_steps(served: str, page: Page, tmp_path: Path) -> None:
    page.goto(served)
    page.click('a[href="/workflows/order-7"]')
    expect(page.locator("#title")).to_have_text("order-7")
    expect(page.locator("#state .badge")).to_have_text("completed")
    expect(page.locator(".tl-row")).to_have_count(4)
    expect(page.locator('.tl-row[data-step="0"]')).to_contain_text("charge_payment")
    expect(page.locator('.tl-row[data-step="0"] .tl-bar.bad')).to_have_count(2)  # 2 failed tries
    expect(page.locator("#outcome")).to_contain_text("shipped 7 (auto)")
    page.click('.tl-row[data-step="0"]')
    detail = page.locator(".tl-detail")
    expect(detail).to_contain_text("ConnectionError: payment API timed out (attempt 1)")
    expect(detail).to_contain_text('"pay-7"')
    screenshot(page, tmp_path, "completed")
    page.goto(served.split("?", maxsplit=1)[0] + "workflows/order-2")
    expect(page.locator("#outcome")).to_contain_text("CardDeclined")
    page.click("#outcome summary")
    expect(page.locator("#outcome pre")).to_contain_text("Traceback")
    screenshot(page, tmp_path, "failed")


def test_sending_an_event_from_the_page(served: str, page: Page, tmp_path: Path) -> None:
    page.goto(served)  # (keeps the token)
    page.goto(served.split("?", maxsplit=1)[0] + "workflows/order-3")
    expect(page.locator("#state .badge")).to_have_text("waiting for event")
    page.click("#send-button")
    expect(page.locator("#event-name")).to_have_value("approved")  # what it waits for
    page.fill("#event-payload", "{not json")
    page.click("#send-confirm")
    expect(page.locator("#send-problem")).to_contain_text("not JSON")
    page.fill("#event-payload", '"from the browser"')
    screenshot(page, tmp_path, "send-dialog")
    page.click("#send-confirm")
    expect(page.locator("#notice")).to_contain_text('Event "approved" sent.')
    # The runner process takes it; the page follows live until the workflow ends.
    expect(page.locator("#state .badge")).to_have_text("completed", timeout=15_000)
    expect(page.locator("#outcome")).to_contain_text("shipped 3 (from the browser)")
    expect(page.locator("#send-button")).to_be_disabled()
    screenshot(page, tmp_path, "after-event")


def test_cancelling_from_the_page_asks_first(served: str, page: Page, tmp_path: Path) -> None:
    page.goto(served)
    page.goto(served.split("?", maxsplit=1)[0] + "workflows/order-4")
    expect(page.locator("#state .badge")).to_have_text("sleeping")
    page.click("#cancel-button")
    expect(page.locator("#cancel-dialog")).to_be_visible()
    screenshot(page, tmp_path, "cancel-dialog")
    page.click("#cancel-close")  # "Keep it running": nothing is sent
    expect(page.locator("#cancel-dialog")).to_be_hidden()
    page.click("#cancel-button")
    page.fill("#cancel-reason", "customer called")
    page.click("#cancel-confirm")
    expect(page.locator("#notice")).to_contain_text("Cancellation sent")
    expect(page.locator("#state .badge")).to_have_text("cancelled", timeout=15_000)
    expect(page.locator("#outcome")).to_contain_text("customer called")
    screenshot(page, tmp_path, "cancelled")


def test_without_the_token_the_page_reads_nothing(served: str, browser: Browser) -> None:
    page = browser.new_page()  # (not the fixture's: the refused reads log errors, rightly)
    page.goto(served.split("?", maxsplit=1)[0] + "workflows/order-3")
    expect(page.locator("#problem")).to_contain_text("open the address it printed")
    expect(page.locator("#send-button")).to_be_disabled()
    expect(page.locator("#cancel-button")).to_be_disabled()
    expect(page.locator("#state .badge")).to_have_count(0)
    expect(page.locator("#arguments")).to_have_text("")
    page.goto(served.split("?", maxsplit=1)[0])
    expect(page.locator("#problem")).to_contain_text("open the address it printed")
    expect(page.locator("#workflows tbody tr")).to_have_count(0)
    page.close()


BULKY = {"lines": [f"line {index} " + "z" * 100 for index in range(20_000)]}  # 2.2 MB


@pytest.fixture
def bulky_inbox(sample_dir: Path) -> Path:
    """The sample, with a 2 MB event pending for order-4 (sent before the browser starts)."""

    async def send() -> None:
        async with durable.Runtime(sample_dir) as runtime:
            await runtime.send_event("order-4", "bulky", BULKY)

    asyncio.run(send())
    return sample_dir


@pytest.fixture
def bulky_served(bulky_inbox: Path) -> Iterator[str]:
    """The UI on `bulky_inbox`; a fixture so that it stops after the page has closed (a page
    still polling a stopped server logs a refused connection)."""
    with ui_serving(bulky_inbox) as address:
        yield address


def test_a_long_payload_comes_cut_and_saves_whole(
    bulky_served: str, page: Page, tmp_path: Path
) -> None:
    address = bulky_served
    page.goto(address)
    page.goto(address.split("?")[0] + "workflows/order-4")
    row = page.locator('#inbox tr[data-position="0"]')
    expect(row).to_contain_text('{"lines": ["line 0 zzz')
    expect(row).to_contain_text("…")
    with page.expect_download() as downloading:
        row.locator("button.whole").click()
    saved = tmp_path / "saved.json"
    downloading.value.save_as(saved)
    assert json.loads(saved.read_text()) == BULKY
    assert downloading.value.suggested_filename == "order-4-inbox-0-payload.json"


@pytest.fixture
def long_history(tmp_path: Path) -> Path:
    """A directory with one finished workflow of 20,000 steps (written before the browser
    starts: Playwright's sync API holds this thread's event loop)."""

    async def write(steps: int) -> None:
        async with JournalDirectory(tmp_path / "big") as store:
            journal = await store.open("long")
            start = {"k": "start", "v": 2, "wf": "w", "id": "long", "args": [], "t": 1e9, "seed": 1}
            journal.write(encode(start))
            for step in range(steps):
                done = {"k": "done", "s": step, "a": "step", "d": "x", "n": 1, "r": step, "t": 1e9}
                journal.write(encode(done))
            journal.write(encode({"k": "end", "r": None, "t": 1e9 + 1}))
            await journal.close()

    asyncio.run(write(20_000))
    return tmp_path / "big"


@pytest.fixture
def long_served(long_history: Path) -> Iterator[str]:
    with ui_serving(long_history) as address:
        yield address


def test_a_long_history_comes_a_page_at_a_time(long_served: str, page: Page) -> None:
    address = long_served
    page.goto(address)  # (keeps the token)
    page.goto(address.split("?")[0] + "workflows/long")
    expect(page.locator(".tl-row")).to_have_count(200)  # the latest page
    expect(page.locator("#step-range")).to_have_text("steps 19800\u201319999 of 20000")
    page.click("#first")
    expect(page.locator('.tl-row[data-step="0"]')).to_be_visible()
    page.click("#later")
    expect(page.locator("#step-range")).to_have_text("steps 200\u2013399 of 20000")


SCHEDULE_APP = Path(__file__).with_name("schedule_sample_app.py")


@pytest.fixture
def schedule_served(tmp_path: Path) -> Iterator[str]:
    """The UI's address, while a process runs the schedule "reports" (and takes commands)."""
    directory = tmp_path / "journals"
    runner, _ = started([sys.executable, str(SCHEDULE_APP), str(directory)], "started")
    try:
        with ui_serving(directory) as address:
            yield address
    finally:
        stop(runner)


def test_pausing_and_resuming_a_schedule_asks_first(
    schedule_served: str, page: Page, tmp_path: Path
) -> None:
    page.goto(schedule_served)  # (keeps the token)
    page.click('a[href="/schedules"]')
    row = page.locator('#schedules tr[data-name="reports"]')
    expect(row).to_contain_text('cron "0 2 * * *" · Europe/Berlin')
    expect(row.locator(".badge").first).to_have_text("active")
    screenshot(page, tmp_path, "schedules")
    row.locator('a[href="/schedules/reports"]').click()
    expect(page.locator("#title")).to_have_text("reports")
    expect(page.locator("#state .badge")).to_have_text("active")
    expect(page.locator("#next tbody tr")).to_have_count(10)
    outcome = page.locator("#recent tbody tr").first  # (the trigger the app sent at start)
    expect(outcome).to_contain_text("completed", timeout=15_000)
    expect(outcome.locator("a")).to_have_text(re.compile(r"^reports@"))
    expect(page.locator("#resume-button")).to_be_disabled()

    page.click("#pause-button")
    expect(page.locator("#pause-dialog")).to_be_visible()
    page.click("#pause-close")  # "Keep it firing": nothing is sent
    expect(page.locator("#pause-dialog")).to_be_hidden()
    expect(page.locator("#notice")).to_be_empty()
    page.click("#pause-button")
    page.fill("#pause-note", "month-end audit")
    screenshot(page, tmp_path, "pause-dialog")
    page.click("#pause-confirm")
    expect(page.locator("#notice")).to_contain_text("Pause sent")
    # The process running the schedule takes it; the page follows live.
    expect(page.locator("#state .badge")).to_have_text("paused", timeout=15_000)
    expect(page.locator("#facts")).to_contain_text("month-end audit")
    expect(page.locator("#next")).to_contain_text("None while paused.")
    expect(page.locator("#pause-button")).to_be_disabled()
    screenshot(page, tmp_path, "schedule-paused")

    page.click("#resume-button")
    expect(page.locator("#resume-dialog")).to_be_visible()
    page.click("#resume-confirm")
    expect(page.locator("#notice")).to_contain_text("Resume sent")
    expect(page.locator("#state .badge")).to_have_text("active", timeout=15_000)
    expect(page.locator("#next tbody tr")).to_have_count(10)
    expect(page.locator("#resume-button")).to_be_disabled()
    screenshot(page, tmp_path, "schedule-resumed")
    page.locator("#recent tbody tr a").first.click()  # (to the fire's workflow page)
    expect(page.locator("#title")).to_have_text(re.compile(r"^reports@"))
    expect(page.locator("#state .badge")).to_have_text("completed")
