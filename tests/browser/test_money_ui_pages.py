"""The back-office pages of this work in Chromium at 1366x768: the customer page's tabs
and ledger days, call search and the call detail page, the outbox's test e-mail button
(CSRF on, a real SMTP server), the switch page, and dates shown ISO / 24-hour on every
page walked. OPS_SCREENSHOTS=<folder> keeps a screenshot of each."""
from __future__ import annotations

import re
import socket

import pytest

from .money_ui_support import CUSTOMER, laptop_page, money_world, screenshot, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

NOT_ISO = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{1,2}:\d{2}(:\d{2})?\s?(AM|PM|am|pm)\b")


def assert_iso_dates(page, url: str) -> None:
    text = page.inner_text("body")
    assert not NOT_ISO.search(text), (url, NOT_ISO.search(text).group(0))
    for field in page.locator("input[name^=date_], input[name$=_from], input[name$=_to]").all():
        assert field.get_attribute("type") == "text", url


def test_customer_page_summary_and_tabs(money_world, laptop_page):
    page, w = laptop_page, money_world
    sign_in(page, w.base)
    page.goto(f"{w.base}/admin/customers/{w.acme}")
    summary = page.locator("[data-summary]")
    assert summary.locator("[data-stat=balance]").inner_text() == "96.80 EUR"      # 96.87035 - 0.07175
    assert summary.locator("[data-stat=balance] .money").get_attribute("title") == "exact: 96.7986 EUR"
    assert summary.locator("[data-stat=reserved]").inner_text() == "1.23 EUR"
    assert summary.locator("[data-stat=live]").inner_text().replace(" ", "") == "1/8"
    # the summary sits above the tabs, within the first screen
    assert page.locator("[data-customer-tabs]").bounding_box()["y"] < 768
    screenshot(page, "customer-overview")
    for tab in ("endpoints", "users", "rules", "ledger", "invoices", "calls", "reports"):
        page.click(f"[data-customer-tabs] [data-tab={tab}]")
        page.wait_for_load_state()
        assert page.locator(f"[data-customer-tabs] [data-tab={tab}]").get_attribute("aria-current") == "page"
        assert_iso_dates(page, tab)
        screenshot(page, f"customer-{tab}")
    # ledger: a line per day; opening a day lists its entries beneath it
    page.click("[data-customer-tabs] [data-tab=ledger]")
    days = page.locator("[data-ledger-days] tr[data-day]")
    assert days.count() >= 1 and page.locator("[data-day-entries]").count() == 0
    page.locator("[data-open-day]").first.click()
    page.wait_for_selector("[data-day-entries]")
    assert "adjustment" in page.locator("[data-day-entries]").inner_text()
    screenshot(page, "customer-ledger-day")
    assert page.problems == []


def test_call_search_and_detail(money_world, laptop_page):
    page, w = laptop_page, money_world
    sign_in(page, w.base)
    page.goto(f"{w.base}/admin/cdrs")
    page.fill("input[name=number]", "+4670")
    page.select_option("select[name=number_in]", "caller")
    page.click("button:has-text('Filter')")
    page.wait_for_selector("[data-cdr-table]")
    rows = page.locator("[data-cdr-table] tbody tr")
    assert rows.count() == 1
    assert "France Mobile · prefix 336" in rows.first.inner_text()
    screenshot(page, "cdrs-search")
    page.fill("input[name=number]", "1234")
    page.select_option("select[name=match]", "contains")
    page.select_option("select[name=number_in]", "either")
    page.click("button:has-text('Filter')")
    page.wait_for_selector("[data-cdr-table]")
    # a contains search runs over the last 31 days, written into the form
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", page.input_value("input[name=date_from]"))
    assert page.locator("[data-cdr-table] tbody tr").count() >= 1
    page.click(f"[data-cdr-id='{w.answered_cdr}'] td:first-child a")
    page.wait_for_selector("[data-section=routes]")
    assert page.locator("[data-route]").count() == 2
    assert "not recorded" in page.locator("[data-route='1']").inner_text()
    assert "carrier-b" in page.locator("[data-route='2']").inner_text()
    assert "0.0932 EUR" in page.locator("[data-section=sell]").inner_text()
    assert "0.0558 EUR" in page.locator("[data-section=cost]").inner_text()   # margin 0.0932 - 0.0374
    page.click("summary:has-text('Raw CDR')")
    assert_iso_dates(page, "detail")
    screenshot(page, "cdr-detail")
    assert page.problems == []


