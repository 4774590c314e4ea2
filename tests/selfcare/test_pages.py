"""Page content with exact amounts: services return Decimals to the last digit, pages
show them rounded half-up to the places documented in docs/selfcare.md."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from portal.cdrs import services as cdrs
from portal.customers import services as customers
from portal.extensions import db
from portal.ledger import services as ledger_services
from portal.ledger.services import LedgerFilter
from portal.rates import services as rates
from tests import factories

from .conftest import assert_no_b, insert_cdr, ledger

D = Decimal


def _text(response) -> str:
    """The page's visible text with tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.data.decode()))


# ----------------------------------------------------------------------------- overview

def test_funds_are_exact(world, pg):
    funds = customers.funds(pg, world.a.customer.id)
    assert funds.balance == D("125.460000")          # 100 - 0.04 + 25.50
    assert funds.credit_limit == D("0")
    assert funds.holds == D("1.234567")
    assert funds.calls_in_progress == 1
    assert funds.available == D("124.225433")
    assert funds.below_alert                          # threshold 150
    b = customers.funds(pg, world.b.customer.id)
    assert (b.balance, b.credit_limit, b.holds, b.available) == (D("38.6"), D("50"), D("3"), D("85.6"))


def test_overview_page(client_a, world):
    response = client_a.get("/my/")
    available = response.data.decode().split('id="available"', 1)[1].split("</div>", 1)[0]
    assert 'title="exact: 124.225433 EUR">124.23 EUR</span>' in available
    page = _text(response)
    assert "Balance 125.46 EUR" in page
    assert "Available for new calls 124.23 EUR" in page   # 124.225433 half-up
    assert "Reserved for calls in progress 1.23 EUR" in page
    assert "1 call in progress" in page
    assert "Low balance." in page and "below your alert threshold of 150.00 EUR" in page
    assert "Calls 2 Answered 1 Talk time 1:05 Call charges 0.04 EUR" in page
    assert "33111222333" in page                          # the call in progress
    assert "33123456789" in page and "France" in page     # recent calls, destination named
    assert "447700900123" in page and "no answer" in page
    assert_no_b(page)


def test_overview_without_funds_says_calls_are_refused(client_a, world, db_session):
    ledger(world.a.customer, "adjustment", "-125.46")
    page = _text(client_a.get("/my/"))
    assert "No funds available." in page
    assert "Available for new calls -1.23 EUR" in page


def test_overview_empty_account(client, db_session):
    from tests.conftest import CUSTOMER_PASSWORD, login

    c = factories.customer(name="newbie")
    factories.user("new@newbie.example", CUSTOMER_PASSWORD, customer=c)
    login(client, "new@newbie.example", CUSTOMER_PASSWORD)
    page = _text(client.get("/my/"))
    assert "No calls in progress" in page and "No calls yet" in page
    assert "Balance 0.00 EUR" in page


# ----------------------------------------------------------------------------- ledger

@pytest.fixture()
def history(world):
    """Customer A's history on fixed days (the fixture's own entries are today)."""
    c = factories.customer(name="hist")
    day = lambda d, h=12: datetime(2026, 1, d, h, tzinfo=timezone.utc)  # noqa: E731
    ledger(c, "initial", "50", at=day(1))
    ledger(c, "call", "-1.5", at=day(2, 9), call_uuid="u1")
    ledger(c, "call", "-0.25", at=day(2, 15), call_uuid="u2")
    ledger(c, "payment", "20", at=day(3), reference="PAY-9")
    ledger(c, "credit_note", "3", at=day(5), reference="CN-1")
    return c


def test_ledger_running_balance_is_exact(history, pg):
    rows, total = ledger_services.entries(pg, history.id)
    assert total == 5
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("credit_note", D("3"), D("71.25")),
        ("payment", D("20"), D("68.25")),
        ("call", D("-0.25"), D("48.25")),
        ("call", D("-1.5"), D("48.5")),
        ("initial", D("50"), D("50")),
    ]


def test_ledger_running_balance_across_pages_and_filters(history, pg):
    page2, total = ledger_services.entries(pg, history.id, page=2, per_page=2)
    assert total == 5 and [r["balance_after"] for r in page2] == [D("48.25"), D("48.5")]
    charges, total = ledger_services.entries(pg, history.id, LedgerFilter(group="charges"))
    assert total == 2 and [r["balance_after"] for r in charges] == [D("48.25"), D("48.5")]
    ranged, total = ledger_services.entries(pg, history.id, LedgerFilter(date_from=datetime(2026, 1, 2).date(),
                                                                         date_to=datetime(2026, 1, 3).date()))
    assert [r["balance_after"] for r in ranged] == [D("68.25"), D("48.25"), D("48.5")]


