"""Back office items of issue 17 in a real browser: a partial rate deck in update and
replace mode (the count to close in red, the typed confirmation), an IP range of
another customer refused beside the field, and an overdue invoice with legal data:
the overdue list, recording a payment, the status that follows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg2
import pytest

from .ops_support import browser_page, live_server, record_problems, screenshot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ADMIN = ("bo-admin@example.net", "bo-admin-password-1")


def _setup(app) -> dict:
    from portal.extensions import db
    from portal.invoices.services import Period, build_draft, issue
    from portal.models import Settings
    from tests import factories
    from tests.invoices.conftest import cdr

    with app.app_context():
        factories.user(*ADMIN, role="admin")
        w = factories.weight("international")
        perm = factories.permission([w], name="standard")
        factories.destination("33", w, name="France")
        card = factories.ratecard("carrier_deck")
        for prefix, rate in (("33", "0.0200"), ("336", "0.0700"), ("44", "0.0150"), ("49", "0.0300")):
            factories.sell_rate(card, prefix, rate)
        acme = factories.customer("acme")
        factories.endpoint(acme, perm, name="acme-pbx", ip="198.51.100.7/32")
        beta = factories.customer("beta")
        s = Settings.get()
        s.company_name, s.company_vat_id, s.company_address = "Demo Telecom SAS", "FR00123456789", "10 rue de la Paix\n75002 Paris"
        s.company_bank_details = "IBAN FR76 3000 6000 0112 3456 7890 189"
        nordic = factories.customer("nordic", billing_type="postpaid", credit_limit=Decimal("1000"),
                                    display_name="Nordic Télécom AB", legal_name="Nordic Telecom Aktiebolag",
                                    address="Box 123\n111 22 Stockholm\nSweden", vat_id="SE556012345601",
                                    email="ap@nordic.example")
        today = datetime.now(timezone.utc)
        three_months_ago = today - timedelta(days=95)
        period = Period.month(three_months_ago.year, three_months_ago.month)
        cdr(nordic, datetime(period.start.year, period.start.month, 3, tzinfo=timezone.utc), "250.000000")
        invoice = issue(build_draft(nordic, period), issued_at=today - timedelta(days=60))
        db.session.commit()
        return {"card": card.id, "beta": beta.id, "perm": perm.id, "invoice": invoice.id, "number": invoice.number,
                "nordic": nordic.id}


def _login(page, base):
    page.goto(f"{base}/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("[type=submit]")
    page.wait_for_url("**/admin/**")


def _current_prefixes(dsn, card_id):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT prefix FROM billing.rates WHERE ratecard_id = %s AND valid_to IS NULL ORDER BY prefix""",
                    (card_id,))
        return [r[0] for r in cur.fetchall()]


def _preview(page, base, card_id, tmp_path, mode: str, effective: str):
    path = tmp_path / f"notice-{mode}.csv"
    path.write_text("prefix,rate\n336,0.0900\n")
    page.goto(f"{base}/admin/rate-imports/new")
    page.select_option("select[name=target]", f"ratecard:{card_id}")
    page.set_input_files("input[name=deck]", str(path))
    page.click("input[type=submit][value=Upload]")
    page.wait_for_url("**/mapping")
    assert page.locator("select[name=mode]").input_value() == "update"          # the default
    page.select_option("select[name=mode]", mode)
    page.fill("input[name=effective_from]", effective)
    screenshot(page, f"bo-rate-mapping-{mode}")
    page.click("input[type=submit][value='Preview changes']")
    page.wait_for_url("**/rate-imports/*")