def test_send_test_email_button(money_world, laptop_page):
    from aiosmtpd.controller import Controller

    class Collector:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    page, w = laptop_page, money_world
    sign_in(page, w.base)
    page.goto(f"{w.base}/admin/mail")
    assert "SMTP is not configured." in page.locator("[data-smtp]").inner_text()
    screenshot(page, "mail-not-configured")
    page.fill("[data-test-mail] input[name=to_addr]", "noc@operator.example")
    page.click("[data-test-mail] button[type=submit]")
    page.wait_for_load_state()
    alert = page.locator(".alert-danger").first.inner_text()
    assert "was not sent" in alert and "Errno" not in alert.split("Technical detail")[0]
    screenshot(page, "mail-test-failed")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    w.app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_FROM="billing@operator.example")
    try:
        page.goto(f"{w.base}/admin/mail")
        assert f"127.0.0.1:{port}" in page.locator("[data-smtp]").inner_text()
        page.fill("[data-test-mail] input[name=to_addr]", "noc@operator.example")
        page.click("[data-test-mail] button[type=submit]")
        page.wait_for_selector(".alert-success")
        assert "Test e-mail sent to noc@operator.example" in page.locator(".alert-success").inner_text()
        assert len(handler.messages) == 1 and handler.messages[0].rcpt_tos == ["noc@operator.example"]
        screenshot(page, "mail-test-sent")
    finally:
        controller.stop()
    assert page.problems == []


def test_switch_page_says_what_to_configure(money_world, laptop_page):
    page, w = laptop_page, money_world
    sign_in(page, w.base)
    page.goto(f"{w.base}/admin/switch")
    setup = page.locator("[data-switch-setup]").inner_text()
    for name in ("ESL_HOST", "ESL_PORT", "ESL_PASSWORD", "ESL_SOFIA_PROFILE"):
        assert name in setup
    screenshot(page, "switch-not-configured")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    w.app.config.update(ESL_HOST="127.0.0.1", ESL_PORT=dead)
    try:
        page.goto(f"{w.base}/admin/switch")
        assert f"Nothing listens at 127.0.0.1:{dead}" in page.locator("[data-switch-error]").inner_text()
        screenshot(page, "switch-unreachable")
    finally:
        w.app.config.update(ESL_HOST=None)
    assert page.problems == []


def test_pages_show_iso_dates_and_the_time_zone(money_world, laptop_page):
    page, w = laptop_page, money_world
    sign_in(page, w.base)
    for url in ("/admin/dashboard", "/admin/cdrs", "/admin/reports", "/admin/endpoints", "/admin/users",
                "/admin/routing-rules", "/admin/invoices", "/admin/jobs", "/admin/audit", "/admin/rate-imports"):
        page.goto(w.base + url)
        assert page.locator("[data-timezone]").inner_text().strip() == "UTC"
        assert_iso_dates(page, url)
        screenshot(page, "page" + url.replace("/", "-"))
    page.click("nav.navbar form button[type=submit]")     # sign out
    page.wait_for_load_state()
    sign_in(page, w.base, CUSTOMER)
    for url in ("/my/", "/my/ledger", "/my/cdrs"):
        page.goto(w.base + url)
        assert_iso_dates(page, url)
        screenshot(page, "selfcare" + url.replace("/", "-"))
    assert page.problems == []
