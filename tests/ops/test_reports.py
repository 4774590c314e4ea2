"""Reports and dashboard: exact Decimal arithmetic per day / customer / provider / destination."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from portal.reports import services
from tests import factories

from .conftest import T0, insert_cdr

D0 = T0.date()


@pytest.fixture()
def traffic(pg, world):
    acme, beta, a, b = world["acme"], world["beta"], world["carrier_a"], world["carrier_b"]
    # day 1: acme 2 answered (France, France Mobile) via a; beta 1 unanswered
    insert_cdr(pg, customer_id=acme.id, provider_id=a.id, sell_prefix="33", destination="33100", billsec=90,
               sell_amount=Decimal("0.030000"), cost_amount=Decimal("0.007500"))
    insert_cdr(pg, customer_id=acme.id, provider_id=a.id, sell_prefix="336", destination="33600", billsec=31,
               sell_amount=Decimal("0.048000"), cost_amount=Decimal("0.015500"), held_seconds=29, overrun_seconds=2)
    insert_cdr(pg, customer_id=beta.id, provider_id=b.id, sell_prefix="33", destination="33101", billsec=0,
               sell_amount=Decimal("0"), cost_amount=Decimal("0"), hangup_cause="NO_ANSWER")
    # day 3: beta 1 answered via b, with a negative margin; one CDR without rate (unrated)
    insert_cdr(pg, start_stamp=T0 + timedelta(days=2), customer_id=beta.id, provider_id=b.id, sell_prefix="3361",
               destination="33610", billsec=60, sell_amount=Decimal("0.010000"), cost_amount=Decimal("0.012000"),
               no_hold=True)
    insert_cdr(pg, start_stamp=T0 + timedelta(days=2), customer_id=beta.id, provider_id=None, sell_prefix=None,
               destination="999", billsec=10, sell_amount=Decimal("0"), cost_amount=Decimal("0"), status="unrated")
    # outside the range
    insert_cdr(pg, start_stamp=T0 + timedelta(days=40), customer_id=acme.id, billsec=60)


def test_by_day(pg, traffic):
    r = services.run(pg, "day", D0, D0 + timedelta(days=2))
    assert [row["label"] for row in r.rows] == ["2026-03-10", "2026-03-11", "2026-03-12"]
    d1, d2, d3 = r.rows
    assert (d1["calls"], d1["answered"], d1["billsec"]) == (3, 2, 121)
    assert d1["revenue"] == Decimal("0.078000") and d1["cost"] == Decimal("0.023000")
    assert d1["margin"] == Decimal("0.055000")
    assert d1["minutes"] == Decimal("2.02")          # 121 / 60 = 2.0166.. -> 2.02
    assert d1["asr"] == Decimal("66.67") and d1["acd"] == Decimal("60.5")
    assert d2["calls"] == 0 and d2["asr"] is None and d2["revenue"] == 0
    assert d3["margin"] == Decimal("-0.002000")
    assert r.total["calls"] == 5 and r.total["revenue"] == Decimal("0.088000")
    assert r.total["margin"] == Decimal("0.053000")
    assert r.total["asr"] == Decimal("80.00") and r.total["acd"] == Decimal("47.8")   # 191 / 4
    # calls to review: day 1 one call 2 s beyond its grant, day 3 one billed without a hold
    assert (d1["to_review"], d1["overrun_seconds"]) == (1, 2)
    assert (d2["to_review"], d2["overrun_seconds"]) == (0, 0)
    assert (d3["to_review"], d3["overrun_seconds"]) == (1, 0)
    assert (r.total["to_review"], r.total["overrun_seconds"]) == (2, 2)


def test_by_customer_and_provider(pg, world, traffic):
    r = services.run(pg, "customer", D0, D0 + timedelta(days=2))
    by = {row["label"]: row for row in r.rows}
    assert by["acme"]["calls"] == 2 and by["acme"]["revenue"] == Decimal("0.078000")
    assert by["beta"]["calls"] == 3 and by["beta"]["margin"] == Decimal("-0.002000")
    assert (by["acme"]["to_review"], by["acme"]["overrun_seconds"]) == (1, 2)
    assert (by["beta"]["to_review"], by["beta"]["overrun_seconds"]) == (1, 0)
    assert [row["label"] for row in r.rows] == ["acme", "beta"]      # by revenue
    r = services.run(pg, "provider", D0, D0 + timedelta(days=2))
    by = {row["label"]: row for row in r.rows}
    assert by["carrier_a"]["cost"] == Decimal("0.023000") and by["carrier_b"]["calls"] == 2
    assert by["(no provider)"]["calls"] == 1
    r = services.run(pg, "customer", D0, D0 + timedelta(days=2), customer_id=world["acme"].id)
    assert [row["label"] for row in r.rows] == ["acme"]


def test_by_destination_uses_longest_catalogue_prefix(pg, traffic):
    r = services.run(pg, "destination", D0, D0 + timedelta(days=2))
    by = {row["label"]: row for row in r.rows}
    assert set(by) == {"France", "France Mobile", "(unrated)"}
    assert by["France"]["calls"] == 2                       # prefix 33, answered + unanswered
    assert by["France Mobile"]["calls"] == 2                # prefixes 336 and 3361 -> 336
    assert by["France Mobile"]["revenue"] == Decimal("0.058000")
    assert by["France Mobile"]["key"] == "336"
    assert by["France Mobile"]["to_review"] == 2 and by["France Mobile"]["overrun_seconds"] == 2
    assert by["France"]["to_review"] == 0
    assert sum(row["calls"] for row in r.rows) == r.total["calls"] == 5


def test_bad_ranges(pg):
    with pytest.raises(services.ReportError, match="before"):
        services.run(pg, "day", D0, D0 - timedelta(days=1))
    with pytest.raises(services.ReportError, match="at most"):
        services.run(pg, "day", D0, D0 + timedelta(days=400))
    with pytest.raises(services.ReportError, match="unknown"):
        services.run(pg, "gateway", D0, D0)


def test_csv_matches_table(pg, traffic):
    r = services.run(pg, "customer", D0, D0 + timedelta(days=2))
    rows = list(csv.reader(io.StringIO(services.to_csv(r))))
    assert rows[0] == ["customer", "calls", "answered", "minutes", "revenue", "cost", "margin", "asr", "acd",
                       "to_review", "overrun_seconds"]
    assert rows[1][:6] == ["acme", "2", "2", "2.02", "0.078000", "0.023000"]
    assert rows[-1][0] == "TOTAL" and rows[-1][4] == "0.088000" and rows[-1][-2:] == ["2", "2"]


def test_pages(admin_client, traffic):
    page = admin_client.get("/admin/reports?dimension=customer&date_from=2026-03-10&date_to=2026-03-12").get_data(as_text=True)
    assert "acme" in page and "0.08" in page and "data-chart=" in page
    assert "<script>" not in page        # CSP: no inline script
    chart = page.split('data-chart="', 1)[1].split('"', 1)[0]
    assert "Revenue" in chart.replace("&#34;", '"')
    response = admin_client.get("/admin/reports.csv?dimension=day&date_from=2026-03-10&date_to=2026-03-12")
    assert response.mimetype == "text/csv" and "2026-03-11,0,0" in response.get_data(as_text=True)
    page = admin_client.get("/admin/reports?date_from=2026-03-12&date_to=2026-03-10").get_data(as_text=True)
    assert "the end is before the start" in page


def test_dashboard(admin_client, pg, world):
    now = datetime.now(timezone.utc)
    # today's call: five minutes ago, or at midnight in the first five minutes of a day
    started = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=0, microsecond=0))
    insert_cdr(pg, start_stamp=started, customer_id=world["acme"].id, billsec=120,
               sell_amount=Decimal("0.040000"), cost_amount=Decimal("0.010000"))
    with pg.cursor() as cur:
        cur.execute("""INSERT INTO billing.call_holds (call_uuid, customer_id, endpoint_id, amount, sell_rate,
                         max_duration, destination, expires_at)
                       VALUES ('live-1', %s, %s, 1.5, 0.02, 4500, '33123456789', now() + interval '1 hour')""",
                    (world["acme"].id, world["ep_acme"].id))
        # kept unrated by the billing trigger (no billing variables); started long ago so
        # that its unrated billing.cdr row is not one of today's calls
        cur.execute("INSERT INTO billing.fs_cdr (uuid, start_stamp) VALUES ('u-1', now() - interval '40 days')")
    page = admin_client.get("/admin/dashboard").get_data(as_text=True)
    assert "1 call · 1.50 EUR held" in re.sub(r"<[^>]+>", "", page) and "33123456789" in page
    assert 'data-unrated>1<' in page and "See why and re-rate" in page
    assert "beta" in page.split("data-low-balance", 1)[1]   # balance 5 < alert 10
    today = page.split('data-stats="today"', 1)[1].split('data-stats="month"', 1)[0]
    assert 'data-stat="calls">1<' in today
    assert re.search(r'data-stat="margin"><span class="money" data-currency="EUR"[^>]*>0.03 EUR</span><', today)
    assert admin_client.get("/admin/").status_code == 200


def test_chart_data_puts_money_on_its_own_axis(pg, traffic):
    day = services.chart_data(services.run(pg, "day", D0, D0 + timedelta(days=2)), "EUR")
    assert day["axes"] == [{"id": "money", "title": "EUR", "places": 2}, {"id": "count", "title": "calls", "places": 0}]
    assert [(d["label"], d["axis"]) for d in day["datasets"]] == [
        ("Revenue (EUR)", "money"), ("Cost (EUR)", "money"), ("Calls", "count")]
    assert day["datasets"][0]["data"] == ["0.078000", "0", "0.010000"]
    report = services.run(pg, "customer", D0, D0 + timedelta(days=2))
    report.currency = "SEK"
    by_customer = services.chart_data(report)
    assert by_customer["horizontal"] and by_customer["axes"] == [{"id": "money", "title": "SEK", "places": 2}]
    assert {d["axis"] for d in by_customer["datasets"]} == {"money"}


def test_report_days_are_the_operators_days(app, pg, world, monkeypatch):
    """A call at 23:30 UTC on March 10 is on March 11 in Stockholm (UTC+1)."""
    insert_cdr(pg, customer_id=world["acme"].id, start_stamp=datetime(2026, 3, 10, 23, 30, tzinfo=timezone.utc))
    assert [r["calls"] for r in services.run(pg, "day", D0, D0 + timedelta(days=1)).rows] == [1, 0]
    monkeypatch.setitem(app.config, "BILLING_TIMEZONE", "Europe/Stockholm")
    with app.app_context():
        rows = services.run(pg, "day", D0, D0 + timedelta(days=1)).rows
    assert [(r["label"], r["calls"]) for r in rows] == [("2026-03-10", 0), ("2026-03-11", 1)]
