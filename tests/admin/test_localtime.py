"""The operator's time zone (BILLING_TIMEZONE): ISO dates and 24-hour times in it on
every page, admin date filters read in it, request connections use it as their session
time zone while CLI and job connections keep the server's."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from portal import create_app
from portal.cdrs.services import CdrFilter, page
from portal.config import TestingConfig
from portal.extensions import db
from portal.formatting import datetime_short
from tests import factories
from tests.ops.conftest import insert_cdr

LATE = datetime(2026, 3, 10, 23, 30, tzinfo=timezone.utc)    # 2026-03-11 00:30 in Stockholm


def test_times_are_shown_iso_24h_in_the_operators_zone(app, monkeypatch):
    with app.app_context():
        assert datetime_short(LATE) == "2026-03-10 23:30:00"
        monkeypatch.setitem(app.config, "BILLING_TIMEZONE", "Europe/Stockholm")
        assert datetime_short(LATE) == "2026-03-11 00:30:00"
        assert datetime_short(datetime(2026, 7, 1, 13, 5)) == "2026-07-01 15:05:00"   # naive = UTC; CEST
        assert datetime_short(date(2026, 7, 1)) == "2026-07-01" and datetime_short(None) == "—"


def test_cdr_date_filter_means_the_operators_days(app, pg, monkeypatch):
    c = factories.customer()
    insert_cdr(pg, customer_id=c.id, start_stamp=LATE)
    march_11 = CdrFilter(customer_id=c.id, date_from=date(2026, 3, 11), date_to=date(2026, 3, 11))
    assert page(pg, march_11).rows == []
    monkeypatch.setitem(app.config, "BILLING_TIMEZONE", "Europe/Stockholm")
    assert [r["start_stamp"] for r in page(pg, march_11).rows] == [LATE]


def test_navbar_names_the_zone(admin_client, app, monkeypatch):
    monkeypatch.setitem(app.config, "BILLING_TIMEZONE", "America/New_York")
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert 'data-timezone' in html and "America/New_York" in html.split("data-timezone", 1)[1].split("</span>", 1)[0]


def test_request_connections_use_the_zone_cli_connections_do_not(database_url):
    app = create_app(TestingConfig, DATABASE_URL=database_url, BILLING_TIMEZONE="Asia/Kolkata")
    try:
        with app.app_context():
            server_default = db.session.execute(text("SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'")).scalar()
            db.session.remove()
        for _ in range(2):   # same pooled connection, switched back and forth
            with app.test_request_context("/"):
                assert db.session.execute(text("SHOW TimeZone")).scalar() == "Asia/Kolkata"
                assert db.session.execute(text("SELECT to_char(TIMESTAMPTZ '2026-03-10 23:30Z', 'HH24:MI')")).scalar() == "05:00"
                db.session.rollback()   # a request that changed nothing: the zone survives it
                assert db.session.execute(text("SHOW TimeZone")).scalar() == "Asia/Kolkata"
                db.session.remove()
            with app.app_context():
                assert db.session.execute(text("SHOW TimeZone")).scalar() == server_default
                db.session.remove()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_wrong_zone_stops_the_portal(database_url):
    with pytest.raises(RuntimeError, match="BILLING_TIMEZONE='Mars/Olympus' is not a time zone"):
        create_app(TestingConfig, DATABASE_URL=database_url, BILLING_TIMEZONE="Mars/Olympus")
