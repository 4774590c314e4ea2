"""CDR billing across currencies (0110): the cost is booked in the customer's currency,
converted with the exchange rate valid at the call's start, and the rated call keeps
what it was converted from. Rule: docs/rounding.md, "Currency conversion"."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.billing.conftest import T0, World, cdr_row, insert_cdr, ledger_sum, rated, scalar


@pytest.fixture()
def sek(world, db_session):
    """The world's customer (EUR) calling through a carrier billing in SEK."""
    prov = factories.provider(currency="SEK")
    gw = factories.gateway(prov)
    factories.provider_rate(prov, "33", "0.0600", "1/1")   # SEK per minute
    return World(world.customer, world.endpoint, world.ratecard, prov, gw)


def test_same_currency_records_no_conversion(world, pg):
    row = cdr_row(world, billsec=61)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert cdr["cost_amount"] == Decimal("0.005083")   # 61 s at 0.0050/min, 1/1
    assert (cdr["cost_currency"], cdr["cost_amount_original"], cdr["exchange_rate"]) == (None, None, None)


def test_cost_converted_into_the_customers_currency(sek, pg):
    factories.exchange_rate("SEK", "EUR", "0.0871", T0 - timedelta(days=30))
    row = cdr_row(sek, billsec=61)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    # 61 s at 0.0600 SEK/min = 0.061000 SEK; x 0.0871 = 0.0053131 -> 0.005313 EUR
    assert cdr["status"] == "rated"
    assert cdr["cost_rate"] == Decimal("0.0600")                 # the provider's rate, as in its deck
    assert cdr["cost_currency"] == "SEK"
    assert cdr["cost_amount_original"] == Decimal("0.061000")
    assert cdr["exchange_rate"] == Decimal("0.0871")
    assert cdr["cost_amount"] == Decimal("0.005313")
    assert cdr["sell_amount"] == Decimal("0.040000")             # 61 s at 0.0200 EUR, 60/60: not converted
    assert cdr["margin"] == Decimal("0.040000") - Decimal("0.005313")
    assert ledger_sum(pg, sek.customer.id) == Decimal("10.00") - Decimal("0.04")


def test_conversion_rounds_half_up_to_6_places(sek, pg, db_session):
    # 1 s at 0.00006 SEK/min = 0.000001 SEK; x 0.5 = 0.0000005 -> 0.000001 (half-up, not to even)
    factories.provider_rate(sek.provider, "3399", "0.00006", "1/1")
    factories.exchange_rate("SEK", "EUR", "0.5", T0 - timedelta(days=1))
    row = cdr_row(sek, billsec=1, destination="33991234567")
    insert_cdr(pg, row)
    assert rated(pg, row["uuid"])["cost_amount"] == Decimal("0.000001")


def test_the_rounded_charge_is_converted(sek, pg):
    # 7 s at 0.0050 SEK/min = 0.000583333.. -> the provider's charge 0.000583 SEK; x 2 = 0.001166.
    # Converting the unrounded charge would give 0.001167: the stored original times the
    # stored rate must give the stored cost, so anyone can check a row.
    factories.provider_rate(sek.provider, "3398", "0.0050", "1/1")
    factories.exchange_rate("SEK", "EUR", "2", T0 - timedelta(days=1))
    row = cdr_row(sek, billsec=7, destination="33981234567")
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert cdr["cost_amount_original"] == Decimal("0.000583")
    assert cdr["cost_amount"] == Decimal("0.001166")


def test_rate_valid_at_the_start_of_the_call(sek, pg):
    change = T0 + timedelta(hours=1)
    factories.exchange_rate("SEK", "EUR", "0.0900", T0 - timedelta(days=1), valid_to=change)
    factories.exchange_rate("SEK", "EUR", "0.1000", change)
    before, after = cdr_row(sek, billsec=60, start=change - timedelta(seconds=1)), cdr_row(sek, billsec=60, start=change)
    insert_cdr(pg, before)
    insert_cdr(pg, after)
    assert rated(pg, before["uuid"])["exchange_rate"] == Decimal("0.0900")
    assert rated(pg, after["uuid"])["exchange_rate"] == Decimal("0.1000")
    assert rated(pg, after["uuid"])["cost_amount"] == Decimal("0.006000")   # 0.06 SEK x 0.1


