"""The customer page: summary first, then one tab per subject, each loading only its data."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from portal.extensions import db
from portal.models import CallHold
from tests import factories
from tests.ops.conftest import insert_cdr


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def stat(html: str, name: str) -> str:
    return text_of(html.split(f'data-stat="{name}"', 1)[1].split("</div>", 1)[0]).strip(" >")


@pytest.fixture()
def acme(pg, db_session, catalogue):
    c = factories.customer(name="acme", balance="96.87035", max_calls=8, email="billing@acme.example")
    ep = factories.endpoint(c, catalogue["standard"], name="acme-pbx")
    factories.user("ops@acme.example", "some-password-1", customer=c)
    db.session.add(CallHold(call_uuid="live-1", customer_id=c.id, endpoint_id=ep.id, amount=Decimal("1.234567"),
                            sell_rate=Decimal("0.02"), max_duration=600, destination="33123456789",
                            expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    now = datetime.now(timezone.utc)
    for i, (sell, cost, billsec) in enumerate([("0.100000", "0.040000", 60), ("0.050000", "0.030000", 30),
                                               ("0", "0", 0)]):
        insert_cdr(pg, customer_id=c.id, endpoint_id=ep.id, start_stamp=now - timedelta(minutes=i + 1),
                   sell_amount=Decimal(sell), cost_amount=Decimal(cost), billsec=billsec)
    # ledger over two days: yesterday an adjustment, today two call debits and a top-up
    yesterday = now - timedelta(days=1)
    db.session.execute(db.text("""INSERT INTO billing.ledger (customer_id, kind, amount, note, created_at)
                                  VALUES (:c, 'adjustment', -0.07175, 'goodwill', :y),
                                         (:c, 'call', -0.1, NULL, :t), (:c, 'call', -0.05, NULL, :t),
                                         (:c, 'topup', 10, NULL, :t)"""),
                       {"c": c.id, "y": yesterday, "t": now})
    db.session.refresh(c)
    return c


def test_summary_comes_first(admin_client, acme):
    html = admin_client.get(f"/admin/customers/{acme.id}").get_data(as_text=True)
    assert html.index("data-summary") < html.index("data-customer-tabs")
    # 96.87035 - 0.07175 - 0.1 - 0.05 + 10 = 106.6486
    assert stat(html, "balance").startswith("106.65 EUR")
    assert stat(html, "reserved").startswith("1.23 EUR")
    assert stat(html, "available").startswith("105.41 EUR")          # 106.6486 - 1.234567
    assert stat(html, "live").startswith("1 / 8")
    assert stat(html, "today").startswith("3")
    assert stat(html, "margin").startswith("0.08 EUR")               # 0.15 - 0.07
    assert "53.3 % of 0.15 EUR" in text_of(html)
    assert "Calls in progress (1)" in html and "live-1" in html       # the overview tab


@pytest.mark.parametrize("tab,expected", [
    ("endpoints", ["acme-pbx", "IP"]), ("users", ["ops@acme.example"]), ("rules", ["No routing rule"]),
    ("invoices", ["No invoice yet"]), ("calls", ["data-cdr-table", "33123456789"]),
    ("reports", ["data-chart", "Revenue"]), ("ledger", ["data-ledger-days", "Post to the ledger"]),
])
def test_each_tab_shows_its_subject(admin_client, acme, tab, expected):
    html = admin_client.get(f"/admin/customers/{acme.id}?tab={tab}").get_data(as_text=True)
    assert f'data-tab="{tab}"' in html and 'aria-current="page" data-tab="' + tab + '"' in html.replace(
        'active" aria-current', 'aria-current')
    for text in expected:
        assert text in html, (tab, text)
    if tab != "overview":
        assert "Calls in progress (1)" not in html


def test_unknown_tab_is_404(admin_client, acme):
    assert admin_client.get(f"/admin/customers/{acme.id}?tab=secrets").status_code == 404


def test_ledger_is_a_line_per_day_with_entries_on_demand(admin_client, acme):
    html = admin_client.get(f"/admin/customers/{acme.id}?tab=ledger").get_data(as_text=True)
    days = re.findall(r'<tr data-day="([0-9-]+)"', html)
    assert len(days) == 2 and days == sorted(days, reverse=True)   # today, yesterday
    today = text_of(html.split(f'data-day="{days[0]}"', 1)[1].split("</tr>", 1)[0]).lstrip(" >")
    # 2 calls for -0.15; credits: the opening 96.87035 and the top-up of 10
    assert today.split()[:5] == [days[0], "2", "-0.15", "EUR", "106.87"]
    assert "106.65 EUR" in today and "data-day-entries" not in html
    opened = admin_client.get(f"/admin/customers/{acme.id}?tab=ledger&day={days[1]}").get_data(as_text=True)
    entries = opened.split("data-day-entries", 1)[1].split("</table>", 1)[0]
    # the adjustment came before the opening balance (posted today): amount and balance after it
    assert "goodwill" in entries and entries.count('title="exact: -0.07175 EUR">-0.07 EUR<') == 2
    assert admin_client.get(f"/admin/customers/{acme.id}?tab=ledger&day=yesterday").status_code == 400


def test_ledger_post_comes_back_to_the_ledger_tab(admin_client, acme):
    response = admin_client.post(f"/admin/customers/{acme.id}/ledger", data={"kind": "topup", "amount": "5"})
    assert response.status_code == 302 and response.headers["Location"].endswith("tab=ledger")
    bad = admin_client.post(f"/admin/customers/{acme.id}/ledger", data={"kind": "topup", "amount": "-5"})
    assert bad.status_code == 400 and "data-ledger-days" in bad.get_data(as_text=True)
