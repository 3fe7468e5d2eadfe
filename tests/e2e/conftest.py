"""Headless Chromium (Debian's package) driven by Playwright against a live server."""

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

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
        yield SameOriginBrowser(browser)
        browser.close()


# Requests any test's pages made to another origin than the site's, until a test reports them.
FOREIGN_REQUESTS: list[str] = []
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _origin(url: str) -> str | None:
    """'ws://127.0.0.1:8000/ws/x' -> 'http://127.0.0.1:8000'; None for data: and blob: URLs,
    which load nothing from anywhere."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def watch_origin(page) -> None:
    """Record every request and WebSocket of ``page`` that leaves the site's origin: the
    loopback server its first navigation went to."""
    site: list[str] = []

    def seen(url: str) -> None:
        origin = _origin(url)
        if origin is None:
            return
        if not site and urlsplit(origin).hostname in _LOOPBACK_HOSTS:
            site.append(origin)
        if origin not in site:
            FOREIGN_REQUESTS.append(url)

    page.on("request", lambda request: seen(request.url))
    page.on("websocket", lambda socket: seen(socket.url))


class SameOriginBrowser:
    """The browser, with every page of every context watched by ``watch_origin``."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        context.on("page", watch_origin)
        return context

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)
        watch_origin(page)
        return page

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def _no_foreign_requests():
    """Fail any browser test whose pages asked another origin for anything."""
    yield
    foreign = FOREIGN_REQUESTS.copy()
    FOREIGN_REQUESTS.clear()
    assert foreign == [], f"requests left the site's origin: {foreign}"


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
