"""Every self-care page in Debian's Chromium (through Playwright): it renders, has a
heading, and the browser reports no error — in particular no Content-Security-Policy
violation (inline scripts and styles are forbidden) and no missing asset."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import serving

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@pytest.fixture()
def live_portal(fresh_db):
    """The portal on a free port over a committed database with customers A and B."""
    from portal import create_app
    from portal.config import TestingConfig
    from portal.extensions import db

    from .conftest import build_world

    app = create_app(TestingConfig, DATABASE_URL=fresh_db)
    with app.app_context():
        world = build_world()
        ids = {"a_sip": world.a.sip.id}
        db.session.commit()
    with serving(app) as base_url:
        yield base_url, ids


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_every_selfcare_page_renders_cleanly_in_chromium(live_portal):
    sync_api = pytest.importorskip("playwright.sync_api")
    from .conftest import A_EMAIL, B_MARKERS
    from tests.conftest import CUSTOMER_PASSWORD

    base, ids = live_portal
    pages = ["/my/", "/my/ledger", "/my/ledger?view=days", "/my/cdrs?date_from=", "/my/rates", "/my/rates?q=4477",
             "/my/endpoints", f"/my/endpoints/{ids['a_sip']}/password", "/my/settings", "/my/settings/password"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            problems = []
            # A failed load is reported with its URL by the response handler (the console
            # message has none, so the favicon, which the portal does not have, is told apart there).
            page.on("console", lambda m: problems.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            page.goto(base + "/login")
            page.fill("#email", A_EMAIL)
            page.fill("#password", CUSTOMER_PASSWORD)
            page.click("#submit")
            page.wait_for_url(base + "/my/")
            for url in pages:
                page.goto(base + url)
                assert page.locator("h1").count() >= 1, url
                text = page.inner_text("body").lower()
                assert not any(marker in text for marker in B_MARKERS), url
                assert problems == [], f"{url}: {problems}"
            # The SIP password form asks for confirmation before it changes anything.
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
            page.goto(base + f"/my/endpoints/{ids['a_sip']}/password")
            page.fill("#password", "Blue-Harbor-42x")
            page.fill("#confirm", "Blue-Harbor-42x")
            page.click("#submit")
            page.wait_for_url(base + "/my/endpoints")
            assert dialogs and "alpha100" in dialogs[0]
            assert "The SIP password of alpha100 is changed" in page.inner_text("body")
        finally:
            browser.close()
