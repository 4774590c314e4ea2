"""Invoices are in the customer's currency: the sell side (always in it, 0111) makes the
lines, whatever currency the carriers bill in (their costs are converted, never invoiced)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from portal.invoices.services import Period, build_draft
from tests import factories
from tests.billing.conftest import World, cdr_row, insert_cdr, rated
from tests.invoices.conftest import utc


def test_a_sek_customer_is_invoiced_in_sek_for_calls_through_a_eur_carrier(db_session, pg, catalogue):
    card = factories.ratecard(currency="SEK")
    factories.sell_rate(card, "33", "0.2000", "60/60")
    customer = factories.customer(billing_type="postpaid", credit_limit=Decimal("1000"), currency="SEK",
                                  ratecards=[card], tax_rate=Decimal("0.25"))
    perm = factories.permission([catalogue["france"].weight])
    ep = factories.endpoint(customer, perm)
    carrier = factories.provider(currency="EUR")
    gw = factories.gateway(carrier)
    factories.provider_rate(carrier, "33", "0.0050", "1/1")
    factories.exchange_rate("EUR", "SEK", "11.4870", utc(2026, 1, 1))
    world = World(customer, ep, card, carrier, gw)
    uuids = []
    for i in range(3):
        row = cdr_row(world, billsec=61, start=utc(2026, 1, 10, 9) + timedelta(minutes=i))
        insert_cdr(pg, row)
        uuids.append(row["uuid"])
    costs = [rated(pg, u) for u in uuids]
    assert {(c["cost_currency"], c["cost_amount"]) for c in costs} == {("EUR", Decimal("0.058388"))}
    invoice = build_draft(customer, Period.month(2026, 1))
    assert invoice.currency == "SEK"
    # 3 calls x 120 s at 0.20 SEK/min = 1.20 SEK; the EUR costs are not on it
    assert [(l.calls, l.amount_exact) for l in invoice.lines] == [(3, Decimal("1.200000"))]
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == \
        (Decimal("1.20"), Decimal("0.30"), Decimal("1.50"))
