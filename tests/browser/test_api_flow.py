"""The API in a real browser: an admin makes a token on the API tokens page (shown
once), the reference page renders the OpenAPI document with the vendored Swagger UI
under the portal's Content-Security-Policy (no console error, nothing fetched from
elsewhere), and the token works from the page's own origin."""
from __future__ import annotations

import pytest

from .ops_support import browser_page, live_server, screenshot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ADMIN = ("api-admin@example.net", "api-admin-password-1")


def test_token_page_reference_page_and_a_call(live_server, browser_page):  # noqa: F811
    base, app = live_server
    from portal.extensions import db
    from tests import factories

    with app.app_context():
        factories.user(*ADMIN, role="admin")
        factories.customer(name="acme", balance="12.5")
        db.session.commit()
    page = browser_page
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(base + "/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit], input[type=submit]")
    page.goto(base + "/admin/api-tokens")
    page.fill("#name", "NOC dashboard")
    page.select_option("#scope", "read")
    page.click("text=Create token")
    token = page.input_value("#api-token")
    assert token.startswith("vbk_") and len(token) == 47
    screenshot(page, "api-token-created")
    page.goto(base + "/admin/api-tokens")
    assert token not in page.content() and "NOC dashboard" in page.content()

    problems.clear()                 # from here on: the reference page alone
    page.goto(base + "/api/v1/docs")
    page.wait_for_selector(".opblock-tag")
    assert page.locator(".opblock-tag").count() >= 10
    assert "VoIP billing API" in page.inner_text(".info")
    screenshot(page, "api-reference")
    answer = page.evaluate("""async (token) => {
        const r = await fetch('/api/v1/customers', {headers: {Authorization: 'Bearer ' + token}});
        return [r.status, await r.json()];
    }""", token)
    assert answer[0] == 200 and answer[1]["items"][0]["balance"] == "12.500000"
    assert problems == [], problems
    assert all(url.startswith(base) or url.startswith("data:") for url in requests), \
        [u for u in requests if not u.startswith(base)]