def test_backoffice_flow(live_server, browser_page, fresh_db, tmp_path):
    base, app = live_server
    ids = _setup(app)
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    problems = record_problems(page)
    _login(page, base)

    # A carrier's one-line notice in update mode: the three other prefixes are kept.
    _preview(page, base, ids["card"], tmp_path, "update", "2026-01-01T00:00")
    assert page.locator("[data-count=kept]").inner_text() == "3"
    assert page.locator("[data-count=removed]").count() == 0
    screenshot(page, "bo-rate-preview-update")
    page.click("button:has-text('Import 1 rate')")
    page.wait_for_selector("text=Imported 1 lines", timeout=30000)
    assert _current_prefixes(fresh_db, ids["card"]) == ["33", "336", "44", "49"]

    # The same notice in replace mode: 3 to close, in red, imported only with "3" typed.
    _preview(page, base, ids["card"], tmp_path, "replace", "2026-02-01T00:00")
    removed = page.locator("[data-count=removed]")
    assert removed.inner_text() == "3"
    assert removed.evaluate("e => getComputedStyle(e).color") == "rgb(220, 53, 69)"          # Bootstrap's danger red
    assert page.locator("[data-import-mode=replace] strong").evaluate("e => getComputedStyle(e).color") == "rgb(220, 53, 69)"
    screenshot(page, "bo-rate-preview-replace")
    page.fill("input[name=confirm_removed]", "4")
    page.click("button:has-text('and close 3')")
    page.wait_for_selector("text=Nothing was imported: type 3")
    assert _current_prefixes(fresh_db, ids["card"]) == ["33", "336", "44", "49"]
    page.fill("input[name=confirm_removed]", "3")
    page.click("button:has-text('and close 3')")
    page.wait_for_selector("text=Imported 1 lines", timeout=30000)
    assert _current_prefixes(fresh_db, ids["card"]) == ["336"]

    # An IP range of another customer: refused beside the field, nothing saved.
    page.goto(f"{base}/admin/endpoints/new?customer_id={ids['beta']}")
    page.fill("input[name=name]", "beta-net")
    page.select_option("select[name=auth]", "ip")
    page.fill("input[name=ip]", "198.51.100.0/24")
    page.select_option("select[name=permission_id]", str(ids["perm"]))
    page.click("input[type=submit][value=Save]")
    feedback = page.locator("#ip ~ .invalid-feedback")
    assert feedback.is_visible()
    assert feedback.inner_text() == ("Overlaps 198.51.100.7/32 of customer acme (endpoint acme-pbx): "
                                     "an IP range belongs to one customer.")
    screenshot(page, "bo-endpoint-overlap")
    problems[:] = [p for p in problems if not p.startswith("400 ")]   # the refused form answers 400 by design

    # The overdue invoice of a Swedish customer: the list, the page, a payment.
    page.goto(f"{base}/admin/invoices/overdue")
    row = page.locator("[data-overdue] tbody tr")
    assert row.count() == 1 and ids["number"] in row.inner_text() and "Nordic Télécom AB" in row.inner_text()
    assert "250.00 EUR" in row.inner_text()                                     # reverse charge: no VAT
    screenshot(page, "bo-invoices-overdue")
    row.locator("a", has_text=ids["number"]).click()
    page.wait_for_selector("[data-bill-to]")
    assert "Nordic Telecom Aktiebolag" in page.locator("[data-bill-to]").inner_text()
    assert "Reverse charge" in page.locator("[data-reverse-charge]").inner_text()
    assert page.locator("[data-payment-status]").inner_text() == "overdue"
    page.fill("input[name=received]", "100.00")
    page.fill("input[name=payment_reference]", "SEPA 2026-77")
    page.click("button:has-text('Record payment')")
    page.wait_for_selector("text=Payment of 100.00 EUR recorded")
    assert page.locator("[data-open]").inner_text() == "150.00 EUR"
    assert page.locator("input[name=received]").input_value() == "150.00"      # the open amount, prefilled
    screenshot(page, "bo-invoice-detail")
    page.click("button:has-text('Record payment')")
    page.wait_for_selector("[data-payment-status=paid]")
    page.goto(f"{base}/admin/invoices/overdue")
    assert "Nothing is overdue" in page.content()
    page.goto(f"{base}/admin/invoices?payment=paid")
    assert ids["number"] in page.locator("table tbody").inner_text()
    screenshot(page, "bo-invoices-list")

    # The customer's legal data and the operator's legal block are edited in the forms.
    page.goto(f"{base}/admin/customers/{ids['nordic']}/edit")
    assert page.locator("input[name=display_name]").input_value() == "Nordic Télécom AB"
    page.fill("input[name=vat_id]", "se 5560-1234 5601")
    page.fill("input[name=payment_terms_days]", "20")
    screenshot(page, "bo-customer-edit")
    page.click("input[type=submit][value=Save]")
    page.wait_for_selector("text=Customer nordic saved")
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT vat_id, payment_terms_days FROM billing.customers WHERE name = 'nordic'")
        assert cur.fetchone() == ("SE556012345601", 20)
    page.goto(f"{base}/admin/settings")
    assert page.locator("textarea[name=company_bank_details]").input_value() == "IBAN FR76 3000 6000 0112 3456 7890 189"
    screenshot(page, "bo-settings")
    assert problems == []