def test_ledger_period_summary(history, pg):
    period = ledger_services.period(pg, history.id, LedgerFilter(date_from=datetime(2026, 1, 2).date(),
                                                                 date_to=datetime(2026, 1, 3).date()))
    assert (period["opening"], period["credits"], period["debits"], period["closing"]) == (
        D("50"), D("20"), D("-1.75"), D("68.25"))
    whole = ledger_services.period(pg, history.id)
    assert (whole["opening"], whole["closing"]) == (D("0"), D("71.25"))


def test_ledger_per_day(history, pg):
    days, total = ledger_services.days(pg, history.id)
    assert total == 4
    assert [(str(d["day"]), d["calls"], d["charges"], d["credits"], d["net"], d["closing"]) for d in days] == [
        ("2026-01-05", 0, D("0"), D("3"), D("3"), D("71.25")),
        ("2026-01-03", 0, D("0"), D("20"), D("20"), D("68.25")),
        ("2026-01-02", 2, D("-1.75"), D("0"), D("-1.75"), D("48.25")),
        ("2026-01-01", 0, D("0"), D("50"), D("50"), D("50")),
    ]
    ranged, total = ledger_services.days(pg, history.id, LedgerFilter(date_to=datetime(2026, 1, 2).date()),
                                         per_page=1, page=2)
    assert total == 2 and ranged[0]["closing"] == D("50")


def test_ledger_page(client_a, world):
    page = _text(client_a.get("/my/ledger"))
    assert "Payment PAY-1 25.50 EUR 125.46 EUR" in page
    assert re.search(r"Call call call-000 -0\.04 EUR 99\.96 EUR", page)
    assert "Opening balance 100.00 EUR 100.00 EUR" in page
    assert "3 in all" in page
    assert_no_b(page)
    days = _text(client_a.get("/my/ledger?view=days"))
    assert "1 -0.04 EUR" in days and "125.46 EUR" in days


def test_ledger_page_rejects_bad_input(client_a, world):
    assert client_a.get("/my/ledger?page=abc").status_code == 400
    page = client_a.get("/my/ledger?date_from=2026-02-01&date_to=2026-01-01")
    assert page.status_code == 400 and "The end date is before the start date." in page.data.decode()
    assert "Not a valid date value." in client_a.get("/my/ledger?date_from=yesterday").data.decode()


# ----------------------------------------------------------------------------- CDRs

def test_cdr_totals_and_filters(world, pg):
    a = world.a.customer.id
    this_month = cdrs.CdrFilter(date_from=world.month_start.date(), zone=None)
    t = cdrs.totals(pg, this_month, customer_id=a)
    assert (t["calls"], t["answered"], t["billsec"], t["billed_seconds"], t["revenue"]) == (2, 1, 65, 120, D("0.04"))
    t = cdrs.totals(pg, cdrs.CdrFilter(), customer_id=a)
    assert (t["calls"], t["revenue"]) == (3, D("0.06"))
    assert cdrs.totals(pg, cdrs.CdrFilter(endpoint_id=world.a.ip.id), customer_id=a)["calls"] == 2
    assert cdrs.totals(pg, cdrs.CdrFilter(prefix="44"), customer_id=a)["calls"] == 1
    assert cdrs.totals(pg, cdrs.CdrFilter(answered=False), customer_id=a)["calls"] == 1
    assert cdrs.totals(pg, cdrs.CdrFilter(answered=True, prefix="33"), customer_id=a)["revenue"] == D("0.06")
    assert cdrs.totals(pg, cdrs.CdrFilter(endpoint_id=world.b.sip.id), customer_id=a)["calls"] == 0


def test_cdr_page_defaults_to_this_month(client_a, world):
    page = _text(client_a.get("/my/cdrs"))
    assert "33123456789" in page and "447700900123" in page
    assert "33987654321" not in page                      # last month
    assert "Calls 2 Answered 1 (50.0 %) Talk time 1:05 Billed time 2:00 Amount 0.04 EUR" in page
    everything = _text(client_a.get("/my/cdrs", query_string={"date_from": ""}))
    assert "33987654321" in everything and "Calls 3" in everything
    assert_no_b(everything)


def test_cdr_page_filters_and_errors(client_a, world):
    page = client_a.get("/my/cdrs", query_string={"date_from": "", "prefix": "44"}).data.decode()
    assert "447700900123" in page and "33123456789" not in page
    bad = client_a.get("/my/cdrs", query_string={"prefix": "33'; drop"})
    assert bad.status_code == 400 and "Digits only" in bad.data.decode()
    assert client_a.get("/my/cdrs", query_string={"before": "garbage"}).status_code == 400
    assert client_a.get("/my/cdrs.csv", query_string={"prefix": "abc"}).status_code == 400