def test_overlapping_rates_latest_valid_from_wins(sek, pg):
    factories.exchange_rate("SEK", "EUR", "0.0800", T0 - timedelta(days=10))          # open-ended
    factories.exchange_rate("SEK", "EUR", "0.0900", T0 - timedelta(days=2))           # later start: wins
    factories.exchange_rate("SEK", "EUR", "0.9999", T0 + timedelta(days=1))           # not yet valid
    factories.exchange_rate("EUR", "SEK", "11.5", T0 - timedelta(days=20))            # the other direction
    row = cdr_row(sek, billsec=60)
    insert_cdr(pg, row)
    assert rated(pg, row["uuid"])["exchange_rate"] == Decimal("0.0900")


def test_no_exchange_rate_keeps_the_call_unrated_until_re_rated(sek, pg):
    factories.exchange_rate("EUR", "SEK", "11.5", T0 - timedelta(days=1))   # wrong direction: not used
    row = cdr_row(sek, billsec=61)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert (cdr["status"], cdr["unrated_reason"]) == ("unrated", "no_exchange_rate")
    assert ledger_sum(pg, sek.customer.id) == Decimal("10.00")   # nothing booked yet
    factories.exchange_rate("SEK", "EUR", "0.0871", T0 - timedelta(days=1))
    scalar(pg, "SELECT rerated FROM billing_private.rerate(%s, %s)", T0 - timedelta(days=1), T0 + timedelta(days=1))
    cdr = rated(pg, row["uuid"])
    assert (cdr["status"], cdr["cost_amount"], cdr["exchange_rate"]) == ("rated", Decimal("0.005313"), Decimal("0.0871"))
    assert ledger_sum(pg, sek.customer.id) == Decimal("10.00") - Decimal("0.04")


def test_unanswered_call_needs_no_exchange_rate(sek, pg):
    row = cdr_row(sek, billsec=0)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    assert (cdr["status"], cdr["cost_amount"], cdr["cost_currency"]) == ("rated", 0, None)


def test_unanswered_call_records_no_conversion_in_the_trigger_nor_the_rerate(sek, pg):
    # with a valid rate too: 0 SEK is 0 EUR, nothing converted, whichever path rates it
    factories.exchange_rate("SEK", "EUR", "0.0871", T0 - timedelta(days=1))
    row = cdr_row(sek, billsec=0)
    insert_cdr(pg, row)
    conversion = ("cost_currency", "cost_amount_original", "exchange_rate")
    assert tuple(rated(pg, row["uuid"])[k] for k in conversion) == (None, None, None)
    scalar(pg, "SELECT rerated FROM billing_private.rerate(%s, %s)", T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert tuple(rated(pg, row["uuid"])[k] for k in conversion) == (None, None, None)


def test_rerate_after_an_exchange_rate_correction_moves_only_the_cost(sek, pg):
    wrong = factories.exchange_rate("SEK", "EUR", "0.871", T0 - timedelta(days=1))   # a typo, 10x
    row = cdr_row(sek, billsec=61)
    insert_cdr(pg, row)
    assert rated(pg, row["uuid"])["cost_amount"] == Decimal("0.053131")
    ledger = ledger_sum(pg, sek.customer.id)
    with pg.cursor() as cur:
        cur.execute("UPDATE billing.exchange_rates SET rate = 0.0871 WHERE id = %s", (wrong.id,))
    scalar(pg, "SELECT rerated FROM billing_private.rerate(%s, %s)", T0 - timedelta(days=1), T0 + timedelta(days=1))
    cdr = rated(pg, row["uuid"])
    assert (cdr["cost_amount"], cdr["margin"]) == (Decimal("0.005313"), Decimal("0.034687"))
    assert ledger_sum(pg, sek.customer.id) == ledger   # the customer's charge did not change


def test_customer_in_another_currency_than_the_provider(world, pg, db_session):
    """A SEK customer on a SEK ratecard calling through the EUR carrier: EUR -> SEK."""
    card = factories.ratecard(currency="SEK")
    factories.sell_rate(card, "33", "0.2000", "60/60")
    cust = factories.customer(balance="100", ratecards=[card], currency="SEK")
    ep = factories.endpoint(cust, world.endpoint.permission, ip="198.51.100.8/32")
    factories.exchange_rate("EUR", "SEK", "11.4870", T0 - timedelta(days=1))
    row = cdr_row(World(cust, ep, card, world.provider, world.gateway), billsec=61)
    insert_cdr(pg, row)
    cdr = rated(pg, row["uuid"])
    # 61 s at 0.0050 EUR/min = 0.005083 EUR; x 11.487 = 0.058388421 -> 0.058388 SEK
    assert (cdr["cost_currency"], cdr["cost_amount_original"], cdr["cost_amount"]) == \
        ("EUR", Decimal("0.005083"), Decimal("0.058388"))
    assert cdr["sell_amount"] == Decimal("0.400000")   # 120 s at 0.20 SEK
