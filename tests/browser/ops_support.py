"""Browser fixtures of the operations flow (a module, not conftest.py, so other areas keep their own): the portal served by werkzeug in a thread on a free localhost port,
against a committed database of its own (fresh_db), and Debian's Chromium via Playwright."""
from __future__ import annotations

import os

import pytest

from tests.conftest import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture()
def live_server(fresh_db, tmp_path):
    """(base_url, app) of a portal with CSRF on and background rate imports, like production."""
    from portal import create_app
    from portal.config import TestingConfig

    app = create_app(TestingConfig, DATABASE_URL=fresh_db, WTF_CSRF_ENABLED=True, RATE_IMPORT_INLINE=False)
    app.instance_path = str(tmp_path / "instance")
    with serving(app) as base_url:
        yield base_url, app


@pytest.fixture()
def browser_page():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()
        browser.close()


def record_problems(page, expected_failures: tuple[str, ...] = ()) -> list[str]:
    """The list that collects, as the page is used, its console errors and every answer
    of 400 or more (not the favicon, nor answers whose URL contains one of
    `expected_failures`): a test ends by asserting it is empty."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            and not any(part in r.url for part in expected_failures) else None)
    return problems


def screenshot(page, name: str) -> None:
    """Screenshots for people checking the pages: only when OPS_SCREENSHOTS names a folder."""
    folder = os.environ.get("OPS_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
