"""Currencies and rate history in a real browser: an exchange rate added, imported from
CSV (a bad line named, nothing imported) and closed; a SEK carrier ranked in euros in the
simulator; a rate changed from a future date and its history; a period re-rated from the
back office (preview in the background with progress, then applied)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg2
import pytest

from .ops_support import browser_page, live_server, record_problems, screenshot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ADMIN = ("fx-admin@example.net", "fx-admin-password-1")


def _setup(app) -> dict:
    from portal.extensions import db
    from tests import factories

    with app.app_context():
        factories.user(*ADMIN, role="admin")
        w = factories.weight("international")
        perm = factories.permission([w], name="standard")
        factories.destination("33", w, name="France")
        card = factories.ratecard("retail")
        sell = factories.sell_rate(card, "33", "0.0200", valid_from=datetime(2026, 1, 1, tzinfo=timezone.utc))
        acme = factories.customer("acme", balance="25", ratecards=[card])
        ep = factories.endpoint(acme, perm, name="acme-pbx", ip="198.51.100.7/32")
        eur = factories.provider("carrier_eur")
        factories.gateway(eur, name="gw_eur")
        factories.provider_rate(eur, "33", "0.0080")
        sek = factories.provider("carrier_sek", currency="SEK")
        factories.gateway(sek, name="gw_sek", host="192.0.2.30")
        factories.provider_rate(sek, "33", "0.0600")   # 0.0600 SEK x 0.0871 = 0.005226 EUR: cheaper
        db.session.commit()
        return {"card": card.id, "sell": sell.id, "customer": acme.id, "endpoint": ep.id, "eur": eur.id,
                "sek": sek.id, "gw_eur": "gw_eur"}


def _login(page, base):
    page.goto(f"{base}/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("[type=submit]")
    page.wait_for_url("**/admin/**")


def _one(dsn, sql, *args):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def test_currency_and_rate_history_flow(live_server, browser_page, fresh_db, tmp_path):
    base, app = live_server
    ids = _setup(app)
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    problems = record_problems(page, expected_failures=("/exchange-rates/import",))
    _login(page, base)

    # The simulator without a SEK -> EUR rate: the SEK carrier is left out, and says why.
    page.goto(f"{base}/admin/simulator?endpoint_id={ids['endpoint']}&destination=33123456789")
    page.wait_for_selector("[data-fx-refused]")
    assert "carrier_sek" in page.locator("[data-fx-refused]").inner_text()
    assert page.locator("[data-routes] tbody tr").count() == 1

    # Exchange rates: the missing pair is listed; a CSV with a bad line imports nothing.
    page.goto(f"{base}/admin/exchange-rates")
    assert "SEK→EUR" in page.locator("[data-missing-pairs]").inner_text()
    bad = tmp_path / "rates.csv"
    bad.write_text("from_currency,to_currency,rate,valid_from\nSEK,EUR,0.0871,2026-01-01\nUSD,EUR,O.92,2026-01-01\n")
    page.set_input_files("input[name=file]", str(bad))
    page.click("[data-import-form] input[type=submit]")
    page.wait_for_selector("[data-import-errors]")
    assert page.locator("[data-import-errors] tbody tr").first.inner_text().split("\t")[:2] == ["3", "rate"]
    assert _one(fresh_db, "SELECT count(*) FROM billing.exchange_rates")[0] == 0
    screenshot(page, "fx-import-errors")

    # Add the rate through the form.
    page.goto(f"{base}/admin/exchange-rates/new?from=SEK&to=EUR")
    page.fill("input[name=rate]", "0.0871")
    page.fill("input[name=valid_from]", "2026-01-01T00:00")
    page.click("input[type=submit][value='Add rate']")
    page.wait_for_selector("text=SEK→EUR rate added")
    assert page.locator("[data-exchange-rates] tbody tr").count() == 1
    assert page.locator("[data-missing-pairs]").count() == 0
    screenshot(page, "fx-rates")

    # Now the SEK carrier is ranked first, in euros, with its own rate beside.
    page.goto(f"{base}/admin/simulator?endpoint_id={ids['endpoint']}&destination=33123456789")
    page.wait_for_selector("[data-routes]")
    first = page.locator("[data-routes] tbody tr").first.inner_text()
    assert "carrier_sek" in first and "0.005226" in first and "0.0600 SEK × 0.0871" in first
    screenshot(page, "fx-simulator")

    # A rate change from next week: a new version; the history shows both.
    page.goto(f"{base}/admin/ratecards/{ids['card']}")
    page.click("td.actions a[href$='/edit']")
    page.fill("input[name=rate]", "0.0250")
    when = (datetime.now(timezone.utc) + timedelta(days=7)).replace(second=0, microsecond=0)
    page.fill("input[name=effective_from]", when.strftime("%Y-%m-%dT%H:%M"))
    screenshot(page, "rate-change")
    page.click("input[type=submit][value='Save as a new version']")
    page.wait_for_selector("[data-rate-history]")
    assert page.locator("[data-version=current]").count() == 1 and page.locator("[data-version=scheduled]").count() == 1
    screenshot(page, "rate-history")
    assert _one(fresh_db, "SELECT valid_to FROM billing.rates WHERE id = %s", ids["sell"])[0] == when

    # Calls billed (by the trigger) at 0.0200; the rate of the period was wrong: re-rate it.
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        for i in range(3):
            cur.execute("""INSERT INTO billing.fs_cdr (uuid, destination_number, start_stamp, answer_stamp, end_stamp,
                                 duration, billsec, hangup_cause, billing_customer_id, billing_endpoint_id,
                                 billing_destination, billing_gateway, billing_provider_id)
                           VALUES (%s, '33123456789', %s, %s, %s, 65, 60, 'NORMAL_CLEARING', %s, %s, '33123456789',
                                   'gw_eur', %s)""",
                        (f"fx-call-{i}", start + timedelta(minutes=i), start + timedelta(minutes=i, seconds=5),
                         start + timedelta(minutes=i, seconds=65), ids["customer"], ids["endpoint"], ids["eur"]))
        cur.execute("UPDATE billing.rates SET rate = 0.0300 WHERE id = %s", (ids["sell"],))
    balance = _one(fresh_db, "SELECT balance FROM billing.customers WHERE id = %s", ids["customer"])[0]
    assert balance == Decimal("24.94")
    page.goto(f"{base}/admin/rerate")
    day = start.date().isoformat()
    page.fill("input[name=date_from]", day)
    page.fill("input[name=date_to]", (start + timedelta(hours=3)).date().isoformat())
    page.select_option("select[name=customer_id]", str(ids["customer"]))
    page.click("input[type=submit][value='Preview the re-rate']")
    page.wait_for_selector("[data-rerate-preview]", timeout=30000)   # the page follows the background job
    row = page.locator("[data-rerate-preview] tbody tr").first
    assert row.locator("[data-sell-diff]").inner_text() == "0.03 EUR"
    assert _one(fresh_db, "SELECT balance FROM billing.customers WHERE id = %s", ids["customer"])[0] == balance
    screenshot(page, "rerate-preview")
    page.click("button:has-text('Apply the re-rate')")
    page.wait_for_selector("[data-rerate-done]", timeout=30000)
    assert "Re-rated 3 call(s)" in page.locator("[data-rerate-done]").inner_text()
    assert _one(fresh_db, "SELECT balance FROM billing.customers WHERE id = %s", ids["customer"])[0] == Decimal("24.91")
    screenshot(page, "rerate-done")
    assert problems == []
