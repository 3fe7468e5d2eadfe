"""Headless Chromium (Debian's package) driven by Playwright against a live server."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("KINSHIP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def chromium():
    """One browser per test module: Playwright's sync API runs an event loop in this
    thread while it lives, which async tests elsewhere must not find there."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Chromium at {CHROMIUM} for the browser tests")
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium to run browser tests")
    # Playwright's sync API runs an event loop in this thread; the live server and
    # the test's own ORM calls are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser context whose requests must all stay on the live server."""
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    foreign: list[str] = []
    dialogs: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server.url, "data:"))
            else foreign.append(request.url)
        ),
    )
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.foreign_requests = foreign
    page.dialogs = dialogs
    yield page
    context.close()
    assert foreign == [], f"requests left the site: {foreign}"
    assert dialogs == [], f"a dialog opened: {dialogs}"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    """Migrated databases for the modules' own servers (tests/e2e/servers.py)."""
    from .servers import Databases

    found = Databases(tmp_path_factory.mktemp("e2e-databases"))
    yield found
    found.close()
