"""Operations in a real browser: log in, create a customer with an endpoint (admin
pages), import a rate deck
with one bad line (nothing imported, the line named), fix it and import (background job
with progress), simulate a call, browse and export CDRs."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg2
import pytest

from .ops_support import browser_page, live_server, record_problems, screenshot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ADMIN = ("ops-admin@example.net", "ops-admin-password-1")
BAD_DECK = "prefix,rate,increment,destination\n33,0.0200,60/60,France\n336,0.08O0,30/6,France Mobile\n44,0.0150,1/1,UK\n"
GOOD_DECK = BAD_DECK.replace("0.08O0", "0.0800")


def _setup(app) -> dict:
    """Admin, catalogue, ratecard, provider with gateway (the customer and its endpoint
    are created through the admin pages in the test)."""
    from portal.extensions import db
    from tests import factories

    with app.app_context():
        factories.user(*ADMIN, role="admin")
        w_int, w_mob = factories.weight("international"), factories.weight("mobile")
        perm = factories.permission([w_int, w_mob], name="standard")
        factories.destination("33", w_int, name="France")
        factories.destination("336", w_mob, name="France Mobile")
        factories.destination("44", w_int, name="United Kingdom")
        card = factories.ratecard("retail")
        prov = factories.provider("carrier_a")
        factories.gateway(prov, name="gw_a1")
        factories.provider_rate(prov, "33", "0.0050")
        factories.provider_rate(prov, "44", "0.0040")
        db.session.commit()
        return {"card": card.id, "provider": prov.id, "permission": perm.id}


def _create_customer_with_endpoint(page, base, dsn, ids) -> None:
    page.goto(f"{base}/admin/customers/new")
    page.fill("input[name=name]", "acme")
    page.fill("input[name=opening_balance]", "25.00")
    page.select_option("select[name=ratecard_1]", str(ids["card"]))
    page.click("input[type=submit][value=Save]")
    page.wait_for_selector("text=Customer acme created")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, balance FROM billing.customers WHERE name = 'acme'")
        ids["customer"], balance = cur.fetchone()
    assert balance == Decimal("25.000000")
    page.goto(f"{base}/admin/endpoints/new?customer_id={ids['customer']}")
    page.select_option("select[name=customer_id]", str(ids["customer"]))
    page.fill("input[name=name]", "acme-pbx")
    page.select_option("select[name=auth]", "ip")
    page.fill("input[name=ip]", "198.51.100.7/32")
    page.select_option("select[name=permission_id]", str(ids["permission"]))
    page.click("input[type=submit][value=Save]")
    page.wait_for_load_state()
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM billing.endpoints WHERE name = 'acme-pbx' AND customer_id = %s", (ids["customer"],))
        ids["endpoint"] = cur.fetchone()[0]


def _rates(dsn, card_id):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT prefix, rate FROM billing.rates WHERE ratecard_id = %s ORDER BY prefix", (card_id,))
        return cur.fetchall()


def _upload_and_preview(page, base, card_id, deck: str, tmp_path, name: str):
    path = tmp_path / name
    path.write_text(deck)
    page.goto(f"{base}/admin/rate-imports/new")
    page.select_option("select[name=target]", f"ratecard:{card_id}")
    page.set_input_files("input[name=deck]", str(path))
    page.click("input[type=submit][value=Upload]")
    page.wait_for_url("**/mapping")
    assert page.locator("select[name=map_prefix]").input_value() == "0"     # guessed from the header
    assert page.locator("select[name=map_rate]").input_value() == "1"
    page.fill("input[name=effective_from]", "2026-01-01T00:00")
    screenshot(page, "ops-rate-mapping")
    page.click("input[type=submit][value='Preview changes']")
    page.wait_for_url("**/rate-imports/*")


def test_operations_flow(live_server, browser_page, fresh_db, tmp_path):
    base, app = live_server
    ids = _setup(app)
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    console_errors = record_problems(page)

    # Log in.
    page.goto(f"{base}/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("[type=submit]")
    page.wait_for_url("**/admin/**")
    screenshot(page, "ops-dashboard")

    # A customer with an endpoint, through the admin pages.
    _create_customer_with_endpoint(page, base, fresh_db, ids)

    # A deck with one bad line: nothing imported, the line and column named.
    _upload_and_preview(page, base, ids["card"], BAD_DECK, tmp_path, "bad.csv")
    errors = page.locator("[data-import-errors] tbody tr")
    assert errors.count() == 1
    assert errors.first.inner_text().split("\t")[:2] == ["3", "Rate per minute"]
    assert "Nothing was imported" in page.content()
    screenshot(page, "ops-rate-errors")
    assert _rates(fresh_db, ids["card"]) == []

    # Fixed deck: preview, import in the background, progress until done.
    _upload_and_preview(page, base, ids["card"], GOOD_DECK, tmp_path, "fixed.csv")
    assert page.locator("[data-count=new]").inner_text() == "3"
    screenshot(page, "ops-rate-preview")
    page.click("button:has-text('Import 3 rates')")
    page.wait_for_selector("text=Imported 3 lines", timeout=30000)
    screenshot(page, "ops-rate-done")
    assert _rates(fresh_db, ids["card"]) == [("33", Decimal("0.020000")), ("336", Decimal("0.080000")),
                                             ("44", Decimal("0.015000"))]

    # Export the ratecard.
    page.goto(f"{base}/admin/rate-imports")
    page.select_option("select[name=source]", f"ratecard:{ids['card']}")
    with page.expect_download() as download:
        page.click("button:has-text('Export CSV')")
    exported = open(download.value.path()).read()
    assert exported.splitlines()[1].startswith("33,0.020000,")

    # Simulate a call from the endpoint.
    page.goto(f"{base}/admin/simulator")
    page.select_option("select[name=endpoint_id]", str(ids["endpoint"]))
    page.fill("input[name=destination]", "33123456789")
    page.click("button:has-text('Simulate')")
    page.wait_for_selector("[data-simulation]")
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regprocedure('billing.route_preview(text,inet,text,text,text)') IS NOT NULL")
        has_preview = cur.fetchone()[0]
    if has_preview:
        assert "Call allowed" in page.content()
        assert "sofia/gateway/gw_a1/33123456789" in page.locator("[data-routes]").inner_text()
    else:
        assert "does not have yet" in page.content()
    screenshot(page, "ops-simulator")

    # CDRs (written as the billing trigger would), browse with a filter, export.
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        for i in range(3):
            cur.execute("""INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, endpoint_id, provider_id, gateway,
                             destination, sell_prefix, start_stamp, duration, billsec, billed_seconds, sell_rate,
                             sell_amount, cost_rate, cost_amount, margin, hangup_cause)
                           VALUES (0, %s, %s, %s, %s, 'gw_a1', '33123456789', '33', %s, 70, 60, 60, 0.02, 0.02,
                                   0.005, 0.005, 0.015, 'NORMAL_CLEARING')""",
                        (f"call-{i}", ids["customer"], ids["endpoint"], ids["provider"], start + timedelta(minutes=i)))
    page.goto(f"{base}/admin/cdrs")
    page.select_option("select[name=customer_id]", str(ids["customer"]))
    page.click("button:has-text('Filter')")
    page.wait_for_selector("[data-cdr-table]")
    assert page.locator("[data-cdr-table] tbody tr").count() == 3
    page.wait_for_selector("[data-totals-live]:not(.d-none)")
    assert page.locator("[data-total=calls]").last.inner_text() == "3"
    assert page.locator("[data-total=revenue]").last.inner_text() == "0.06 EUR"
    screenshot(page, "ops-cdrs")
    with page.expect_download() as download:
        page.click("[data-export]")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
    assert [r["uuid"] for r in rows] == ["call-0", "call-1", "call-2"]
    assert {r["customer"] for r in rows} == {"acme"}

    page.goto(f"{base}/admin/reports?dimension=customer")
    page.wait_for_selector("canvas[data-chart]")
    screenshot(page, "ops-reports")
    assert console_errors == []
