"""CDR retention in a real browser: Ops > CDR partitions, archive an old month in the
background (confirmation, progress, then the page says archived and the file exists),
restore it, and a refusal explained on the page. CSRF on, as in production."""
from __future__ import annotations

from datetime import date

import psycopg2
import pytest

from tests.conftest import serving

from .ops_support import browser_page, record_problems, screenshot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ADMIN = ("retention-admin@example.net", "retention-admin-password-1")


@pytest.fixture()
def retention_server(fresh_db, tmp_path):
    from portal import create_app
    from portal.config import TestingConfig

    app = create_app(TestingConfig, DATABASE_URL=fresh_db, WTF_CSRF_ENABLED=True, CDR_ARCHIVE_INLINE=False,
                     CDR_ARCHIVE_DIR=str(tmp_path / "archive"))
    with serving(app) as base_url:
        yield base_url, app


def _setup(app, dsn) -> None:
    """An admin; March 2024 with 20,000 invoiced calls of acme; February 2024 with one
    call of globex that was never invoiced."""
    from portal.extensions import db
    from tests import factories

    with app.app_context():
        factories.user(*ADMIN, role="admin")
        acme, globex = factories.customer(name="acme"), factories.customer(name="globex")
        db.session.commit()
        ids = acme.id, globex.id
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for month in (date(2024, 2, 1), date(2024, 3, 1)):
            cur.execute("SELECT billing_private.create_cdr_partition(%s)", (month,))
        cur.execute("""INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, destination, start_stamp, billsec,
                                                duration, billed_seconds, sell_amount, cost_amount, margin)
                       SELECT i, 'u-' || i, %s, '33123456789', '2024-03-01'::timestamptz + i * interval '2 minutes',
                              i %% 300, i %% 300 + 4, i %% 300, (i %% 300) * 0.0002, (i %% 300) * 0.0001,
                              (i %% 300) * 0.0001
                         FROM generate_series(1, 20000) AS i""", (ids[0],))
        cur.execute("""INSERT INTO billing.cdr (fs_cdr_id, uuid, customer_id, start_stamp, billsec, duration,
                                                sell_amount) VALUES (0, 'g-1', %s, '2024-02-10', 60, 62, 0.02)""",
                    (ids[1],))
        cur.execute("""INSERT INTO billing.invoices (customer_id, kind, status, number, period_start, period_end,
                                                     currency, tax_rate, customer_name, issued_at)
                       VALUES (%s, 'invoice', 'issued', 'T-2024-03', '2024-03-01', '2024-04-01', 'EUR', 0, 'acme',
                               now())""", (ids[0],))
        cur.execute("ANALYZE billing.cdr_2024_03")


def _row(page, month: str):
    return page.locator(f"[data-partitions] tr[data-month='{month}']")


def test_archive_and_restore_a_month_from_the_back_office(retention_server, browser_page, fresh_db, tmp_path):
    base, app = retention_server
    _setup(app, fresh_db)
    page = browser_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    problems = record_problems(page)

    page.goto(f"{base}/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("[type=submit]")
    page.wait_for_url("**/admin/**")
    page.click("[data-nav-group=Ops] > a")
    page.click("a.dropdown-item:has-text('CDR partitions')")
    page.wait_for_url("**/admin/cdr-partitions")
    assert _row(page, "2024-03").get_attribute("data-state") == "live"
    assert "20,000" in _row(page, "2024-03").inner_text()
    screenshot(page, "retention-live")

    # February: globex was never invoiced -- refused, said why, nothing changed.
    _row(page, "2024-02").locator("button:has-text('Archive')").click()
    page.wait_for_selector("[data-task-result]", timeout=30000)
    assert "globex (2024-02)" in page.locator("[data-task-result]").inner_text()
    assert _row(page, "2024-02").get_attribute("data-state") == "live"

    # March: archived in the background, with a confirmation first.
    _row(page, "2024-03").locator("button:has-text('Archive')").click()
    page.wait_for_selector("[data-task-result].alert-success", timeout=60000)
    assert dialogs[-1].startswith("Archive 2024-03?")
    assert _row(page, "2024-03").get_attribute("data-state") == "archived"
    assert "cdr_2024_03.csv.gz" in _row(page, "2024-03").inner_text()
    assert (tmp_path / "archive" / "cdr_2024_03.csv.gz").is_file()
    screenshot(page, "retention-archived")

    _row(page, "2024-03").locator("button:has-text('Restore')").click()
    page.wait_for_selector("[data-task-result].alert-success", timeout=60000)
    assert _row(page, "2024-03").get_attribute("data-state") == "restored"
    assert "restored 2024-03: 20,000 CDRs" in page.locator("[data-task-result]").inner_text()
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.cdr WHERE start_stamp >= '2024-03-01' AND start_stamp < '2024-04-01'")
        assert cur.fetchone()[0] == 20000
        cur.execute("SELECT actor, action FROM billing.audit_log WHERE entity = 'cdr_month' AND entity_id = '2024-03' "
                    "ORDER BY id")
        assert [a for _actor, a in cur.fetchall()] == ["archive", "archive", "restore", "restore"]
    screenshot(page, "retention-restored")
    assert problems == []
