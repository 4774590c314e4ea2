"""One money rule on every page (docs/rounding.md): each amount is shown at its
currency's precision with its currency code, its exact value in the title when the
display rounded it. The pages of the back office, self care and the invoice HTML are
rendered with awkward amounts (96.87035, -0.07175, 40.4749 SEK, 1234.5 JPY) and scanned:
an amount without currency, with another number of decimals, or printed raw fails."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.formatting import minor_units
from portal.invoices.pdf import render_html
from portal.invoices.services import Period, build_draft, issue
from portal.models import CallHold
from tests import factories
from tests.conftest import CUSTOMER_PASSWORD, login
from tests.ops.conftest import insert_cdr

MONEY_SPAN = re.compile(r'<span class="money( money-exact)?" data-currency="([^"]*)"(?: title="exact: ([^"]*)")?>([^<]*)</span>')
RATE_SPAN = re.compile(r'<span class="rate">[^<]*</span>')
# a decimal number printed with 3 or more decimals (a raw 6-decimal amount, or a money
# value formatted by hand), not part of an IP address or a version
RAW_DECIMAL = re.compile(r"(?<![\d.,])-?\d+\.\d{3,}(?![\d.])")
# "12.30 EUR" outside the filter's span: money formatted by hand
HAND_MONEY = re.compile(r"(?<![\d.,])-?[\d,]+\.\d+ (?:EUR|USD|SEK|JPY|GBP)\b")


def scan(html: str, where: str) -> list[str]:
    """Problems of one page; [] when every amount follows the rule."""
    problems = []
    for exact, currency, title, shown in MONEY_SPAN.findall(html):
        if not currency:
            problems.append(f"{where}: {shown!r} has no currency")
            continue
        if exact:
            if not shown.endswith(" " + currency):
                problems.append(f"{where}: exact {shown!r} lacks its code")
            continue
        places = minor_units(currency)
        pattern = r"-?\d{1,3}(,\d{3})*" + (r"\.\d{%d}" % places if places else "") + " " + currency
        if not re.fullmatch(pattern, shown):
            problems.append(f"{where}: {shown!r} is not {places} decimals + {currency}")
        if title:
            value = Decimal(title.rsplit(" ", 1)[0].replace(",", ""))
            rounded = Decimal(shown.rsplit(" ", 1)[0].replace(",", ""))
            if abs(value - rounded) > Decimal(1).scaleb(-places) / 2 or not title.endswith(" " + currency):
                problems.append(f"{where}: title {title!r} does not match {shown!r}")
    rest = RATE_SPAN.sub(" ", MONEY_SPAN.sub(" ", html))
    rest = re.sub(r"<script.*?</script>|<style.*?</style>", " ", rest, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", rest)      # attributes (chart data, titles) are not shown text
    for match in RAW_DECIMAL.findall(text):
        problems.append(f"{where}: raw decimal {match!r}")
    for match in HAND_MONEY.findall(text):
        problems.append(f"{where}: money outside the filter {match!r}")
    return problems


@pytest.fixture()
def money_world(pg, db_session, catalogue):
    now = datetime.now(timezone.utc)
    eur = factories.customer(name="acme", balance="96.87035", email="billing@acme.example", max_calls=4,
                             low_balance_alert=Decimal("120.5"))
    sek = factories.customer(name="nordic", balance="40.4749", currency="SEK", billing_type="postpaid",
                             credit_limit=Decimal("1000.005"))
    jpy = factories.customer(name="tokyo", balance="1234.5", currency="JPY")
    prov = factories.provider("carrier", currency="USD")
    factories.gateway(prov, name="gw1")
    card = factories.ratecard("retail")
    factories.sell_rate(card, "33", "0.012345")
    eps = {c.id: factories.endpoint(c, catalogue["standard"], ip=f"198.51.100.{i}/32", name=f"ep{i}",
                                    spend_limit_month=Decimal("50.125"))
           for i, c in enumerate((eur, sek, jpy), start=1)}
    factories.topup(eur, "-0.07175", kind="adjustment")
    for c, sell, cost in ((eur, "0.096870", "0.040475"), (sek, "40.474900", "1.071750"), (jpy, "12.500000", "3.250000")):
        insert_cdr(pg, customer_id=c.id, endpoint_id=eps[c.id].id, provider_id=prov.id, gateway="gw1",
                   start_stamp=now - timedelta(minutes=5), sell_amount=Decimal(sell), cost_amount=Decimal(cost),
                   sell_rate=Decimal("0.0233"), cost_rate=Decimal("0.0117"))
        factories.topup(c, "-" + sell, kind="call")
    db.session.add(CallHold(call_uuid="live-eur", customer_id=eur.id, endpoint_id=eps[eur.id].id,
                            amount=Decimal("1.234567"), sell_rate=Decimal("0.0233"), max_duration=3178,
                            destination="33612345678", expires_at=now + timedelta(hours=1)))
    db.session.flush()
    month_start = now.date().replace(day=1)
    insert_cdr(pg, customer_id=eur.id, endpoint_id=eps[eur.id].id, start_stamp=now - timedelta(days=40),
               sell_amount=Decimal("1.005"), cost_amount=Decimal("0.333333"))
    invoice = issue(build_draft(eur, Period.previous_month(month_start)))
    factories.user("ops@acme.example", CUSTOMER_PASSWORD, customer=eur)
    return {"eur": eur, "sek": sek, "jpy": jpy, "invoice": invoice, "provider": prov, "card": card}


def test_scanner_catches_what_the_rule_forbids():
    assert scan('<span class="money" data-currency="">12.30</span>', "x") == ["x: '12.30' has no currency"]
    assert scan('<span class="money" data-currency="EUR">12.3000 EUR</span>', "x")
    assert scan('<span class="money" data-currency="JPY">12.00 JPY</span>', "x")
    assert scan("<td>96.87035 EUR</td>", "x") and scan("<td>-0.07175</td>", "x") and scan("<td>40.4749</td>", "x")
    assert scan("<td>12.30 EUR</td>", "x") == ["x: money outside the filter '12.30 EUR'"]
    assert scan('<span class="money" data-currency="EUR" title="exact: 5.00 EUR">1.00 EUR</span>', "x")
    ok = ('<span class="money" data-currency="EUR" title="exact: 96.87035 EUR">96.87 EUR</span> '
          '<span class="money" data-currency="JPY">1,235 JPY</span> <span class="rate">0.012345</span> '
          '198.51.100.7 101.20 minutes')
    assert scan(ok, "x") == []


def test_every_page_shows_money_by_one_rule(admin_client, pg, money_world):
    w = money_world
    with pg.cursor() as cur:
        cur.execute("SELECT id FROM billing.cdr WHERE customer_id = %s ORDER BY start_stamp DESC LIMIT 1", (w["sek"].id,))
        sek_cdr = cur.fetchone()[0]
    pages = ["/admin/dashboard", "/admin/customers", "/admin/endpoints", "/admin/cdrs?totals=1",
             f"/admin/cdrs?customer_id={w['sek'].id}&totals=1", f"/admin/cdrs/{sek_cdr}",
             "/admin/invoices", f"/admin/invoices/{w['invoice'].id}", f"/admin/ratecards/{w['card'].id}",
             f"/admin/providers/{w['provider'].id}", "/admin/mail"]
    pages += [f"/admin/reports?dimension={d}" for d in ("day", "customer", "provider", "destination")]
    for c in ("eur", "sek", "jpy"):
        pages += [f"/admin/customers/{w[c].id}?tab={t}" for t in
                  ("overview", "endpoints", "ledger", "invoices", "calls", "reports")]
        pages.append(f"/admin/customers/{w[c].id}?tab=ledger&view=entries")
    problems, amounts = [], 0
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        amounts += len(MONEY_SPAN.findall(html))
        problems += scan(html, url)
    problems += scan(render_html(w["invoice"]), "invoice HTML")
    assert problems == []
    assert amounts > 150                                     # the scan saw the amounts it is about
    customer_page = admin_client.get(f"/admin/customers/{w['jpy'].id}").get_data(as_text=True)
    assert ">1,222 JPY<" in customer_page                     # 1234.5 - 12.5 = 1222.000000
    sek_page = admin_client.get(f"/admin/customers/{w['sek'].id}").get_data(as_text=True)
    assert 'title="exact: 1,000.005 SEK">1,000.01 SEK<' in sek_page   # the credit limit, half-up


def test_selfcare_pages_show_money_by_one_rule(client, money_world):
    login(client, "ops@acme.example", CUSTOMER_PASSWORD)
    problems = []
    for url in ("/my/", "/my/ledger", "/my/ledger?view=days", "/my/cdrs?date_from=", "/my/rates", "/my/endpoints",
                "/my/invoices"):
        response = client.get(url)
        assert response.status_code == 200, url
        problems += scan(response.get_data(as_text=True), url)
    assert problems == []
    overview = client.get("/my/").get_data(as_text=True)
    assert 'title="exact: 96.70173 EUR">96.70 EUR<' in overview         # 96.87035 - 0.07175 - 0.09687
