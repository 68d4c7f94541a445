"""Resume, restart and fork from the web UI, in headless Chromium (slow; see
test_ui_browser.py for the set-up it shares): each asks first, then the page shows the
links (resumed; restarted as / forked to, and forked from on the new run's page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_ui_browser import CHROMIUM_FLAGS, screenshot, ui_serving

pytestmark = pytest.mark.slow

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from .test_ui_browser import browser  # noqa: E402, F401  (the shared fixture)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811
    """A page that fails the test on a script error or a failed request, except the one
    refusal the test asks for (a fork past the end: 400, shown in the dialog)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    yield page
    page.close()
    assert [problem for problem in problems if "status of 400" not in problem] == []
    assert len(problems) <= 1


@pytest.fixture
def ui(sample_dir: Path) -> Iterator[str]:
    """The UI alone: no process runs the workflows, so what the actions make stays put."""
    with ui_serving(sample_dir) as address:
        yield address


def open_workflow(page: Page, address: str, workflow_id: str) -> None:
    page.goto(address)  # (keeps the token)
    page.goto(address.split("?", maxsplit=1)[0] + f"workflows/{workflow_id}")
    expect(page.locator("#title")).to_have_text(workflow_id)


def test_resume_restart_and_fork_ask_first_and_link_the_runs(
    ui: str, page: Page, tmp_path: Path
) -> None:
    assert CHROMIUM_FLAGS  # (the module's set-up ran: chromium is here)
    open_workflow(page, ui, "order-5")
    expect(page.locator("#state .badge")).to_have_text("cancelled")
    page.click("#resume-button")
    expect(page.locator("#operate-dialog")).to_be_visible()
    expect(page.locator("#operate-verb")).to_have_text("Resume")
    screenshot(page, tmp_path, "resume-dialog")
    page.click("#operate-close")  # nothing is done
    expect(page.locator("#operate-dialog")).to_be_hidden()
    expect(page.locator("#facts")).not_to_contain_text("Resumed")
    page.click("#resume-button")
    page.fill("#operate-reason", "the customer came back")
    page.click("#operate-confirm")
    expect(page.locator("#notice")).to_contain_text("Resumed")
    expect(page.locator("#facts")).to_contain_text("the customer came back")
    expect(page.locator("#state .badge")).to_have_text("waiting for event")
    expect(page.locator("#resume-button")).to_be_disabled()  # (not ended any more)

    open_workflow(page, ui, "order-7")
    expect(page.locator("#resume-button")).to_be_disabled()  # (completed: nothing to resume)
    page.click("#fork-button")
    expect(page.locator("#operate-step")).to_be_visible()
    page.check("#operate-from-step")
    page.fill("#operate-at-step", "9")
    page.click("#operate-confirm")
    expect(page.locator("#operate-problem")).to_contain_text("at step 9")  # (refused: shown)
    page.fill("#operate-at-step", "2")
    page.click("#operate-confirm")
    expect(page.locator("#notice")).to_contain_text("Forked as order-7-fork-2")
    expect(page.locator("#facts")).to_contain_text("Forked to")
    page.click("#restart-button")
    expect(page.locator("#operate-step")).to_be_hidden()
    page.fill("#operate-new-id", "order-7-again")
    page.click("#operate-confirm")
    expect(page.locator("#notice")).to_contain_text("Restarted as order-7-again")
    expect(page.locator("#facts")).to_contain_text("Restarted as")
    screenshot(page, tmp_path, "source-links")
    page.click("#notice a#operated-run")
    expect(page.locator("#title")).to_have_text("order-7-again")
    expect(page.locator("#facts")).to_contain_text("Restarted from")
    page.click("#facts a.link-run")
    expect(page.locator("#title")).to_have_text("order-7")
    page.click('#facts a.link-run:has-text("order-7-fork-2")')
    expect(page.locator("#facts")).to_contain_text("Forked from")
    expect(page.locator("#facts")).to_contain_text("step 2")
    screenshot(page, tmp_path, "fork-links")


def test_without_the_token_the_actions_are_disabled(ui: str, browser: Browser) -> None:  # noqa: F811
    page = browser.new_page()
    page.goto(ui.split("?", maxsplit=1)[0] + "workflows/order-2")
    for name in ("resume", "restart", "fork"):
        expect(page.locator(f"#{name}-button")).to_be_disabled()
    page.close()


def test_a_fork_with_an_override_is_checked_then_made(
    sample_dir: Path, page: Page, tmp_path: Path
) -> None:
    with ui_serving(sample_dir, "--code", "tests.visibility.sample_app") as address:
        open_workflow(page, address, "order-2")
        expect(page.locator("#state .badge")).to_have_text("failed")
        page.click("#fork-button")
        expect(page.locator("#operate-override-fields")).to_be_hidden()
        page.check("#operate-override")
        expect(page.locator("#operate-override-fields")).to_be_visible()
        page.fill("#operate-override-step", "0")
        page.fill("#operate-override-value", "pay-forced")  # (not JSON: said, nothing sent)
        page.click("#operate-confirm")
        expect(page.locator("#operate-problem")).to_contain_text("not JSON")
        page.fill("#operate-override-value", "5")  # (the activity returns str: refused)
        page.click("#operate-confirm")
        expect(page.locator("#operate-problem")).to_contain_text("returns str")
        page.fill("#operate-override-value", '"pay-forced"')
        screenshot(page, tmp_path, "fork-override")
        page.click("#operate-confirm")
        expect(page.locator("#notice")).to_contain_text("Forked as order-2-fork-failure-override-0")
        page.click("#notice a#operated-run")
        expect(page.locator("#facts")).to_contain_text("Forked from")
        expect(page.locator("#facts")).to_contain_text("step 0's result overridden")
