"""Reports, dashboard and CDR totals never add money of customers paying in different
currencies; CDR rows show a converted cost with what it was converted from."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from portal.cdrs import services as cdr_services
from portal.reports import services as report_services
from tests import factories
from tests.ops.conftest import T0, insert_cdr


def _sek_customer(world):
    card = factories.ratecard("retail_sek", currency="SEK")
    return factories.customer("nordic", balance="500", ratecards=[card], currency="SEK")


def test_single_currency_reports_are_unchanged(admin_client, pg, world):
    insert_cdr(pg, customer_id=world["acme"].id, sell_amount=Decimal("0.02"), cost_amount=Decimal("0.005"))
    html = admin_client.get(f"/admin/reports?date_from={T0.date()}&date_to={T0.date()}").get_data(as_text=True)
    assert "Amounts in EUR" in html and 'name="currency"' not in html


def test_reports_are_per_currency_when_customers_pay_in_several(admin_client, pg, world):
    nordic = _sek_customer(world)
    insert_cdr(pg, customer_id=world["acme"].id, sell_amount=Decimal("0.02"), cost_amount=Decimal("0.005"))
    insert_cdr(pg, customer_id=nordic.id, sell_amount=Decimal("0.30"), cost_amount=Decimal("0.10"),
               cost_currency="EUR", cost_amount_original=Decimal("0.008706"), exchange_rate=Decimal("11.487"))
    day = T0.date()
    eur = report_services.run(pg, "customer", day, day, currency="EUR")
    sek = report_services.run(pg, "customer", day, day, currency="SEK")
    assert [(r["label"], r["revenue"]) for r in eur.rows] == [("acme", Decimal("0.02"))]
    assert [(r["label"], r["revenue"], r["cost"]) for r in sek.rows] == [("nordic", Decimal("0.30"), Decimal("0.10"))]
    html = admin_client.get(f"/admin/reports?dimension=customer&date_from={day}&date_to={day}").get_data(as_text=True)
    assert "Amounts in EUR" in html and 'name="currency"' in html and ">acme</a>" in html and ">nordic</a>" not in html
    html = admin_client.get(f"/admin/reports?dimension=customer&date_from={day}&date_to={day}&currency=SEK").get_data(as_text=True)
    assert "Amounts in SEK" in html and ">nordic</a>" in html and ">acme</a>" not in html
    csv_text = admin_client.get(f"/admin/reports.csv?dimension=day&date_from={day}&date_to={day}&currency=SEK").get_data(as_text=True)
    assert csv_text.splitlines()[1].startswith(f"{day},1,1,1.00,0.30")


def test_cdr_totals_split_by_currency(admin_client, pg, world):
    nordic = _sek_customer(world)
    insert_cdr(pg, customer_id=world["acme"].id, sell_amount=Decimal("0.02"), cost_amount=Decimal("0.005"))
    insert_cdr(pg, customer_id=nordic.id, sell_amount=Decimal("0.30"), cost_amount=Decimal("0.10"),
               cost_currency="EUR", cost_amount_original=Decimal("0.008706"), exchange_rate=Decimal("11.487"))
    totals = cdr_services.totals(pg, cdr_services.CdrFilter(date_from=T0.date(), date_to=T0.date()))
    assert totals["calls"] == 2 and totals["revenue"] is None and totals["margin"] is None
    assert totals["by_currency"] == [
        {"currency": "EUR", "revenue": Decimal("0.02"), "cost": Decimal("0.005"), "margin": Decimal("0.015")},
        {"currency": "SEK", "revenue": Decimal("0.30"), "cost": Decimal("0.10"), "margin": Decimal("0.20")}]
    one = cdr_services.totals(pg, cdr_services.CdrFilter(date_from=T0.date(), date_to=T0.date(), customer_id=nordic.id))
    assert one["revenue"] == Decimal("0.30") and "by_currency" not in one
    html = admin_client.get(f"/admin/cdrs?date_from={T0.date()}&date_to={T0.date()}&totals=1").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", "", html)
    assert "money is not added across them" in text and "SEK revenue 0.30 SEK" in text and "EUR revenue 0.02 EUR" in text
    # the converted call shows its original cost (exact in the title) beside the SEK one
    assert re.search(r'data-cost-original[^>]*>\s*<span class="money" data-currency="EUR" title="exact: 0.008706 EUR">0.01 EUR',
                     html), html[html.find("data-cost-original") - 200:html.find("data-cost-original") + 300]
    data = admin_client.get(f"/admin/cdrs/totals?date_from={T0.date()}&date_to={T0.date()}").get_json()
    assert data["totals"]["revenue"] is None and [r["currency"] for r in data["display"]["by_currency"]] == ["EUR", "SEK"]


def test_dashboard_shows_the_default_currency_and_says_so(admin_client, pg, world):
    from datetime import datetime, timezone

    nordic = _sek_customer(world)
    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    insert_cdr(pg, customer_id=world["acme"].id, start_stamp=now, sell_amount=Decimal("0.02"), cost_amount=Decimal("0.005"))
    insert_cdr(pg, customer_id=nordic.id, start_stamp=now, sell_amount=Decimal("7.00"), cost_amount=Decimal("1.00"))
    html = admin_client.get("/admin/dashboard").get_data(as_text=True)
    assert "Figures of the customers paying in EUR" in html and "customers in SEK" in html
    assert "7.00" not in html and "0.02 EUR" in html