def test_cdr_keyset_pagination_walks_every_row_once(app, client_a, world, monkeypatch):
    a = world.a
    start = world.month_start + timedelta(hours=1)
    for i in range(7):  # two pairs share a start time: the id breaks the tie
        insert_cdr(a.customer, a.sip, f"3310000000{i}", start + timedelta(minutes=i // 2), 10, "0.01")
    monkeypatch.setitem(app.config, "PAGE_SIZE", 3)
    seen, url, pages = [], "/my/cdrs?date_from=", 0
    while url:
        html = client_a.get(url).data.decode()
        seen += re.findall(r"(3310000000\d|33123456789|447700900123)", html)
        older = re.search(r'href="([^"]*before=[^"]*)"', html)
        url = older.group(1).replace("&amp;", "&") if older else None
        pages += 1
    assert pages == 4
    assert seen == ["447700900123", "33123456789"] + [f"3310000000{i}" for i in (6, 5, 4, 3, 2, 1, 0)]
    # and back: the newer link of the last page leads to the rows before it
    html = client_a.get("/my/cdrs?date_from=").data.decode()
    older = re.search(r'href="([^"]*before=[^"]*)"', html).group(1).replace("&amp;", "&")
    html2 = client_a.get(older).data.decode()
    newer = re.search(r'href="([^"]*after=[^"]*)"', html2).group(1).replace("&amp;", "&")
    assert re.findall(r"3310000000\d|33123456789|447700900123", client_a.get(newer).data.decode()) == \
        re.findall(r"3310000000\d|33123456789|447700900123", html)


# ----------------------------------------------------------------------------- rates

def test_rates_show_the_rate_that_applies(world, pg):
    card2 = world.a.cards[1]
    factories.sell_rate(card2, "882", "1.000000", blocked=True)
    rows, total = rates.applied(pg, world.a.customer.id)
    got = {r["prefix"]: (r["destination"], r["applied_prefix"], r["rate"], r["ratecard"], r["priority"]) for r in rows}
    assert total == 5 and list(got) == ["33", "336", "3361", "44", "882"]  # 34 expired, 999 is B's
    assert got["33"] == ("France", "33", D("0.020000"), "alpha-retail", 1)
    assert got["336"] == ("France Mobile", "33", D("0.020000"), "alpha-retail", 1)   # plan 1 first
    assert got["3361"] == ("France Mobile", "33", D("0.020000"), "alpha-retail", 1)  # blocked: next match
    assert got["44"] == ("United Kingdom", "44", D("0.050000"), "alpha-extra", 2)
    assert got["882"] == (None, None, None, None, None)                             # not available
    # The page agrees with the rating function for every prefix.
    for prefix, (_, applied, rate, _, _) in got.items():
        expected = db.session.execute(db.text(
            "SELECT prefix, rate FROM billing_private.find_sell_rate(:c, :p, now())"),
            {"c": world.a.customer.id, "p": prefix}).first()
        assert (applied, rate) == (tuple(expected) if expected else (None, None))


def test_rates_search_and_pages(world, pg):
    a = world.a.customer.id
    assert [r["prefix"] for r in rates.applied(pg, a, "33")[0]] == ["33", "336", "3361"]
    assert [r["prefix"] for r in rates.applied(pg, a, "+44")[0]] == ["44"]
    assert [r["prefix"] for r in rates.applied(pg, a, "mobile")[0]] == ["336", "3361"]
    assert rates.applied(pg, a, "%")[1] == 0 and rates.applied(pg, a, "_")[1] == 0
    assert rates.applied(pg, a, "Bravoland")[1] == 0
    page2, total = rates.applied(pg, a, page=2, per_page=3)
    assert total == 4 and [r["prefix"] for r in page2] == ["44"]


def test_rates_page_and_number_lookup(client_a, world):
    page = _text(client_a.get("/my/rates", query_string={"q": "447700900123"}))
    assert ("A call to 447700900123 (United Kingdom) costs 0.0500 EUR per minute plus 0.0100 EUR to connect, "
            "billed 1/1 s, at least 10 s (prefix 44 of alpha-extra).") in page
    full = _text(client_a.get("/my/rates"))
    assert "336 France Mobile 0.0200 EUR — 60/60 s — 1. alpha-retail charged at prefix 33" in full
    assert "1. alpha-retail (EUR) → 2. alpha-extra (EUR)" in full
    assert_no_b(full)
    assert "not available on your account" in _text(client_a.get("/my/rates", query_string={"q": "99912"}))


# ----------------------------------------------------------------------------- endpoints

def test_endpoints_page(client_a, world):
    db.session.execute(db.text("INSERT INTO billing.endpoint_month_spend (endpoint_id, month, amount) "
                               "VALUES (:e, date_trunc('month', now())::date, 12.5)"), {"e": world.a.ip.id})
    page = _text(client_a.get("/my/endpoints"))
    assert "alpha-office alpha100 sip.example.net no limit 1 0.00 EUR standard" in page
    assert "alpha-pbx 198.51.100.7/32 5 0 12.50 EUR / 300.00 EUR standard intl, mobile enabled" in page
    assert "secret-password" not in page                      # SIP passwords are never shown
    assert_no_b(page)
